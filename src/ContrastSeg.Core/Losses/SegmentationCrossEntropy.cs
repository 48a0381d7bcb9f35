using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Losses;

/// <summary>Pixel-wise softmax cross-entropy for segmentation, in float32, with an ignore label.</summary>
public static class SegmentationCrossEntropy
{
    /// <summary>
    /// Mean cross-entropy over the non-ignored pixels. Logits are first upsampled bilinearly to the
    /// label size (the paper upsamples 129x129 logits to the 513x513 crop). A batch whose pixels are
    /// all ignored gives 0, not NaN.
    /// </summary>
    /// <param name="logits">[B, C, h, w] class scores.</param>
    /// <param name="labels">[B, H, W] integer labels in [0, C) or <paramref name="ignoreIndex"/>.</param>
    /// <param name="ignoreIndex">Label that contributes nothing (default 255).</param>
    /// <exception cref="ArgumentException">Shapes do not fit, or a label is outside [0, C) and not the ignore label (the message names the value).</exception>
    public static Tensor Compute(Tensor logits, Tensor labels, long ignoreIndex = 255)
    {
        if (logits.dim() != 4)
            throw new ArgumentException($"logits must be [B, C, h, w], got [{string.Join(", ", logits.shape)}].", nameof(logits));
        if (labels.dim() != 3 || labels.shape[0] != logits.shape[0])
            throw new ArgumentException($"labels must be [B, H, W] with B = {logits.shape[0]}, got [{string.Join(", ", labels.shape)}].", nameof(labels));
        if (labels.is_floating_point())
            throw new ArgumentException($"labels must hold integer labels, got {labels.dtype}.", nameof(labels));

        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        var classes = logits.shape[1];
        var target = labels.to_type(ScalarType.Int64);
        var counted = target.ne(held.Of(ignoreIndex));
        var outOfRange = counted & (target.lt(Scalars.ZeroInt) | target.ge(held.Of(classes)));
        if (outOfRange.any().item<bool>())
        {
            var bad = target.masked_select(outOfRange)[0].item<long>();
            throw new ArgumentException(
                $"label value {bad} is outside the class range 0..{classes - 1} and is not the ignore label {ignoreIndex} " +
                $"({outOfRange.sum().item<long>()} pixel(s) affected).", nameof(labels));
        }

        var x = logits.to_type(ScalarType.Float32);
        if (x.shape[2] != target.shape[1] || x.shape[3] != target.shape[2])
            x = nn.functional.interpolate(x, new[] { target.shape[1], target.shape[2] }, mode: InterpolationMode.Bilinear, align_corners: false);
        var sum = nn.functional.cross_entropy(x, target, ignore_index: ignoreIndex, reduction: nn.Reduction.Sum);
        var loss = sum / counted.sum().to_type(ScalarType.Float32).clamp_min(Scalars.One);
        return loss.MoveToOuterDisposeScope();
    }
}
