using ContrastSeg.Losses;
using ContrastSeg.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

public class PixelContrastiveLossTests
{
    public PixelContrastiveLossTests() => TorchFixture.Init();

    private static PixelContrastiveOptions OracleOptions(ContrastiveVariant variant, ContrastiveImplementation impl, int block) => new()
    {
        Variant = variant,
        Temperature = 1.0,
        IgnoreLabels = ReleasedCodeFixture.IgnoreLabels,
        ResizeTo = null,
        NormalizeEmbeddings = false,
        Pairing = CrossImagePairing.SameImage,
        Implementation = impl,
        BlockSize = block,
    };

    public static TheoryData<ContrastiveImplementation, int> Kernels() => new()
    {
        { ContrastiveImplementation.FullMatrix, 0 },
        { ContrastiveImplementation.Blockwise, 0 },
        { ContrastiveImplementation.Blockwise, 1 },
        { ContrastiveImplementation.Blockwise, 5 },
        { ContrastiveImplementation.Blockwise, 16 },
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Within_image_loss_matches_released_code_value(ContrastiveImplementation impl, int block)
    {
        using var scope = NewDisposeScope();
        using var loss = new PixelContrastiveLoss(OracleOptions(ContrastiveVariant.WithinImage, impl, block));
        var value = loss.Forward(ReleasedCodeFixture.Features(), ReleasedCodeFixture.Labels()).item<float>();
        Assert.Equal(ReleasedCodeFixture.WithinImageLoss, value, 5);
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Cross_image_loss_matches_released_code_value_and_is_symmetric(ContrastiveImplementation impl, int block)
    {
        using var scope = NewDisposeScope();
        using var loss = new PixelContrastiveLoss(OracleOptions(ContrastiveVariant.CrossImage, impl, block));
        var labels = ReleasedCodeFixture.Labels();
        var forward = loss.Forward(ReleasedCodeFixture.Features(1), labels, ReleasedCodeFixture.Features(2), labels).item<float>();
        var swapped = loss.Forward(ReleasedCodeFixture.Features(2), labels, ReleasedCodeFixture.Features(1), labels).item<float>();
        Assert.Equal(ReleasedCodeFixture.CrossImageLoss, forward, 5);
        Assert.Equal(forward, swapped, 5);
    }

    public static TheoryData<ContrastiveVariant, int> VariantsAndBlocks()
    {
        var data = new TheoryData<ContrastiveVariant, int>();
        foreach (var v in Enum.GetValues<ContrastiveVariant>())
            foreach (var block in new[] { 1, 7, 64, 0 }) // 7 does not divide the pixel counts below
                data.Add(v, block);
        return data;
    }

    [Theory]
    [MemberData(nameof(VariantsAndBlocks))]
    public void Blockwise_equals_full_matrix_in_value_and_gradient(ContrastiveVariant variant, int block)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(0, CPU);
        gen.manual_seed(1234 + (int)variant * 10 + block);
        // 3 images of 9x10 = 90 pixels, 12-d embeddings, 4 classes plus the ignore label.
        var raw1 = randn(new long[] { 3, 12, 9, 10 }, generator: gen);
        var raw2 = randn(new long[] { 3, 12, 9, 10 }, generator: gen);
        var labels1 = randint(0, 5, new long[] { 3, 9, 10 }, generator: gen);
        var labels2 = randint(0, 5, new long[] { 3, 9, 10 }, generator: gen);
        labels1.masked_fill_(labels1 == 4, 255);
        labels2.masked_fill_(labels2 == 4, 255);

        (double value, Tensor g1, Tensor g2) Run(ContrastiveImplementation impl)
        {
            var e1 = raw1.clone().requires_grad_(true);
            var e2 = raw2.clone().requires_grad_(true);
            using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions
            {
                Variant = variant, Temperature = 0.1, ResizeTo = (8, 7), BatchSampleSize = 150,
                Seed = 99, Implementation = impl, BlockSize = block, Pairing = CrossImagePairing.NextImage,
            });
            var l = loss.Forward(e1, labels1, e2, labels2);
            l.backward();
            return (l.item<float>(), e1.grad!.clone(), e2.grad!.clone());
        }

        var full = Run(ContrastiveImplementation.FullMatrix);
        var blockwise = Run(ContrastiveImplementation.Blockwise);
        Assert.True(full.value > 0.1, $"degenerate fixture: loss {full.value}");
        Assert.Equal(full.value, blockwise.value, 1e-5 * Math.Max(1, full.value));
        TensorAssert.Close(full.g1, blockwise.g1, 1e-4, "gradient of view 1");
        TensorAssert.Close(full.g2, blockwise.g2, 1e-4, "gradient of view 2");
        Assert.True(full.g1.abs().sum().item<float>() > 0, "gradient is zero");
    }

    public static TheoryData<string> DegenerateMaps() => new() { "all-ignored", "single-class", "one-pixel", "two-pixels-two-classes" };

    [Theory]
    [MemberData(nameof(DegenerateMaps))]
    public void Degenerate_label_maps_give_finite_loss_and_gradient(string map)
    {
        using var scope = NewDisposeScope();
        foreach (var variant in Enum.GetValues<ContrastiveVariant>())
        {
            var (h, w) = map switch { "one-pixel" => (1, 1), "two-pixels-two-classes" => (1, 2), _ => (5, 6) };
            var labels = map switch
            {
                "all-ignored" => full(new long[] { 2, h, w }, 255L, ScalarType.Int64),
                "single-class" => full(new long[] { 2, h, w }, 3L, ScalarType.Int64),
                "one-pixel" => zeros(new long[] { 2, h, w }, ScalarType.Int64),
                _ => tensor(new long[] { 0, 1, 1, 0 }).reshape(2, 1, 2),
            };
            var e1 = randn(2, 8, h, w).requires_grad_(true);
            var e2 = randn(2, 8, h, w).requires_grad_(true);
            using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions { Variant = variant, ResizeTo = null });
            var l = loss.Forward(e1, labels, e2, labels);
            l.backward();
            TensorAssert.Finite(l, $"{variant} loss on {map}");
            TensorAssert.Finite(e1.grad!, $"{variant} gradient on {map}");
            if (map is "all-ignored" or "single-class" or "one-pixel")
                Assert.Equal(0.0, l.item<float>(), 6); // no negatives anywhere: every l_pq = -log 1
            else
                Assert.True(l.item<float>() > 0);
        }
    }

    [Fact]
    public void Extreme_embeddings_stay_finite_at_low_temperature()
    {
        using var scope = NewDisposeScope();
        var labels = randint(0, 3, new long[] { 1, 12, 12 });
        var e = (randn(1, 4, 12, 12) * 1e4f).requires_grad_(true); // unnormalised, huge logits
        using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions { ResizeTo = null, NormalizeEmbeddings = false, Temperature = 0.01 });
        var l = loss.Forward(e, labels);
        l.backward();
        TensorAssert.Finite(l, "loss");
        TensorAssert.Finite(e.grad!, "gradient");
    }

    [Fact]
    public void Labels_are_resized_with_aligned_corner_nearest_neighbour()
    {
        using var scope = NewDisposeScope();
        var labels = arange(129L * 129L).reshape(1, 129, 129);
        var small = PixelContrastiveLoss.ResizeLabelsNearest(labels, 65, 65);
        Assert.Equal(new long[] { 1, 65, 65 }, small.shape);
        // 129 -> 65 with aligned corners samples rows/cols 0, 2, 4, ..., 128.
        for (var i = 0; i < 65; i += 16)
            for (var j = 0; j < 65; j += 16)
                Assert.Equal(2L * i * 129 + 2L * j, small[0, i, j].item<long>());
        Assert.Equal(128L * 129 + 128, small[0, 64, 64].item<long>());
    }

    [Fact]
    public void Batch_variant_sampling_is_seeded()
    {
        using var scope = NewDisposeScope();
        var e = randn(2, 6, 20, 20);
        var labels = randint(0, 4, new long[] { 2, 20, 20 });
        float Draw(long seed)
        {
            using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions { Variant = ContrastiveVariant.Batch, ResizeTo = null, BatchSampleSize = 100, Seed = seed });
            return loss.Forward(e, labels).item<float>();
        }
        Assert.Equal(Draw(5), Draw(5));
        Assert.NotEqual(Draw(5), Draw(6));
    }

    [Fact]
    public void Invalid_settings_and_inputs_are_rejected_with_the_field_named()
    {
        var ex = Assert.Throws<ArgumentException>(() => new PixelContrastiveLoss(new PixelContrastiveOptions { Temperature = -1 }));
        Assert.Contains("Temperature", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => new PixelContrastiveLoss(new PixelContrastiveOptions { Variant = (ContrastiveVariant)7 }));
        Assert.Contains("Variant", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => new PixelContrastiveLoss(new PixelContrastiveOptions { BatchSampleSize = 0 }));
        Assert.Contains("BatchSampleSize", ex.Message);

        using var scope = NewDisposeScope();
        using var cross = new PixelContrastiveLoss(new PixelContrastiveOptions { Variant = ContrastiveVariant.CrossImage });
        ex = Assert.Throws<ArgumentException>(() => cross.Forward(randn(2, 4, 8, 8), zeros(new long[] { 2, 8, 8 }, ScalarType.Int64)));
        Assert.Contains("second", ex.Message);
        using var within = new PixelContrastiveLoss();
        ex = Assert.Throws<ArgumentException>(() => within.Forward(randn(2, 4, 8), zeros(new long[] { 2, 8, 8 }, ScalarType.Int64)));
        Assert.Contains("[B, D, h, w]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => within.Forward(randn(2, 4, 8, 8), zeros(new long[] { 3, 8, 8 }, ScalarType.Int64)));
        Assert.Contains("batch size", ex.Message);
    }

    [Fact]
    public void No_tensor_outlives_a_loss_forward_and_backward()
    {
        var e = randn(2, 16, 20, 20).requires_grad_(true);
        var labels = randint(0, 4, new long[] { 2, 20, 20 });
        using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions { Variant = ContrastiveVariant.WithinImage, ResizeTo = (10, 10), BlockSize = 7 });
        void Step()
        {
            using var scope = NewDisposeScope();
            loss.Forward(e, labels).backward();
            e.grad!.zero_();
        }
        Step(); // the first step creates e.grad, which lives on with e
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++) Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
