using ContrastSeg.Losses;
using ContrastSeg.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

/// <summary>Runs alone (no other test allocating in parallel) so the process's peak RSS is this test's.</summary>
[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public class MemoryMeasurement { }

[Collection(nameof(MemoryMeasurement))]
public class ContrastiveMemoryTests
{
    private readonly ITestOutputHelper _output;

    public ContrastiveMemoryTests(ITestOutputHelper output)
    {
        _output = output;
        TorchFixture.Init();
    }

    [Fact]
    public void Within_image_loss_at_129x129_needs_far_less_than_one_full_similarity_matrix()
    {
        // Make RSS follow live memory: with glibc's adaptive threshold, freed 8 MB blocks stay in its
        // heaps and the peak swings between 0.1 and 1 GB from run to run (see TorchRuntime remarks).
        ProcessMemory.FollowLiveMemory();
        const int side = 129, channels = 32; // memory is dominated by the P x P blocks, not by D
        const long pixels = side * side;
        const long fullMatrixBytes = pixels * pixels * sizeof(float); // 1.1 GB

        using var scope = NewDisposeScope();
        var embeddings = nn.functional.normalize(randn(1, channels, side, side), dim: 1).requires_grad_(true);
        var labels = randint(0, 21, new long[] { 1, side, side });
        using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions { ResizeTo = null });
        // A small warm-up step first: the first call of each libtorch kernel faults its code pages
        // into RSS (libtorch_cpu is ~0.5 GB), which is not memory the loss holds.
        var warm = nn.functional.normalize(randn(1, channels, 40, 40), dim: 1).requires_grad_(true);
        loss.Forward(warm, randint(0, 21, new long[] { 1, 40, 40 })).backward();
        var baseline = ProcessMemory.StartMeasuring();
        var value = loss.Forward(embeddings, labels);
        value.backward();
        var extra = ProcessMemory.PeakBytes() - baseline;

        _output.WriteLine($"peak extra RSS {extra / 1e6:F1} MB vs one P x P float32 matrix {fullMatrixBytes / 1e6:F0} MB ({100.0 * extra / fullMatrixBytes:F1} %)");
        TensorAssert.Finite(value, "loss");
        Assert.True(extra < fullMatrixBytes / 8, $"peak extra memory {extra / 1e6:F1} MB is not far below one full matrix ({fullMatrixBytes / 1e6:F0} MB)");
    }

    [Fact]
    public void Cross_image_loss_reads_both_views_in_place_without_normalised_or_concatenated_copies()
    {
        ProcessMemory.FollowLiveMemory();
        // Wide embeddings, so that one more copy of the views' embeddings (normalised copies, or the two views
        // concatenated into one [2P, D] group) stands out against the kernel's blocks (~40 MB here, with the
        // default block size, whose [rows, N] tensors all lie above the mmap threshold: freed at once).
        const int side = 65, channels = 1024;
        const long viewBytes = (long)side * side * channels * sizeof(float); // E = 17.3 MB per view
        const long blocks = 40L << 20;

        using var scope = NewDisposeScope();
        Tensor View() => nn.functional.normalize(randn(1, channels, side, side), dim: 1).mul_(3.0).requires_grad_(true); // not unit norm
        var (e1, e2) = (View(), View());
        var labels1 = randint(0, 21, new long[] { 1, side, side });
        var labels2 = randint(0, 21, new long[] { 1, side, side });
        using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions
        {
            Variant = ContrastiveVariant.CrossImage, ResizeTo = null, Pairing = CrossImagePairing.SameImage,
        });
        Tensor Warm() => nn.functional.normalize(randn(1, channels, 20, 20), dim: 1).requires_grad_(true);
        loss.Forward(Warm(), randint(0, 21, new long[] { 1, 20, 20 }), Warm(), randint(0, 21, new long[] { 1, 20, 20 })).backward();
        var baseline = ProcessMemory.StartMeasuring();
        var value = loss.Forward(e1, labels1, e2, labels2);
        var forward = ProcessMemory.PeakBytes() - baseline;
        ProcessMemory.ResetPeak();
        value.backward();
        var backward = ProcessMemory.PeakBytes() - baseline;

        _output.WriteLine($"peak extra RSS: forward {forward / 1e6:F1} MB, backward {backward / 1e6:F1} MB; one view's embeddings E = {viewBytes / 1e6:F1} MB");
        TensorAssert.Finite(value, "loss");
        TensorAssert.Finite(e1.grad!, "gradient of view 1");
        // Forward holds the two views' gradients (2E, computed with the loss) and the blocks. Concatenating the
        // views again adds at least 2E (4E with normalised copies), so the limit lies E above and E below.
        Assert.True(forward < 3 * viewBytes + blocks,
            $"forward peak {forward / 1e6:F1} MB > 3E + blocks = {(3 * viewBytes + blocks) / 1e6:F1} MB: a copy of the views (concatenated or normalised)?");
        // Backward: those gradients and the leaves' own .grad (4E); before, 9E.
        Assert.True(backward < 5 * viewBytes + (16L << 20),
            $"backward peak {backward / 1e6:F1} MB > 5E + 16 MB = {(5 * viewBytes + (16L << 20)) / 1e6:F1} MB: a copy of the views?");
    }
}
