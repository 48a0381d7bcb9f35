using ContrastSeg.Losses;
using ContrastSeg.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

/// <summary>
/// The peers' options of the paper's loss (per-class anchor budgets, hard anchors, memory keys): values and gradients
/// against <see cref="PeerOracle"/> on small hand-made batches, and the rows the sampler picks.
/// </summary>
public class PeerOptionsTests
{
    public PeerOptionsTests() => TorchFixture.Init();

    private const double Tau = 0.5;

    private static (Tensor E1, Tensor L1, Tensor E2, Tensor L2) Batch(int seed, int images = 2, int h = 3, int w = 4, int dim = 5)
    {
        var gen = new Generator(0, CPU);
        gen.manual_seed(seed);
        var e1 = randn(new long[] { images, dim, h, w }, generator: gen);
        var e2 = randn(new long[] { images, dim, h, w }, generator: gen);
        var l1 = randint(0, 4, new long[] { images, h, w }, generator: gen);
        var l2 = randint(0, 4, new long[] { images, h, w }, generator: gen);
        l1.masked_fill_(l1 == 3, 255);
        l2.masked_fill_(l2 == 3, 255);
        return (e1, l1, e2, l2);
    }

    private static PixelContrastiveOptions Options(ContrastiveVariant variant) => new()
    {
        Variant = variant, Temperature = Tau, ResizeTo = null, NormalizeEmbeddings = true, Pairing = CrossImagePairing.SameImage,
        BatchSampleSize = 10_000, Classes = 3, BlockSize = 5, // blocks that do not divide the groups
    };

    /// <summary>The groups of a variant over two views of <paramref name="images"/> images, as the loss forms them.</summary>
    private static List<(int View, long Item, long Tag)[]> Groups(ContrastiveVariant variant, int images) => variant switch
    {
        ContrastiveVariant.WithinImage => Enumerable.Range(0, 2).SelectMany(v => Enumerable.Range(0, images).Select(b => new[] { (v, (long)b, 0L) })).ToList(),
        ContrastiveVariant.CrossImage => Enumerable.Range(0, images).Select(b => new[] { (0, (long)b, 0L), (1, (long)b, 1L) }).ToList(),
        _ => [Enumerable.Range(0, 2).SelectMany(v => Enumerable.Range(0, images).Select(b => (v, (long)b, 0L))).ToArray()],
    };

    /// <summary>A FIFO ring per class, written the way the docs say: per view, image and class ascending, every pixel (unit) and the unit mean.</summary>
    private sealed class ExpectedMemory(int classes, int pixels, int regions)
    {
        private readonly List<double[]>[] _pixels = Enumerable.Range(0, classes).Select(_ => new List<double[]>()).ToArray();
        private readonly List<double[]>[] _regions = Enumerable.Range(0, classes).Select(_ => new List<double[]>()).ToArray();
        private readonly int[] _pixelNext = new int[classes], _regionNext = new int[classes];

        public void Write(Tensor embeddings, Tensor labels)
        {
            for (long b = 0; b < embeddings.shape[0]; b++)
            {
                var x = embeddings[b].flatten(1).t().to_type(ScalarType.Float64);
                var y = labels[b].flatten().data<long>().ToArray();
                for (var c = 0; c < _pixels.Length; c++)
                {
                    var rows = Enumerable.Range(0, y.Length).Where(p => y[p] == c).ToArray();
                    if (rows.Length == 0) continue;
                    var unit = rows.Select(p => Unit(x[p].data<double>().ToArray())).ToArray();
                    foreach (var u in unit) Push(_pixels[c], ref _pixelNext[c], pixels, u);
                    var mean = Enumerable.Range(0, unit[0].Length).Select(d => unit.Average(u => u[d])).ToArray();
                    Push(_regions[c], ref _regionNext[c], regions, Unit(mean));
                }
            }
        }

        private static void Push(List<double[]> ring, ref int next, int size, double[] entry)
        {
            if (ring.Count < size) ring.Add(entry);
            else ring[next] = entry;
            next = (next + 1) % size;
        }

        private static double[] Unit(double[] v)
        {
            var n = Math.Sqrt(v.Sum(a => a * a));
            return v.Select(a => a / n).ToArray();
        }

        public double[][] Pixels(int c) => _pixels[c].ToArray();

        public double[][] Regions(int c) => _regions[c].ToArray();

        public (Tensor? Rows, long[] Labels) Keys()
        {
            var rows = new List<double[]>();
            var labels = new List<long>();
            foreach (var rings in new[] { _pixels, _regions })
                for (var c = 0; c < rings.Length; c++)
                    foreach (var e in rings[c]) { rows.Add(e); labels.Add(c); }
            return rows.Count == 0 ? (null, []) : (tensor(rows.SelectMany(r => r).ToArray()).reshape(rows.Count, -1), labels.ToArray());
        }
    }

    private static Tensor OracleLoss(ContrastiveVariant variant, Tensor e1, Tensor l1, Tensor e2, Tensor l2, Tensor? memory, long[] memoryLabels,
        Func<int, long[]?[]>? rows = null)
    {
        var views = new[] { (e1, l1), (e2, l2) };
        var groups = Groups(variant, (int)e1.shape[0]);
        var losses = new List<Tensor>();
        for (var g = 0; g < groups.Count; g++)
        {
            var chosen = rows?.Invoke(g);
            var parts = groups[g].Select((m, k) => PeerOracle.Part(views[m.View].Item1, views[m.View].Item2, m.Item, m.Tag, chosen?[k])).ToArray();
            var group = PeerOracle.Join(parts);
            losses.Add(group.Labels.Length == 0 ? tensor(0.0) : PeerOracle.GroupLoss(group, memory, memoryLabels, variant == ContrastiveVariant.CrossImage, Tau));
        }
        return stack(losses).mean();
    }

    public static TheoryData<ContrastiveVariant> Variants() => new() { ContrastiveVariant.WithinImage, ContrastiveVariant.CrossImage, ContrastiveVariant.Batch };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Memory_entries_are_keys_of_every_group_in_value_and_gradient_and_the_batch_is_written_after(ContrastiveVariant variant)
    {
        using var scope = NewDisposeScope();
        // Ring sizes below what one batch writes: the second batch reads rings that wrapped around.
        using var loss = new PixelContrastiveLoss(Options(variant) with { MemoryPixels = 4, MemoryPixelsPerImage = 12, MemoryRegions = 3 });
        var expected = new ExpectedMemory(3, 4, 3);
        foreach (var seed in new[] { 1, 2 })
        {
            var (e1, l1, e2, l2) = Batch(seed);
            var (memory, memoryLabels) = expected.Keys();
            var x1 = e1.clone().requires_grad_(true);
            var x2 = e2.clone().requires_grad_(true);
            var value = loss.Forward(x1, l1, x2, l2);
            value.backward();

            var o1 = e1.to_type(ScalarType.Float64).requires_grad_(true);
            var o2 = e2.to_type(ScalarType.Float64).requires_grad_(true);
            var oracle = OracleLoss(variant, o1, l1, o2, l2, memory, memoryLabels);
            oracle.backward();
            Assert.Equal(oracle.item<double>(), value.item<float>(), 1e-5);
            TensorAssert.Close(o1.grad!, x1.grad!, 1e-5, $"{variant}, batch {seed}: gradient of view 1");
            TensorAssert.Close(o2.grad!, x2.grad!, 1e-5, $"{variant}, batch {seed}: gradient of view 2");
            if (seed == 2) Assert.True(memory is not null && memory.shape[0] == 3 * 4 + 3 * 3, "the second batch read full rings");

            expected.Write(e1, l1);
            expected.Write(e2, l2);
            for (var c = 0; c < 3; c++)
            {
                TensorAssert.Close(tensor(expected.Pixels(c).SelectMany(r => r).ToArray()).reshape(-1, 5), loss.Memory!.PixelsOf(c).Entries, 1e-6, $"pixel ring {c}");
                TensorAssert.Close(tensor(expected.Regions(c).SelectMany(r => r).ToArray()).reshape(-1, 5), loss.Memory!.RegionsOf(c).Entries, 1e-6, $"region ring {c}");
            }
        }
    }

    [Theory]
    [InlineData(ContrastiveVariant.WithinImage, false)]
    [InlineData(ContrastiveVariant.CrossImage, false)]
    [InlineData(ContrastiveVariant.CrossImage, true)]
    [InlineData(ContrastiveVariant.Batch, true)]
    public void Per_class_anchors_give_the_loss_of_the_rows_the_sampler_picks(ContrastiveVariant variant, bool hard)
    {
        using var scope = NewDisposeScope();
        var (e1, l1, e2, l2) = Batch(5, images: 2, h: 4, w: 5);
        var gen = new Generator(0, CPU);
        gen.manual_seed(11);
        var logits1 = randn(new long[] { 2, 3, 4, 5 }, generator: gen);
        var logits2 = randn(new long[] { 2, 3, 4, 5 }, generator: gen);
        var options = Options(variant) with { Seed = 7, AnchorsPerClass = 2, MaxAnchors = hard ? 10 : 0, HardAnchorFraction = hard ? 0.5 : 0 };
        using var loss = new PixelContrastiveLoss(options);
        var x1 = e1.clone().requires_grad_(true);
        var x2 = e2.clone().requires_grad_(true);
        var value = loss.Forward(x1, l1, x2, l2, hard ? logits1 : null, hard ? logits2 : null);
        value.backward();

        // The same draws, in the loss's order: group by group, from a generator seeded as the loss's.
        var replay = new Generator(0, CPU);
        replay.manual_seed(7);
        var views = new[] { (l1, logits1), (l2, logits2) };
        var groups = Groups(variant, 2);
        var chosen = groups.Select(group => AnchorSampling.Choose(
            group.Select(m => views[m.View].Item1[m.Item].flatten().data<long>().ToArray()).ToList(),
            group.Select(m => views[m.View].Item1[m.Item].flatten().ne(255).data<bool>().ToArray()).ToList(),
            hard ? group.Select(m => views[m.View].Item2[m.Item].argmax(0).flatten().data<long>().ToArray()).ToList() : null,
            2, hard ? 10 : 0, hard ? 0.5 : 0, replay).Select(r => (long[]?)r).ToArray()).ToList();
        Assert.True(chosen.Sum(g => g.Sum(r => r!.Length)) < 2 * 2 * 20, "the sampler left pixels out");

        var o1 = e1.to_type(ScalarType.Float64).requires_grad_(true);
        var o2 = e2.to_type(ScalarType.Float64).requires_grad_(true);
        var oracle = OracleLoss(variant, o1, l1, o2, l2, null, [], g => chosen[g]);
        oracle.backward();
        Assert.Equal(oracle.item<double>(), value.item<float>(), 1e-5);
        TensorAssert.Close(o1.grad!, x1.grad!, 1e-5, "gradient of view 1");
        TensorAssert.Close(o2.grad!, x2.grad!, 1e-5, "gradient of view 2");
    }

    [Fact]
    public void Without_peer_options_the_loss_is_the_papers_bit_for_bit()
    {
        using var scope = NewDisposeScope();
        var (e1, l1, e2, l2) = Batch(9);
        foreach (var variant in Enum.GetValues<ContrastiveVariant>())
        {
            using var a = new PixelContrastiveLoss(Options(variant));
            using var b = new PixelContrastiveLoss(Options(variant) with { AnchorsPerClass = 0, MemoryPixels = 0, HardAnchorFraction = 0 });
            Assert.Equal(a.Forward(e1, l1, e2, l2).item<float>(), b.Forward(e1, l1, e2, l2).item<float>());
            Assert.Null(a.Memory);
        }
    }

    [Fact]
    public void Hard_anchors_take_the_fraction_from_mistakes_and_fill_in_from_the_other_side()
    {
        // Class 0: 10 pixels, 6 mistaken; class 1: 10 pixels, 1 mistaken; class 2: 3 pixels (fewer than the budget); 255 ignored.
        var labels = new long[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 255, 255 };
        var predicted = new long[] { 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2, 0, 2, 0, 1 };
        var valid = labels.Select(l => l != 255).ToArray();
        var gen = new Generator(0, CPU);
        gen.manual_seed(3);
        for (var trial = 0; trial < 20; trial++)
        {
            var rows = AnchorSampling.Choose([labels], [valid], [predicted], perClass: 4, maxAnchors: 0, hardFraction: 0.5, gen)[0];
            Assert.Equal(rows.OrderBy(r => r), rows);
            Assert.Equal(rows.Distinct().Count(), rows.Length);
            Assert.DoesNotContain(rows, r => !valid[r]);
            int Count(long c, bool mistaken) => rows.Count(r => labels[r] == c && (predicted[r] != c) == mistaken);
            Assert.Equal((2, 2), (Count(0, true), Count(0, false)));   // half and half
            Assert.Equal((1, 3), (Count(1, true), Count(1, false)));   // one mistake: the easy side fills in
            Assert.Equal((1, 2), (Count(2, true), Count(2, false)));   // all three pixels
        }
    }

    [Theory]
    [InlineData(8, 0.5, 10, 10, 4, 4)]
    [InlineData(8, 0.5, 1, 10, 1, 7)]
    [InlineData(8, 0.5, 10, 2, 6, 2)]
    [InlineData(8, 0.5, 2, 3, 2, 3)]
    [InlineData(7, 0.5, 10, 10, 3, 4)]
    [InlineData(8, 0.25, 10, 10, 2, 6)]
    [InlineData(8, 1.0, 10, 10, 8, 0)]
    [InlineData(8, 1.0, 3, 10, 3, 5)]
    public void The_hard_easy_split_follows_ContrastiveSeg(int budget, double fraction, int hard, int easy, int takeHard, int takeEasy) =>
        Assert.Equal((takeHard, takeEasy), AnchorSampling.Split(budget, fraction, hard, easy));

    [Fact]
    public void Per_class_budgets_take_that_many_of_each_class_of_each_image_within_the_cap()
    {
        // Two images: classes {0, 1, 2} and {0, 3}: five (image, class) pairs.
        var a = Enumerable.Range(0, 30).Select(i => (long)(i % 3)).ToArray();
        var b = Enumerable.Range(0, 30).Select(i => i < 25 ? 0L : 3L).ToArray();
        var valid = Enumerable.Repeat(true, 30).ToArray();
        var gen = new Generator(0, CPU);
        gen.manual_seed(1);
        var rows = AnchorSampling.Choose([a, b], [valid, valid], null, perClass: 4, maxAnchors: 0, hardFraction: 0, gen);
        foreach (var c in new[] { 0L, 1, 2 }) Assert.Equal(4, rows[0].Count(r => a[r] == c));
        Assert.Equal(4, rows[1].Count(r => b[r] == 0));
        Assert.Equal(4, rows[1].Count(r => b[r] == 3));
        // A cap of 12 over five pairs: 2 each.
        var capped = AnchorSampling.Choose([a, b], [valid, valid], null, perClass: 4, maxAnchors: 12, hardFraction: 0, gen);
        Assert.Equal(10, capped.Sum(r => r.Length));
        Assert.Equal(2, AnchorSampling.BudgetPerClass(4, 12, 5));
        Assert.Equal(1, AnchorSampling.BudgetPerClass(4, 3, 5)); // at least one per class
        Assert.Equal(4, AnchorSampling.BudgetPerClass(4, 0, 5));
    }

    [Fact]
    public void Hard_options_refuse_to_run_without_logits_and_invalid_options_name_the_field()
    {
        using var scope = NewDisposeScope();
        var (e1, l1, _, _) = Batch(2);
        using var loss = new PixelContrastiveLoss(Options(ContrastiveVariant.WithinImage) with { AnchorsPerClass = 2, HardAnchorFraction = 0.5 });
        var e = Assert.Throws<ArgumentException>(() => loss.Forward(e1, l1));
        Assert.Contains("HardAnchorFraction", e.Message);
        foreach (var (options, field) in new (PixelContrastiveOptions, string)[]
        {
            (new() { HardAnchorFraction = 0.5 }, "HardAnchorFraction"),
            (new() { AnchorsPerClass = 4, HardAnchorFraction = 1.5 }, "HardAnchorFraction"),
            (new() { MaxAnchors = 10 }, "MaxAnchors"),
            (new() { AnchorsPerClass = -1 }, "AnchorsPerClass"),
            (new() { Form = ContrastiveForm.Regional, RegionalNegatives = 8 }, "AnchorsPerClass"),
            (new() { Form = ContrastiveForm.Regional, AnchorsPerClass = 8 }, "RegionalNegatives"),
            (new() { HardQueryThreshold = 0.9 }, "HardQueryThreshold"),
            (new() { MemoryPixels = 8, Classes = 3 }, "MemoryPixelsPerImage"),
            (new() { MemoryRegions = 8 }, "Classes"),
            (new() { AnchorsPerClass = 4, Implementation = ContrastiveImplementation.FullMatrix }, "Implementation"),
        })
        {
            var error = Assert.Throws<ArgumentException>(() => options.Validate());
            Assert.Equal(field, error.ParamName);
            Assert.StartsWith($"{field} = ", error.Message);
        }
    }
}
