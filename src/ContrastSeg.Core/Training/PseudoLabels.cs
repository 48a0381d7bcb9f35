using ContrastSeg.Runtime;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>
/// Confidence thresholds for pseudo-labels (paper: 0.8 for object classes on both datasets, 0.97 for
/// the VOC background class). A pixel keeps its predicted class when the softmax probability of that
/// class exceeds the class's threshold; otherwise it becomes the ignore label.
/// </summary>
/// <param name="ObjectThreshold">Threshold for every class but the background.</param>
/// <param name="BackgroundThreshold">Threshold of the background class, or null when the dataset has none (Cityscapes).</param>
/// <param name="BackgroundClass">Index of the background class.</param>
/// <param name="PerClass">Per-class overrides (class index -> threshold).</param>
/// <exception cref="ConfigException">A threshold is not in [0, 1) (the field names it), checked when the options are made.</exception>
public sealed record PseudoLabelOptions(double ObjectThreshold = 0.8, double? BackgroundThreshold = 0.97, int BackgroundClass = 0,
    IReadOnlyDictionary<int, double>? PerClass = null)
{
    /// <summary>Threshold for every class but the background.</summary>
    public double ObjectThreshold { get; init; } = Checked(ObjectThreshold, nameof(ObjectThreshold));

    /// <summary>Threshold of the background class, or null when the dataset has none.</summary>
    public double? BackgroundThreshold { get; init; } = BackgroundThreshold is { } bg ? Checked(bg, nameof(BackgroundThreshold)) : null;

    /// <summary>Returns <paramref name="threshold"/> when it is in [0, 1) (1 or more would keep no pixel).</summary>
    public static double Checked(double threshold, string field) =>
        threshold is >= 0 and < 1 ? threshold
            : throw new ConfigException($"{field} = {threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)} is invalid: a softmax confidence threshold must be in [0, 1)", field);

    /// <summary>The threshold of each of <paramref name="numClasses"/> classes; values must lie in [0, 1).</summary>
    public double[] Thresholds(int numClasses)
    {
        var t = Enumerable.Repeat(ObjectThreshold, numClasses).ToArray();
        if (BackgroundThreshold is { } bg && BackgroundClass >= 0 && BackgroundClass < numClasses) t[BackgroundClass] = bg;
        if (PerClass is not null)
            foreach (var (c, v) in PerClass)
            {
                if (c < 0 || c >= numClasses) throw new ArgumentException($"PerClass threshold for class {c}, but there are {numClasses} classes.");
                t[c] = v;
            }
        for (var c = 0; c < numClasses; c++)
            if (!(t[c] >= 0 && t[c] < 1)) throw new ArgumentException($"threshold of class {c} is {t[c]}; it must be in [0, 1).");
        return t;
    }
}

/// <summary>Turns predicted probabilities into pseudo-labels.</summary>
public static class PseudoLabels
{
    /// <summary>
    /// Labels [B, H, W] (int64) from probabilities [B, C, H, W]: the argmax class where its probability
    /// exceeds that class's threshold, <paramref name="ignoreLabel"/> elsewhere.
    /// </summary>
    public static Tensor Select(Tensor probabilities, PseudoLabelOptions options, long ignoreLabel = 255)
    {
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        var classes = (int)probabilities.shape[1];
        var thresholds = tensor(options.Thresholds(classes), ScalarType.Float32, device: probabilities.device);
        var (confidence, predicted) = probabilities.max(1);
        var keep = confidence > thresholds.index_select(0, predicted.flatten()).reshape(predicted.shape);
        return predicted.masked_fill(keep.logical_not(), held.Of(ignoreLabel)).MoveToOuterDisposeScope();
    }

    /// <summary>Fraction of pixels that kept a label (how much of the unlabelled data is used).</summary>
    public static double Coverage(Tensor pseudoLabels, long ignoreLabel = 255)
    {
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        return pseudoLabels.ne(held.Of(ignoreLabel)).to_type(ScalarType.Float64).mean().item<double>();
    }
}
