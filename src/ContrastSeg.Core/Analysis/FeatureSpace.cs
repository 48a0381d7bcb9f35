using ContrastSeg.Runtime;
using static TorchSharp.torch;

namespace ContrastSeg.Analysis;

/// <summary>How compact the classes are and how far apart, on L2-normalised features.</summary>
/// <param name="IntraClass">Mean squared distance of a feature to its class centroid (lower = more compact).</param>
/// <param name="InterClass">Mean squared distance between class centroids (higher = more separated).</param>
/// <param name="Ratio">InterClass / IntraClass.</param>
/// <param name="NearestCentroidAccuracy">Fraction of features whose nearest centroid is their own class's.</param>
/// <param name="Classes">Classes present among the features.</param>
public sealed record FeatureSpaceStats(double IntraClass, double InterClass, double Ratio, double NearestCentroidAccuracy, int Classes);

/// <summary>Feature-space statistics of the paper's t-SNE ablation, as numbers.</summary>
public static class FeatureSpace
{
    /// <summary>Statistics of [N, D] features with [N] class labels (ignored labels must be removed first), both on one device.</summary>
    public static FeatureSpaceStats Measure(Tensor features, Tensor labels)
    {
        if (features.device_type != labels.device_type || features.device_index != labels.device_index)
            throw new ArgumentException($"features are on {features.device} and labels on {labels.device}: give both on one device.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        var f = nn.functional.normalize(features.to_type(ScalarType.Float64), dim: 1);
        var classes = labels.unique().Item1.cpu().data<long>().ToArray(); // the class list is read on the host
        if (classes.Length < 2) throw new ArgumentException($"need features of at least two classes, got {classes.Length}.");
        var centroids = stack(classes.Select(c => f[labels.eq(held.Of(c))].mean(new long[] { 0 })).ToArray());
        var index = zeros_like(labels);
        for (var i = 0; i < classes.Length; i++) index.masked_fill_(labels.eq(held.Of(classes[i])), held.Of(i));
        var own = centroids.index_select(0, index);
        var intra = (f - own).pow(Scalars.Two).sum(1).mean().item<double>();
        var dist = cdist(centroids, centroids).pow(Scalars.Two);
        var pairs = classes.Length * (classes.Length - 1);
        var inter = dist.sum().item<double>() / pairs;
        var nearest = cdist(f, centroids).argmin(1);
        var accuracy = (nearest == index).to_type(ScalarType.Float64).mean().item<double>();
        return new FeatureSpaceStats(intra, inter, inter / Math.Max(intra, 1e-12), accuracy, classes.Length);
    }
}
