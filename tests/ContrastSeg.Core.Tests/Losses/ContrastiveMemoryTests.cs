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
        Assert.True(ProcessMemory.Supported, "needs Linux /proc/self/status and clear_refs");
        // Make RSS follow live memory: with glibc's adaptive threshold, freed 8 MB blocks stay in its
        // heaps and the peak swings between 0.1 and 1 GB from run to run (see TorchRuntime remarks).
        Assert.NotNull(ContrastSeg.Runtime.TorchRuntime.SetMmapThreshold(1 << 20));
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
        GC.Collect();
        ProcessMemory.ResetPeak();
        var baseline = ProcessMemory.CurrentBytes();
        var value = loss.Forward(embeddings, labels);
        value.backward();
        var extra = ProcessMemory.PeakBytes() - baseline;

        _output.WriteLine($"peak extra RSS {extra / 1e6:F1} MB vs one P x P float32 matrix {fullMatrixBytes / 1e6:F0} MB ({100.0 * extra / fullMatrixBytes:F1} %)");
        TensorAssert.Finite(value, "loss");
        Assert.True(extra < fullMatrixBytes / 8, $"peak extra memory {extra / 1e6:F1} MB is not far below one full matrix ({fullMatrixBytes / 1e6:F0} MB)");
    }
}
