using ContrastSeg.Analysis;
using ContrastSeg.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Analysis;

public class AnalysisTests
{
    public AnalysisTests() => TorchFixture.Init();

    private static (Tensor x, Tensor y) Clusters(long seed, double spread)
    {
        manual_seed(seed);
        var centers = randn(3, 20) * 5;
        var y = arange(150L).remainder(3);
        var x = centers.index_select(0, y) + randn(150, 20) * spread;
        return (x, y);
    }

    [Fact]
    public void Tsne_keeps_separated_clusters_apart_and_is_seeded()
    {
        using var scope = NewDisposeScope();
        var (x, y) = Clusters(1, 0.5);
        var opts = new TsneOptions(Perplexity: 15, Iterations: 300);
        var e = Tsne.Embed(x, opts);
        Assert.Equal(new long[] { 150, 2 }, e.shape);
        TensorAssert.Finite(e, "embedding");
        // Nearest-neighbour label agreement in 2-D (excluding self).
        var d = cdist(e, e).masked_fill(eye(150, dtype: ScalarType.Bool), double.PositiveInfinity);
        var agreement = (y.index_select(0, d.argmin(1)) == y).to_type(ScalarType.Float32).mean().item<float>();
        Assert.True(agreement > 0.95, $"1-NN agreement {agreement}");
        Assert.True(Tsne.Embed(x, opts).equal(e).all().item<bool>(), "same seed, same embedding");
    }

    [Fact]
    public void Compact_separated_classes_score_better_than_overlapping_ones()
    {
        using var scope = NewDisposeScope();
        var (tight, y) = Clusters(2, 0.2);
        var (loose, _) = Clusters(2, 6.0);
        var a = FeatureSpace.Measure(tight, y);
        var b = FeatureSpace.Measure(loose, y);
        Assert.Equal(3, a.Classes);
        Assert.True(a.IntraClass < b.IntraClass);
        Assert.True(a.Ratio > b.Ratio);
        Assert.Equal(1.0, a.NearestCentroidAccuracy, 6);
        Assert.Throws<ArgumentException>(() => FeatureSpace.Measure(tight, zeros_like(y)));
    }
}
