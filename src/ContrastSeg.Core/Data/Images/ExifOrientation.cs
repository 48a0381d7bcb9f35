using SkiaSharp;

namespace ContrastSeg.Data;

/// <summary>
/// A photo's EXIF orientation tag (<see cref="SKEncodedOrigin"/>, whose values are the tag's 1..8): how its stored
/// pixels turn into the view that viewers and annotation tools show. Cameras store portrait shots as landscape pixels
/// with Orientation 6 or 8, and masks are drawn on what the tool showed, so the kit loads photos as displayed
/// (as OpenCV's imread and most training pipelines do). Masks are never turned: they are index maps, not photos.
/// </summary>
internal static class ExifOrientation
{
    /// <summary>True for the orientations that swap width and height (5..8: a quarter turn, possibly mirrored).</summary>
    public static bool SwapsAxes(SKEncodedOrigin origin) => origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop
        or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>The size shown for a stored image of <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static (int Width, int Height) Displayed(int width, int height, SKEncodedOrigin origin) =>
        SwapsAxes(origin) ? (height, width) : (width, height);

    /// <summary>What the tag asks for, e.g. "EXIF Orientation 6: turned 90° clockwise".</summary>
    public static string Describe(SKEncodedOrigin origin) => $"EXIF Orientation {(int)origin}: " + origin switch
    {
        SKEncodedOrigin.TopRight => "mirrored left-right",
        SKEncodedOrigin.BottomRight => "turned 180°",
        SKEncodedOrigin.BottomLeft => "mirrored top-bottom",
        SKEncodedOrigin.LeftTop => "mirrored along the main diagonal (transposed)",
        SKEncodedOrigin.RightTop => "turned 90° clockwise",
        SKEncodedOrigin.RightBottom => "mirrored along the other diagonal (transversed)",
        SKEncodedOrigin.LeftBottom => "turned 90° counter-clockwise",
        _ => "as stored",
    };

    /// <summary>The displayed image of <paramref name="stored"/> pixels.</summary>
    public static RgbImage Apply(RgbImage stored, SKEncodedOrigin origin)
    {
        if (origin is SKEncodedOrigin.TopLeft or < SKEncodedOrigin.TopLeft or > SKEncodedOrigin.LeftBottom) return stored;
        var (w, h) = (stored.Width, stored.Height);
        var (ow, oh) = Displayed(w, h, origin);
        var src = stored.Pixels;
        var dst = new byte[src.Length];
        for (var y = 0; y < oh; y++)
        for (var x = 0; x < ow; x++)
        {
            // The stored pixel shown at (x, y).
            var (sx, sy) = origin switch
            {
                SKEncodedOrigin.TopRight => (w - 1 - x, y),
                SKEncodedOrigin.BottomRight => (w - 1 - x, h - 1 - y),
                SKEncodedOrigin.BottomLeft => (x, h - 1 - y),
                SKEncodedOrigin.LeftTop => (y, x),
                SKEncodedOrigin.RightTop => (y, h - 1 - x),
                SKEncodedOrigin.RightBottom => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x), // LeftBottom
            };
            var s = 3 * (sy * w + sx);
            var d = 3 * (y * ow + x);
            dst[d] = src[s];
            dst[d + 1] = src[s + 1];
            dst[d + 2] = src[s + 2];
        }
        return new RgbImage(ow, oh, dst);
    }
}
