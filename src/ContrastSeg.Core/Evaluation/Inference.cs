using ContrastSeg.Models;
using ContrastSeg.Runtime;
using ContrastSeg.Training;
using static TorchSharp.torch;

namespace ContrastSeg.Evaluation;

/// <summary>Test-time settings: horizontal flip and multi-scale averaging of softmax probabilities.</summary>
/// <param name="Flip">Also predict the mirrored image and average.</param>
/// <param name="Scales">Input scales to average over (1.0 = the image as is), each in (0, <see cref="TrainConfig.MaxScale"/>].</param>
/// <exception cref="ConfigException">A scale is not a finite number in that range (field <c>Scales</c>).</exception>
public sealed record InferenceOptions(bool Flip = false, IReadOnlyList<double>? Scales = null)
{
    /// <summary>Input scales to average over, checked when the options are made (before any work).</summary>
    public IReadOnlyList<double>? Scales { get; init; } = Checked(Scales);

    /// <summary>Scales in use (default: just 1.0).</summary>
    public IReadOnlyList<double> ScalesOrDefault => Scales is { Count: > 0 } s ? s : new[] { 1.0 };

    /// <summary>Returns <paramref name="scales"/> when every scale is a finite number in (0, <see cref="TrainConfig.MaxScale"/>].</summary>
    public static IReadOnlyList<double>? Checked(IReadOnlyList<double>? scales)
    {
        foreach (var s in scales ?? Array.Empty<double>())
            if (!(s > 0 && s <= TrainConfig.MaxScale))
                throw new ConfigException(
                    $"test-time scale {s.ToString(System.Globalization.CultureInfo.InvariantCulture)} is invalid: each scale must be in (0, {TrainConfig.MaxScale}] (1 = the image as is)", "Scales");
        return scales;
    }
}

/// <summary>Whole-image inference: fully convolutional, logits bilinearly upsampled to the input size.</summary>
public static class Inference
{
    /// <summary>
    /// Class probabilities [B, C, H, W] for normalised images [B, 3, H, W], averaged over the
    /// test-time augmentations, on the model's device (images elsewhere are moved there). The model is put in eval mode
    /// and gradients are off.
    /// </summary>
    public static Tensor Probabilities(DeepLabV3Plus model, Tensor images, InferenceOptions? options = null)
    {
        options ??= new InferenceOptions();
        model.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = Devices.Of(model);
        if (images.device_type != device.type || images.device_index != device.index) images = images.to(device);
        var (h, w) = (images.shape[2], images.shape[3]);
        InferenceOptions.Checked(options.Scales); // again: `with` bypasses the constructor's check
        Tensor? sum = null;
        var views = 0;
        foreach (var scale in options.ScalesOrDefault)
        {
            var input = scale == 1.0 ? images : nn.functional.interpolate(images,
                new[] { Math.Max(model.OutputStride, (long)Math.Round(h * scale)), Math.Max(model.OutputStride, (long)Math.Round(w * scale)) },
                mode: InterpolationMode.Bilinear, align_corners: false);
            foreach (var flip in options.Flip ? new[] { false, true } : new[] { false })
            {
                var x = flip ? input.flip(3) : input;
                var logits = model.forward(x);
                if (flip) logits = logits.flip(3);
                if (logits.shape[2] != h || logits.shape[3] != w)
                    logits = nn.functional.interpolate(logits, new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
                var p = logits.softmax(1);
                sum = sum is null ? p : sum.add(p, Scalars.One);
                views++;
            }
        }
        using var count = new HeldScalars();
        return sum!.div(count.Of(views)).MoveToOuterDisposeScope();
    }

    /// <summary>Predicted class per pixel [B, H, W] (int64).</summary>
    public static Tensor Predict(DeepLabV3Plus model, Tensor images, InferenceOptions? options = null)
    {
        using var scope = NewDisposeScope();
        return Probabilities(model, images, options).argmax(1).MoveToOuterDisposeScope();
    }
}
