using System.Buffers.Binary;
using System.IO.Compression;
using ContrastSeg.Data;
using SkiaSharp;

namespace ContrastSeg.Tests.Data;

/// <summary>Tiny synthetic images and masks for bad-input tests.</summary>
public static class TestFiles
{
    /// <summary>A deterministic RGB test pattern.</summary>
    public static RgbImage Pattern(int width, int height)
    {
        var px = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        for (var x = 0; x < width; x++)
        {
            var i = 3 * (y * width + x);
            px[i] = (byte)(x * 255 / Math.Max(1, width - 1));
            px[i + 1] = (byte)(y * 255 / Math.Max(1, height - 1));
            px[i + 2] = (byte)((x * 7 + y * 13) % 256);
        }
        return new RgbImage(width, height, px);
    }

    /// <summary>Labels with a few class blocks and a 255 border.</summary>
    public static LabelMap Labels(int width, int height, byte classes = 3)
    {
        var l = new byte[width * height];
        for (var y = 0; y < height; y++)
        for (var x = 0; x < width; x++)
            l[y * width + x] = x == 0 || y == 0 ? LabelMap.Ignore : (byte)((x / 3 + y / 2) % classes);
        return new LabelMap(width, height, l);
    }

    /// <summary>Writes a JPEG with SkiaSharp.</summary>
    public static void WriteJpeg(string path, int width, int height, int quality = 90) =>
        File.WriteAllBytes(path, Encode(width, height, SKEncodedImageFormat.Jpeg, quality));

    /// <summary>Writes an RGB(A) PNG with SkiaSharp (colour type 2 or 6, whatever Skia picks).</summary>
    public static void WriteSkiaPng(string path, int width, int height) =>
        File.WriteAllBytes(path, Encode(width, height, SKEncodedImageFormat.Png, 100));

    /// <summary>
    /// An 8-bit grayscale PNG of one colour (0), compressed as it is written: a few hundred kilobytes however many
    /// pixels it claims, as a decompression bomb is.
    /// </summary>
    public static byte[] BlankGrayscalePng(int width, int height)
    {
        var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
        {
            var row = new byte[width + 1]; // filter byte 0 (None), then the samples
            for (var y = 0; y < height; y++) z.Write(row);
        }
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth; colour type 0, compression 0, filter 0, no interlace
        var png = new MemoryStream();
        png.Write(PngIndexReader.Signature);
        foreach (var (type, body) in new[] { ("IHDR", ihdr), ("IDAT", idat.ToArray()), ("IEND", Array.Empty<byte>()) })
        {
            var header = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(header, body.Length);
            System.Text.Encoding.ASCII.GetBytes(type, header.AsSpan(4));
            png.Write(header);
            png.Write(body);
            var crc = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32.OfChunk(header.AsSpan(4), body));
            png.Write(crc);
        }
        return png.ToArray();
    }

    /// <summary>A JPEG of <paramref name="image"/>, encoded by SkiaSharp.</summary>
    public static byte[] Jpeg(RgbImage image, int quality = 100) => Encode(image, SKEncodedImageFormat.Jpeg, quality);

    /// <summary>
    /// <paramref name="jpeg"/> with an EXIF segment (APP1) right after its start marker holding only the Orientation tag
    /// (0x0112) set to <paramref name="orientation"/> (1..8), as cameras write it for a photo held turned.
    /// </summary>
    public static byte[] WithExifOrientation(byte[] jpeg, int orientation)
    {
        byte[] tiff =
        [
            (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8,      // big-endian TIFF header, first IFD at offset 8
            0, 1,                                         // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (byte)orientation, 0, 0, // Orientation, SHORT, count 1, value
            0, 0, 0, 0,                                   // no next IFD
        ];
        var length = 2 + 6 + tiff.Length;
        byte[] app1 = [0xFF, 0xE1, (byte)(length >> 8), (byte)length, (byte)'E', (byte)'x', (byte)'i', (byte)'f', 0, 0, .. tiff];
        return [.. jpeg[..2], .. app1, .. jpeg[2..]];
    }

    private static byte[] Encode(int width, int height, SKEncodedImageFormat format, int quality) =>
        Encode(Pattern(width, height), format, quality);

    private static byte[] Encode(RgbImage img, SKEncodedImageFormat format, int quality)
    {
        var (width, height) = (img.Width, img.Height);
        using var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (var y = 0; y < height; y++)
        for (var x = 0; x < width; x++)
        {
            var i = 3 * (y * width + x);
            bmp.SetPixel(x, y, new SKColor(img.Pixels[i], img.Pixels[i + 1], img.Pixels[i + 2]));
        }
        using var data = bmp.Encode(format, quality);
        return data.ToArray();
    }
}
