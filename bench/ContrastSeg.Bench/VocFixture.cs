using System.Runtime.InteropServices;
using ContrastSeg.Data;
using SkiaSharp;

namespace ContrastSeg.Bench;

/// <summary>
/// A VOC2012-layout folder written by the benchmark itself: 500x375 JPEG photos-like images
/// (<c>JPEGImages</c>), 8-bit palette PNG masks (<c>SegmentationClass</c>, objects with a 5-pixel void
/// border as in VOC) and the split files <c>ImageSets/Segmentation/train_aug.txt</c> and <c>val.txt</c>.
/// The images are smooth gradients with shaded, textured objects and sensor-like noise, so that their
/// JPEG files have about the size (and decoding cost) of VOC's (~100 KB), not that of flat colours.
/// </summary>
internal static class VocFixture
{
    public const int Width = 500;
    public const int Height = 375;

    /// <summary>Writes <paramref name="count"/> samples under <paramref name="root"/> (the VOC2012 folder); returns the mean JPEG and PNG sizes.</summary>
    public static (double JpegBytes, double PngBytes) Write(string root, int count, int seed = 0)
    {
        foreach (var dir in new[] { "JPEGImages", "SegmentationClass", Path.Combine("ImageSets", "Segmentation") })
            Directory.CreateDirectory(Path.Combine(root, dir));
        var ids = Enumerable.Range(0, count).Select(i => $"2026_{i:D6}").ToArray();
        long jpeg = 0, png = 0;
        for (var i = 0; i < count; i++)
        {
            var (rgb, labels) = Sample(new Random(seed * 100_003 + i));
            var jpegPath = Path.Combine(root, "JPEGImages", ids[i] + ".jpg");
            File.WriteAllBytes(jpegPath, EncodeJpeg(rgb, quality: 90));
            var pngPath = Path.Combine(root, "SegmentationClass", ids[i] + ".png");
            ImageCodec.WriteIndexPng(pngPath, new LabelMap(Width, Height, labels), Palettes.Voc);
            jpeg += new FileInfo(jpegPath).Length;
            png += new FileInfo(pngPath).Length;
        }
        File.WriteAllLines(Path.Combine(root, "ImageSets", "Segmentation", "train_aug.txt"), ids);
        File.WriteAllLines(Path.Combine(root, "ImageSets", "Segmentation", "val.txt"), ids.Take(Math.Max(1, count / 4)));
        return ((double)jpeg / count, (double)png / count);
    }

    private static (byte[] Rgb, byte[] Labels) Sample(Random rng)
    {
        const int w = Width, h = Height;
        var px = new float[w * h * 3];
        var labels = new byte[w * h];
        // Background: vertical gradient between two colours with a low-frequency ripple.
        var top = Colour(rng);
        var bottom = Colour(rng);
        var ripple = 10 + 20 * rng.NextDouble();
        var grain = 1.5 + 2.5 * rng.NextDouble(); // fine texture (grass, fabric, foliage)
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var t = (float)y / h + 0.05f * MathF.Sin((float)(x / ripple + y / (2 * ripple)));
                var texture = 18f * MathF.Sin((float)(x / grain)) * MathF.Sin((float)(y / (1.3 * grain) + 0.7 * MathF.Sin(x / 9f)));
                var o = (y * w + x) * 3;
                for (var c = 0; c < 3; c++) px[o + c] = top[c] + (bottom[c] - top[c]) * Math.Clamp(t, 0f, 1f) + texture;
            }
        // Objects: ellipses and boxes with shading and a stripe texture, painted in order (later ones cover).
        var objects = 1 + rng.Next(4);
        var classOf = new byte[w * h];
        for (var k = 0; k < objects; k++)
        {
            var cls = (byte)(1 + rng.Next(20));
            var colour = Colour(rng);
            double cx = rng.NextDouble() * w, cy = rng.NextDouble() * h;
            double rx = 30 + rng.NextDouble() * 150, ry = 30 + rng.NextDouble() * 120;
            var box = rng.NextDouble() < 0.4;
            var period = 3 + rng.NextDouble() * 12;
            for (var y = Math.Max(0, (int)(cy - ry)); y < Math.Min(h, (int)(cy + ry) + 1); y++)
                for (var x = Math.Max(0, (int)(cx - rx)); x < Math.Min(w, (int)(cx + rx) + 1); x++)
                {
                    double dx = (x - cx) / rx, dy = (y - cy) / ry;
                    var d = box ? Math.Max(Math.Abs(dx), Math.Abs(dy)) : Math.Sqrt(dx * dx + dy * dy);
                    if (d > 1) continue;
                    classOf[y * w + x] = cls;
                    var shade = (float)(0.55 + 0.45 * (1 - d) + 0.12 * Math.Sin((x + 0.5 * y) / period) + 0.08 * Math.Sin(x / 1.7) * Math.Cos(y / 2.3));
                    var o = (y * w + x) * 3;
                    for (var c = 0; c < 3; c++) px[o + c] = colour[c] * shade;
                }
        }
        // Labels with a 5-pixel void band where the class changes (VOC marks object borders 255).
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var v = classOf[y * w + x];
                var border = false;
                for (var dy = -2; dy <= 2 && !border; dy++)
                    for (var dx = -2; dx <= 2; dx++)
                    {
                        int yy = y + dy, xx = x + dx;
                        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                        if (classOf[yy * w + xx] != v) { border = true; break; }
                    }
                labels[y * w + x] = border ? LabelMap.Ignore : v;
            }
        // Fine detail: luminance noise (shared by the channels, like texture) and a little chroma noise.
        var luma = (float)(32 + 10 * rng.NextDouble());
        const float chroma = 6f;
        var rgb = new byte[px.Length];
        for (var i = 0; i < px.Length; i += 3)
        {
            var l = luma * (float)(rng.NextDouble() + rng.NextDouble() - 1);
            for (var c = 0; c < 3; c++)
                rgb[i + c] = (byte)Math.Clamp((int)(px[i + c] + l + chroma * (float)(rng.NextDouble() + rng.NextDouble() - 1) + 0.5f), 0, 255);
        }
        return (rgb, labels);
    }

    private static float[] Colour(Random rng) => [rng.Next(256), rng.Next(256), rng.Next(256)];

    private static byte[] EncodeJpeg(byte[] rgb, int quality)
    {
        var rgba = new byte[Width * Height * 4];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgba[j] = rgb[i];
            rgba[j + 1] = rgb[i + 1];
            rgba[j + 2] = rgb[i + 2];
            rgba[j + 3] = 255;
        }
        using var bitmap = new SKBitmap(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, quality);
        return data.ToArray();
    }
}
