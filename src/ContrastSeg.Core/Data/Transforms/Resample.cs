namespace ContrastSeg.Data;

/// <summary>
/// Image resampling on interleaved 8-bit pixels with the half-pixel convention
/// (the pixel centres of input and output cover the same extent, as PyTorch's align_corners=false).
/// </summary>
public static class Resample
{
    /// <summary>Bilinear resize of an RGB image.</summary>
    public static RgbImage Bilinear(RgbImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new RgbImage(width, height, Bilinear(image.Pixels, image.Width, image.Height, 3, width, height));
    }

    /// <summary>Nearest-neighbour resize of a label map (labels are never blended).</summary>
    public static LabelMap Nearest(LabelMap labels, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return new LabelMap(width, height, Nearest(labels.Labels, labels.Width, labels.Height, 1, width, height));
    }

    /// <summary>Bilinear resize of <paramref name="channels"/>-channel interleaved bytes.</summary>
    public static byte[] Bilinear(ReadOnlySpan<byte> src, int srcWidth, int srcHeight, int channels, int width, int height)
    {
        Check(src, srcWidth, srcHeight, channels, width, height);
        var x0 = new int[width];
        var x1 = new int[width];
        var fx = new float[width];
        Axis(srcWidth, width, x0, x1, fx);
        var y0 = new int[height];
        var y1 = new int[height];
        var fy = new float[height];
        Axis(srcHeight, height, y0, y1, fy);

        var dst = new byte[width * height * channels];
        var stride = srcWidth * channels;
        for (var y = 0; y < height; y++)
        {
            var r0 = y0[y] * stride;
            var r1 = y1[y] * stride;
            var wy = fy[y];
            var o = y * width * channels;
            for (var x = 0; x < width; x++)
            {
                int a = x0[x] * channels, b = x1[x] * channels;
                var wx = fx[x];
                for (var c = 0; c < channels; c++)
                {
                    var top = src[r0 + a + c] + (src[r0 + b + c] - src[r0 + a + c]) * wx;
                    var bottom = src[r1 + a + c] + (src[r1 + b + c] - src[r1 + a + c]) * wx;
                    var v = top + (bottom - top) * wy;
                    dst[o++] = (byte)Math.Clamp((int)(v + 0.5f), 0, 255);
                }
            }
        }
        return dst;
    }

    /// <summary>Nearest-neighbour resize of <paramref name="channels"/>-channel interleaved bytes.</summary>
    public static byte[] Nearest(ReadOnlySpan<byte> src, int srcWidth, int srcHeight, int channels, int width, int height)
    {
        Check(src, srcWidth, srcHeight, channels, width, height);
        var xs = new int[width];
        for (var x = 0; x < width; x++) xs[x] = Math.Min(srcWidth - 1, (int)((x + 0.5) * srcWidth / width));
        var dst = new byte[width * height * channels];
        var o = 0;
        for (var y = 0; y < height; y++)
        {
            var sy = Math.Min(srcHeight - 1, (int)((y + 0.5) * srcHeight / height));
            var row = sy * srcWidth * channels;
            for (var x = 0; x < width; x++)
                for (var c = 0; c < channels; c++)
                    dst[o++] = src[row + xs[x] * channels + c];
        }
        return dst;
    }

    private static void Axis(int inSize, int outSize, int[] i0, int[] i1, float[] f)
    {
        var scale = (double)inSize / outSize;
        for (var i = 0; i < outSize; i++)
        {
            var s = Math.Clamp((i + 0.5) * scale - 0.5, 0, inSize - 1);
            var lo = (int)s;
            i0[i] = lo;
            i1[i] = Math.Min(lo + 1, inSize - 1);
            f[i] = (float)(s - lo);
        }
    }

    private static void Check(ReadOnlySpan<byte> src, int srcWidth, int srcHeight, int channels, int width, int height)
    {
        if (srcWidth < 1 || srcHeight < 1 || width < 1 || height < 1 || channels < 1)
            throw new ArgumentException($"Cannot resize {srcWidth}x{srcHeight}x{channels} to {width}x{height}.");
        if (src.Length != srcWidth * srcHeight * channels)
            throw new ArgumentException($"A {srcWidth}x{srcHeight}x{channels} image needs {srcWidth * srcHeight * channels} bytes, got {src.Length}.");
    }
}
