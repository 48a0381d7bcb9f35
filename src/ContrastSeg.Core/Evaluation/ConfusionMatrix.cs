using ContrastSeg.Runtime;
using static TorchSharp.torch;

namespace ContrastSeg.Evaluation;

/// <summary>
/// Pixel confusion matrix over a whole split: rows are ground-truth classes, columns predictions.
/// Pixels whose label is the ignore label are not counted.
/// </summary>
public sealed class ConfusionMatrix
{
    private readonly long[,] _counts;

    /// <summary>An empty matrix for <paramref name="numClasses"/> classes.</summary>
    public ConfusionMatrix(int numClasses, long ignoreLabel = 255)
    {
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "need at least one class");
        NumClasses = numClasses;
        IgnoreLabel = ignoreLabel;
        _counts = new long[numClasses, numClasses];
    }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>The label that is not counted.</summary>
    public long IgnoreLabel { get; }

    /// <summary>Pixels of true class <paramref name="truth"/> predicted as <paramref name="predicted"/>.</summary>
    public long this[int truth, int predicted] => _counts[truth, predicted];

    /// <summary>
    /// Adds predictions [B, H, W] (class indices) against labels [B, H, W]. Labels outside
    /// [0, NumClasses) that are not the ignore label are an error (the message names the value).
    /// </summary>
    public void Add(Tensor predictions, Tensor labels)
    {
        if (!predictions.shape.SequenceEqual(labels.shape))
            throw new ArgumentException($"predictions [{string.Join(", ", predictions.shape)}] and labels [{string.Join(", ", labels.shape)}] differ in shape.");
        if (predictions.device_type != labels.device_type || predictions.device_index != labels.device_index)
            throw new ArgumentException($"predictions are on {predictions.device} and labels on {labels.device}: move the batch to the model's device first (Batch.To).");
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        var classes = held.Of(NumClasses);
        var y = labels.to_type(ScalarType.Int64).flatten();
        var p = predictions.to_type(ScalarType.Int64).flatten();
        var counted = y.ne(held.Of(IgnoreLabel));
        var bad = counted & (y.lt(Scalars.ZeroInt) | y.ge(classes));
        if (bad.any().item<bool>())
            throw new ArgumentException($"label value {y.masked_select(bad)[0].item<long>()} is outside 0..{NumClasses - 1} and is not the ignore label {IgnoreLabel}.");
        var badPrediction = p.lt(Scalars.ZeroInt) | p.ge(classes);
        if (badPrediction.any().item<bool>())
            throw new ArgumentException($"prediction {p.masked_select(badPrediction)[0].item<long>()} is outside 0..{NumClasses - 1}.");
        var index = y.masked_select(counted).mul(classes).add(p.masked_select(counted), Scalars.OneInt);
        var counts = index.bincount(null, NumClasses * NumClasses).cpu().data<long>().ToArray();
        for (var t = 0; t < NumClasses; t++)
            for (var q = 0; q < NumClasses; q++)
                _counts[t, q] += counts[t * NumClasses + q];
    }

    /// <summary>Adds raw counts (e.g. a matrix computed elsewhere, or merged from another process).</summary>
    public void Add(ConfusionMatrix other)
    {
        if (other.NumClasses != NumClasses) throw new ArgumentException($"class counts differ: {other.NumClasses} vs {NumClasses}.");
        for (var t = 0; t < NumClasses; t++)
            for (var q = 0; q < NumClasses; q++)
                _counts[t, q] += other._counts[t, q];
    }

    /// <summary>Counts as a jagged array (rows = truth), for serialisation.</summary>
    public long[][] ToArray() =>
        Enumerable.Range(0, NumClasses).Select(t => Enumerable.Range(0, NumClasses).Select(q => _counts[t, q]).ToArray()).ToArray();

    /// <summary>Builds a matrix from counts (rows = truth).</summary>
    public static ConfusionMatrix FromArray(long[][] counts, long ignoreLabel = 255)
    {
        var m = new ConfusionMatrix(counts.Length, ignoreLabel);
        for (var t = 0; t < counts.Length; t++)
        {
            if (counts[t].Length != counts.Length) throw new ArgumentException($"row {t} has {counts[t].Length} entries, expected {counts.Length}.");
            for (var q = 0; q < counts.Length; q++) m._counts[t, q] = counts[t][q];
        }
        return m;
    }

    /// <summary>
    /// The standard metrics. IoU of class c = TP / (TP + FP + FN). A class absent from both the
    /// ground truth and the predictions has no IoU (NaN) and is left out of the mean; a class present
    /// in the ground truth but never predicted has IoU 0 and counts (as in the VOC/Cityscapes tools,
    /// which compute the mean over classes with a non-zero union).
    /// </summary>
    public SegmentationMetrics Metrics()
    {
        var iou = new double[NumClasses];
        var accuracy = new double[NumClasses];
        long correct = 0, total = 0;
        for (var c = 0; c < NumClasses; c++)
        {
            long tp = _counts[c, c], rowSum = 0, colSum = 0;
            for (var k = 0; k < NumClasses; k++) { rowSum += _counts[c, k]; colSum += _counts[k, c]; }
            var union = rowSum + colSum - tp;
            iou[c] = union == 0 ? double.NaN : (double)tp / union;
            accuracy[c] = rowSum == 0 ? double.NaN : (double)tp / rowSum;
            correct += tp;
            total += rowSum;
        }
        static double NanMean(double[] v) => v.Any(x => !double.IsNaN(x)) ? v.Where(x => !double.IsNaN(x)).Average() : double.NaN;
        return new SegmentationMetrics(NanMean(iou), iou, total == 0 ? double.NaN : (double)correct / total, NanMean(accuracy), total);
    }
}

/// <summary>Metrics of a confusion matrix (fractions in [0, 1]; multiply by 100 for the usual percentages).</summary>
/// <param name="MeanIoU">Mean IoU over classes with a non-zero union.</param>
/// <param name="ClassIoU">IoU per class (NaN where the class is absent from truth and prediction).</param>
/// <param name="PixelAccuracy">Correct pixels / counted pixels.</param>
/// <param name="MeanClassAccuracy">Mean over classes present in the truth of per-class recall.</param>
/// <param name="Pixels">Counted (non-ignored) pixels.</param>
public sealed record SegmentationMetrics(double MeanIoU, IReadOnlyList<double> ClassIoU, double PixelAccuracy, double MeanClassAccuracy, long Pixels);
