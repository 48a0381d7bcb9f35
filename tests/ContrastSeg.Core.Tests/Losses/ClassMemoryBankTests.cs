using ContrastSeg.Losses;
using ContrastSeg.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

/// <summary>The per-class memory: FIFO contents after known writes (wrap-around included), its saved state, its errors.</summary>
public class ClassMemoryBankTests
{
    public ClassMemoryBankTests() => TorchFixture.Init();

    /// <summary>One image whose pixels are the unit vectors e_k * sign: all of class <paramref name="label"/>.</summary>
    private static (Tensor X, Tensor Y, Tensor Valid) Image(long label, params int[] axes)
    {
        var x = zeros(1, axes.Length, 4);
        for (var p = 0; p < axes.Length; p++) x[0, p, Math.Abs(axes[p]) - 1] = tensor(Math.Sign(axes[p]) * 1f);
        var y = full(new long[] { 1, axes.Length }, label, ScalarType.Int64);
        return (x, y, ones(1, axes.Length, ScalarType.Bool));
    }

    private static float[][] Rows(Tensor t) => Enumerable.Range(0, (int)t.shape[0]).Select(i => t[i].data<float>().ToArray()).ToArray();

    private static float[] E(int axis) => Enumerable.Range(1, 4).Select(k => k == Math.Abs(axis) ? Math.Sign(axis) * 1f : 0f).ToArray();

    [Fact]
    public void Rings_are_first_in_first_out_per_class_and_wrap_around()
    {
        using var scope = NewDisposeScope();
        using var memory = new ClassMemoryBank(classes: 2, pixelSize: 3, regionSize: 2, pixelsPerImage: 8);
        var gen = new Generator(0, CPU);
        var (x, y, v) = Image(1, 1, 2);          // class 1: e1, e2 -> slots 0, 1
        memory.Write(x, y, v, gen);
        Assert.Equal(new[] { E(1), E(2) }, Rows(memory.PixelsOf(1).Entries));
        Assert.Equal(2, memory.PixelsOf(1).Next);
        Assert.Equal(0, memory.PixelsOf(0).Entries.shape[0]);
        (x, y, v) = Image(1, 3, 4);              // e3 -> slot 2, e4 wraps to slot 0
        memory.Write(x, y, v, gen);
        Assert.Equal(new[] { E(4), E(2), E(3) }, Rows(memory.PixelsOf(1).Entries));
        Assert.Equal(1, memory.PixelsOf(1).Next);
        (x, y, v) = Image(1, -1, -2, -3, -4, 1); // five rows into a ring of 3: as if one by one, only the last three stay
        memory.Write(x, y, v, gen);
        // One by one from slot 1: -1 -> 1, -2 -> 2, -3 -> 0, -4 -> 1, e1 -> 2; next = (1 + 5) % 3 = 0.
        Assert.Equal(new[] { E(-3), E(-4), E(1) }, Rows(memory.PixelsOf(1).Entries));
        Assert.Equal(0, memory.PixelsOf(1).Next);

        // Regions: one unit mean per write; a ring of 2 holds the last two.
        var regions = Rows(memory.RegionsOf(1).Entries);
        Assert.Equal(2, regions.Length);
        // The third write's mean: (-e1 - e2 - e3 - e4 + e1) / 5.
        var mean = new[] { (-1f + 1f) / 5, -1f / 5, -1f / 5, -1f / 5 };
        var norm = (float)Math.Sqrt(mean.Sum(m => m * m));
        TensorAssert.Close(tensor(mean.Select(m => m / norm).ToArray()), tensor(regions[0]), 1e-6, "the third write's region (slot 0, wrapped)");
        var second = 1f / (float)Math.Sqrt(2);
        TensorAssert.Close(tensor(new[] { 0f, 0f, second, second }), tensor(regions[1]), 1e-6, "the second write's region");

        var keys = memory.Keys(CPU)!.Value;
        Assert.Equal(3 + 2, keys.Embeddings.shape[0]);
        Assert.Equal(new long[] { 1, 1, 1, 1, 1 }, keys.Labels.data<long>().ToArray());
    }

    [Fact]
    public void Pixels_per_image_are_drawn_from_the_generator_and_ignored_pixels_never_written()
    {
        using var scope = NewDisposeScope();
        using var memory = new ClassMemoryBank(classes: 3, pixelSize: 10, regionSize: 0, pixelsPerImage: 2);
        var gen = new Generator(0, CPU);
        gen.manual_seed(4);
        var x = randn(2, 12, 6);
        var y = tensor(new long[] { 0, 0, 0, 0, 0, 1, 1, 1, 2, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2 }).reshape(2, 12);
        var valid = y.ne(255);
        memory.Write(x, y, valid, gen);
        Assert.Equal(4, memory.PixelsOf(0).Entries.shape[0]); // 2 per image
        Assert.Equal(2, memory.PixelsOf(1).Entries.shape[0]);
        Assert.Equal(1 + 2, memory.PixelsOf(2).Entries.shape[0]); // image 0 has one pixel of class 2
        // Every entry is a unit copy of one of its class's pixels.
        var unit = x / x.norm(2, keepdim: true);
        for (var c = 0; c < 3; c++)
            foreach (var entry in Rows(memory.PixelsOf(c).Entries))
            {
                var matches = Enumerable.Range(0, 24).Count(i => y.flatten()[i].item<long>() == c
                    && (unit.reshape(24, 6)[i] - tensor(entry)).abs().max().item<float>() < 1e-6);
                Assert.Equal(1, matches);
            }
        var bad = tensor(new long[] { 0, 7 }).reshape(1, 2);
        var e = Assert.Throws<ArgumentException>(() => memory.Write(randn(1, 2, 6), bad, ones(1, 2, ScalarType.Bool), gen));
        Assert.Contains("label 7", e.Message);
    }

    [Fact]
    public void The_saved_state_reads_back_to_the_same_bytes_and_another_memory_size_is_refused()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(0, CPU);
        using var memory = new ClassMemoryBank(classes: 2, pixelSize: 3, regionSize: 2, pixelsPerImage: 1);
        var empty = Save(memory);
        memory.Write(randn(2, 5, 3), tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 0, 0, 0 }).reshape(2, 5), ones(2, 5, ScalarType.Bool), gen);
        var saved = Save(memory);
        Assert.NotEqual(empty, saved);

        using var restored = new ClassMemoryBank(classes: 2, pixelSize: 3, regionSize: 2, pixelsPerImage: 1);
        restored.Load(new MemoryStream(saved));
        Assert.Equal(saved, Save(restored));
        for (var c = 0; c < 2; c++)
        {
            Assert.Equal(Rows(memory.PixelsOf(c).Entries), Rows(restored.PixelsOf(c).Entries));
            Assert.Equal(memory.PixelsOf(c).Next, restored.PixelsOf(c).Next);
        }
        restored.Load(new MemoryStream(empty));
        Assert.Null(restored.Keys(CPU));

        using var other = new ClassMemoryBank(classes: 2, pixelSize: 4, regionSize: 2, pixelsPerImage: 1);
        var e = Assert.Throws<InvalidDataException>(() => other.Load(new MemoryStream(saved)));
        Assert.Contains("2 classes x 3 pixels + 2 regions", e.Message);
        Assert.Throws<InvalidDataException>(() => restored.Load(new MemoryStream(saved[..^4])));
    }

    private static byte[] Save(ClassMemoryBank memory)
    {
        using var stream = new MemoryStream();
        memory.Save(stream);
        return stream.ToArray();
    }
}
