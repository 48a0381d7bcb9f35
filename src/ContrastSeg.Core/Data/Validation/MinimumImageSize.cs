using System.Globalization;

namespace ContrastSeg.Data;

/// <summary>
/// The smallest image a model reads: each side, as loaded (after <see cref="Resize"/>), at least <see cref="Side"/>
/// pixels. Validation, evaluation, prediction and pseudo-labelling read images whole, so a smaller one fails there,
/// after training; runs and the validator check it beforehand, from image headers.
/// </summary>
/// <param name="Side">The smallest width and height, in pixels, as loaded.</param>
/// <param name="Why">Where <paramref name="Side"/> comes from, for messages, e.g. "the model's output stride, Model.OutputStride = 8".</param>
/// <param name="Resize">The factor images are loaded at (<c>Data.Resize</c>; 1 = as stored), with <see cref="ResizedDataset"/>'s rounding.</param>
public sealed record MinimumImageSize(int Side, string Why, double Resize = 1.0)
{
    /// <summary>The minimum of a model whose encoder has output stride <paramref name="outputStride"/> (see <c>EncoderOptions.MinInputSize</c>).</summary>
    public static MinimumImageSize OfModel(int outputStride, double resize = 1.0) =>
        new(outputStride, $"the model's output stride, Model.OutputStride = {outputStride}", resize);

    /// <summary>"at least 8x8 pixels after Data.Resize = 1 (the model's output stride, ...)": what is checked, for reports.</summary>
    public override string ToString() => $"images at least {Side}x{Side} pixels after Data.Resize = {Format(Resize)} ({Why})";

    /// <summary>The problem of an image stored at <paramref name="width"/> x <paramref name="height"/>, or null when it is large enough.</summary>
    public DatasetIssue? Check(string image, int width, int height) => Check(image, (width, height), ResizedDataset.SizeOf(width, height, Resize));

    /// <summary>The problem of an image stored at <paramref name="stored"/> and loaded (resized by the dataset) at <paramref name="loaded"/>, or null.</summary>
    internal DatasetIssue? Check(string image, (int Width, int Height) stored, (int Width, int Height) loaded)
    {
        if (loaded.Width >= Side && loaded.Height >= Side) return null;
        return new DatasetIssue(image, DatasetProblem.ImageTooSmall,
            $"image is {stored.Width}x{stored.Height} pixels, {loaded.Width}x{loaded.Height} after Data.Resize = {Format(Resize)}: " +
            $"smaller than {Side}x{Side}, the smallest image the model reads ({Why}). " +
            "Validation, evaluation and prediction read images whole: remove it from the split" +
            (Resize < 1 ? ", or raise Data.Resize" : "") + (Side > 8 ? ", or use a model of a smaller output stride" : ""));
    }

    private static string Format(double v) => v.ToString("G", CultureInfo.InvariantCulture);
}
