using ContrastSeg.Analysis;
using ContrastSeg.Tests.Losses;
using ContrastSeg.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Analysis;

[Collection(nameof(MemoryMeasurement))]
public class TsneMemoryTests
{
    private readonly ITestOutputHelper _output;

    public TsneMemoryTests(ITestOutputHelper output)
    {
        _output = output;
        TorchFixture.Init();
    }

    [Fact]
    public void Tsne_holds_a_few_pairwise_matrices_not_one_per_step()
    {
        ProcessMemory.FollowLiveMemory();
        const long n = 550;
        const long matrixBytes = n * n * sizeof(double); // 2.4 MB
        using var scope = NewDisposeScope();
        manual_seed(0);
        var points = randn(n, 64);
        Tsne.Embed(randn(40, 8), new TsneOptions(Perplexity: 5, Iterations: 5)); // fault in the kernels' code pages
        var baseline = ProcessMemory.StartMeasuring();
        var embedded = Tsne.Embed(points, new TsneOptions(Iterations: 100));
        var extra = ProcessMemory.PeakBytes() - baseline;

        _output.WriteLine($"peak extra RSS {extra / 1e6:F1} MB = {(double)extra / matrixBytes:F0} N x N float64 matrices");
        TensorAssert.Finite(embedded, "embedding");
        // Kept-alive bisection steps (64 x ~8 matrices) or per-step allocations show up as hundreds of matrices.
        Assert.True(extra < 60 * matrixBytes, $"t-SNE of {n} points peaked at {extra / 1e6:F1} MB extra, {(double)extra / matrixBytes:F0} N x N matrices");
    }
}
