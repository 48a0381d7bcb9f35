using System.Globalization;

namespace ContrastSeg.Data;

/// <summary>
/// The most pixels an image or mask may have, checked from its header before anything is decoded. A PNG of one colour
/// compresses about 1000:1, so a 420 KB file can hold 12000x12000 pixels and take gigabytes to decode: without a limit
/// one such file (a decompression bomb, or an export at the wrong scale) is trained on silently at many times the memory.
/// The limit is the setting <c>Data.MaxImagePixels</c> (<c>validate-data --max-image-pixels</c>), which a user with
/// genuinely large images raises; an image above it is refused, never resized, so the limit cannot change what is trained.
/// </summary>
public static class PixelLimit
{
    /// <summary>The default: 8192x8192 = 67,108,864 pixels (64 megapixels; 256 MB as RGBA), 32 times a Cityscapes frame.</summary>
    public const int Default = 8192 * 8192;

    /// <summary>The largest limit: one RGBA decode buffer (4 bytes a pixel) is a .NET array of at most 2^31 - 1 bytes.</summary>
    public const int Max = int.MaxValue / 4;

    /// <summary>Where the limit is set, as messages say it.</summary>
    public const string Setting = "Data.MaxImagePixels";

    /// <summary>
    /// Throws a <see cref="DatasetException"/> of kind <see cref="DatasetProblem.TooManyPixels"/> naming <paramref name="path"/>,
    /// the size and the setting when <paramref name="width"/> x <paramref name="height"/> is above <paramref name="maxPixels"/>.
    /// </summary>
    internal static void Check(int width, int height, int maxPixels, string kind, string path)
    {
        if (maxPixels is < 1 or > Max) throw new ArgumentOutOfRangeException(nameof(maxPixels), maxPixels, $"A pixel limit is between 1 and {Max}.");
        var pixels = (long)width * height;
        if (pixels <= maxPixels) return;
        var inv = CultureInfo.InvariantCulture;
        throw Problems.Fail(DatasetProblem.TooManyPixels,
            string.Format(inv, "{0} of {1}x{2} = {3:N0} pixels, above the limit of {4:N0} pixels ({5}; default {6:N0}): it is refused before decoding, ", kind, width, height, pixels, maxPixels, Setting, Default) +
            string.Format(inv, "as a small file that decodes this large (about {0:0.0} GB as RGBA) is a decompression bomb or an export at the wrong scale. ", pixels * 4 / 1e9) +
            string.Format(inv, "If the image is meant to be this large, raise the limit: --set {0}={1} (validate-data --max-image-pixels {1}), at most {2:N0}", Setting, pixels, Max),
            path);
    }
}
