using SkiaSharp;

namespace ContrastSeg.Data;

/// <summary>
/// Reads and writes the image files of segmentation datasets. Photos (JPEG/PNG, any colour type)
/// decode through SkiaSharp to 8-bit RGB without colour management, as displayed: an EXIF orientation
/// tag is applied (<see cref="ExifOrientation"/>), as viewers and annotation tools apply it. Index masks
/// decode exactly: the stored palette index or gray value of an 8-bit palette/grayscale PNG, never a
/// colour, and are never turned. A file whose header says it has more pixels than
/// <c>maxPixels</c> (<see cref="PixelLimit"/>) is refused before decoding. Every failure is a
/// <see cref="DatasetException"/> naming the file. Writers go through a temporary file and a rename.
/// </summary>
public static class ImageCodec
{
    /// <summary>Decodes a JPEG or PNG file of at most <paramref name="maxPixels"/> pixels to RGB, as displayed (EXIF orientation applied).</summary>
    public static RgbImage DecodeImage(string path, int maxPixels = PixelLimit.Default) => DecodeImage(ReadFile(path), path, maxPixels);

    /// <summary>Decodes JPEG or PNG bytes to RGB, as displayed; <paramref name="name"/> is used in error messages.</summary>
    public static RgbImage DecodeImage(byte[] data, string name, int maxPixels = PixelLimit.Default) => Decode(data, name, maxPixels).Image;

    /// <summary>Decodes a JPEG or PNG file as displayed, with the EXIF orientation that was applied (<see cref="SKEncodedOrigin.TopLeft"/>: none).</summary>
    internal static (RgbImage Image, SKEncodedOrigin Orientation) Decode(string path, int maxPixels) => Decode(ReadFile(path), path, maxPixels);

    private static unsafe (RgbImage Image, SKEncodedOrigin Orientation) Decode(byte[] data, string name, int maxPixels)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var codec = OpenCodec(data, name, maxPixels, out var kind);
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        var target = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[w * h * 4];
        SKCodecResult result;
        fixed (byte* p = rgba) result = codec.GetPixels(target, (IntPtr)p);
        if (result == SKCodecResult.IncompleteInput)
            throw Problems.Fail(DatasetProblem.CorruptFile, $"truncated {kind}: the image data ends early", name);
        if (result != SKCodecResult.Success)
            throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt {kind}: decoding failed ({result})", name);

        var rgb = new byte[w * h * 3];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgb[i] = rgba[j];
            rgb[i + 1] = rgba[j + 1];
            rgb[i + 2] = rgba[j + 2];
        }
        return (ExifOrientation.Apply(new RgbImage(w, h, rgb), codec.EncodedOrigin), codec.EncodedOrigin);
    }

    /// <summary>
    /// The size of a JPEG or PNG file as displayed (EXIF orientation applied) from its header, checked in a fraction of a full decode's time: the
    /// header must parse (as in <see cref="DecodeImage(string, int)"/>) and the file must end as a complete image
    /// does (a JPEG's end-of-image marker, a PNG's IEND chunk). A file that does not end so is decoded in full,
    /// so that only a real defect (e.g. a truncated file) is reported, with the same message as a decode gives.
    /// </summary>
    /// <exception cref="DatasetException">Missing, unreadable, not a JPEG/PNG, corrupt header, truncated, or more pixels than <paramref name="maxPixels"/>.</exception>
    public static (int Width, int Height) ProbeImage(string path, int maxPixels = PixelLimit.Default)
    {
        var (w, h, _) = Probe(path, maxPixels);
        return (w, h);
    }

    /// <summary><see cref="ProbeImage"/> with the EXIF orientation the size is after.</summary>
    internal static (int Width, int Height, SKEncodedOrigin Orientation) Probe(string path, int maxPixels)
    {
        var data = ReadFile(path);
        int w, h;
        bool complete;
        SKEncodedOrigin orientation;
        using (var codec = OpenCodec(data, path, maxPixels, out var kind))
        {
            orientation = codec.EncodedOrigin;
            (w, h) = ExifOrientation.Displayed(codec.Info.Width, codec.Info.Height, orientation);
            complete = kind == "PNG" ? EndsWithIend(data) : EndsWithEoi(data);
        }
        if (complete) return (w, h, orientation);
        var image = Decode(data, path, maxPixels).Image;
        return (image.Width, image.Height, orientation);
    }

    private static bool EndsWithIend(ReadOnlySpan<byte> data) =>
        data.Length >= 12 && data[^12..].SequenceEqual((ReadOnlySpan<byte>)[0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]);

    private static bool EndsWithEoi(ReadOnlySpan<byte> data)
    {
        var end = data.Length;
        while (end > 0 && data[end - 1] == 0) end--; // some writers pad after the marker
        return end >= 2 && data[end - 2] == 0xFF && data[end - 1] == 0xD9;
    }

    /// <summary>A codec over <paramref name="data"/> whose header parsed to a usable size of at most <paramref name="maxPixels"/>; <paramref name="kind"/> is "JPEG" or "PNG".</summary>
    private static SKCodec OpenCodec(byte[] data, string name, int maxPixels, out string kind)
    {
        kind = Sniff(data, name);
        var codec = SKCodec.Create(new MemoryStream(data, writable: false), out var createResult);
        if (codec is null)
        {
            throw createResult == SKCodecResult.IncompleteInput
                ? Problems.Fail(DatasetProblem.CorruptFile, $"truncated {kind}: the header ends early", name)
                : Problems.Fail(DatasetProblem.CorruptFile, $"corrupt {kind}: cannot read its header ({createResult})", name);
        }
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        try
        {
            if (w < 1 || h < 1) throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt {kind}: unusable size {w}x{h}", name);
            PixelLimit.Check(w, h, maxPixels, $"{kind} image", name);
            if ((long)w * h * 4 > int.MaxValue) throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt {kind}: unusable size {w}x{h}", name);
        }
        catch
        {
            codec.Dispose();
            throw;
        }
        return codec;
    }

    /// <summary>
    /// Decodes an index mask: an 8-bit palette PNG (the palette index of each pixel) or an 8-bit
    /// grayscale PNG (the gray value) of at most <paramref name="maxPixels"/> pixels. Any other PNG (RGB, RGBA, 16-bit,
    /// interlaced) is refused.
    /// </summary>
    public static LabelMap DecodeIndexPng(string path, int maxPixels = PixelLimit.Default) => DecodeIndexPng(ReadFile(path), path, maxPixels);

    /// <summary>Decodes index-mask PNG bytes; <paramref name="name"/> is used in error messages.</summary>
    public static LabelMap DecodeIndexPng(byte[] data, string name, int maxPixels = PixelLimit.Default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var png = PngIndexReader.Decode(data, name, maxPixels);
        return new LabelMap(png.Width, png.Height, png.Indices);
    }

    /// <summary>An index-mask PNG as stored: size, palette (if any) and indices.</summary>
    internal static PngIndexImage ReadIndexPng(string path, int maxPixels) => PngIndexReader.Decode(ReadFile(path), path, maxPixels);

    /// <summary>The PLTE entries of a palette PNG, or null for a grayscale PNG.</summary>
    public static IReadOnlyList<Rgb>? ReadPalette(string path, int maxPixels = PixelLimit.Default) => PngIndexReader.Decode(ReadFile(path), path, maxPixels).Palette;

    /// <summary>
    /// Writes <paramref name="labels"/> as an 8-bit palette PNG (what VOC's SegmentationClass holds).
    /// The palette is padded with black up to the largest label so every index is valid; pass
    /// <see cref="Palettes.Voc"/> (256 entries) for VOC-style files.
    /// </summary>
    public static void WriteIndexPng(string path, LabelMap labels, IReadOnlyList<Rgb> palette)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(palette);
        if (palette.Count > 256) throw new ArgumentException($"A PNG palette has at most 256 entries, got {palette.Count}.", nameof(palette));
        var max = 0;
        foreach (var v in labels.Labels) if (v > max) max = v;
        var entries = palette.ToList();
        while (entries.Count <= max) entries.Add(new Rgb(0, 0, 0));
        AtomicFile.WriteAllBytes(path, EncodeIndexPng(labels, entries, PngFilterChoice.Auto));
    }

    /// <summary>Writes <paramref name="labels"/> as an 8-bit grayscale PNG (what SBD's SegmentationClassAug holds).</summary>
    public static void WriteGrayscalePng(string path, LabelMap labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        AtomicFile.WriteAllBytes(path, EncodeIndexPng(labels, null, PngFilterChoice.Auto));
    }

    /// <summary>Writes an RGB image as a PNG.</summary>
    public static void WriteRgbPng(string path, RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        AtomicFile.WriteAllBytes(path, PngWriter.Encode(image.Width, image.Height, 2, image.Pixels, null));
    }

    /// <summary>Encodes labels as a palette PNG (or grayscale when <paramref name="palette"/> is null) with a chosen row filter.</summary>
    internal static byte[] EncodeIndexPng(LabelMap labels, IReadOnlyList<Rgb>? palette, PngFilterChoice filter) =>
        PngWriter.Encode(labels.Width, labels.Height, palette is null ? (byte)0 : (byte)3, labels.Labels, palette, filter);

    /// <summary>
    /// Paints each label with its palette colour; labels beyond the palette (e.g. 255 with a
    /// 21-entry VOC palette) get <paramref name="other"/> (black by default).
    /// </summary>
    public static RgbImage Colorize(LabelMap labels, IReadOnlyList<Rgb> palette, Rgb? other = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(palette);
        var fallback = other ?? new Rgb(0, 0, 0);
        var lut = new Rgb[256];
        for (var i = 0; i < 256; i++) lut[i] = i < palette.Count ? palette[i] : fallback;
        var px = new byte[labels.Labels.Length * 3];
        for (var i = 0; i < labels.Labels.Length; i++)
        {
            var c = lut[labels.Labels[i]];
            px[3 * i] = c.R;
            px[3 * i + 1] = c.G;
            px[3 * i + 2] = c.B;
        }
        return new RgbImage(labels.Width, labels.Height, px);
    }

    /// <summary>
    /// Blends label colours over the image: out = (1 - alpha) * image + alpha * colour, for pixels
    /// whose label has a palette entry; other pixels (e.g. 255 with a class-only palette) stay as in the image.
    /// </summary>
    public static RgbImage Overlay(RgbImage image, LabelMap labels, IReadOnlyList<Rgb> palette, float alpha)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(palette);
        if (image.Width != labels.Width || image.Height != labels.Height)
            throw new ArgumentException($"Image is {image.Width}x{image.Height} but labels are {labels.Width}x{labels.Height}.");
        if (!(alpha >= 0f && alpha <= 1f)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must be in [0, 1].");
        var px = (byte[])image.Pixels.Clone();
        for (var i = 0; i < labels.Labels.Length; i++)
        {
            var l = labels.Labels[i];
            if (l >= palette.Count) continue;
            var c = palette[l];
            px[3 * i] = Blend(px[3 * i], c.R, alpha);
            px[3 * i + 1] = Blend(px[3 * i + 1], c.G, alpha);
            px[3 * i + 2] = Blend(px[3 * i + 2], c.B, alpha);
        }
        return new RgbImage(image.Width, image.Height, px);
    }

    private static byte Blend(byte a, byte b, float alpha) => (byte)Math.Clamp(MathF.Round((1 - alpha) * a + alpha * b), 0, 255);

    /// <summary>Reads a whole file, turning IO failures into <see cref="DatasetException"/>s; a FIFO, device or socket is refused unopened.</summary>
    internal static byte[] ReadFile(string path)
    {
        if (NonRegularFiles.KindOf(path) is { } kind)
            throw Problems.Fail(DatasetProblem.CorruptFile, $"not a regular file: it is {kind}, and an image or mask must be a JPEG/PNG file", path);
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw Problems.Fail(DatasetProblem.MissingFile, "file not found", path, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Problems.Fail(DatasetProblem.CorruptFile, $"cannot read the file ({e.Message})", path, e);
        }
    }

    /// <summary>"JPEG" or "PNG" from the magic bytes; anything else is refused.</summary>
    private static string Sniff(ReadOnlySpan<byte> data, string name)
    {
        if (data.Length >= 8 && data[..8].SequenceEqual(PngIndexReader.Signature)) return "PNG";
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return "JPEG";
        throw Problems.Fail(DatasetProblem.CorruptFile, data.Length == 0 ? "empty file, not a JPEG/PNG" : $"not a JPEG/PNG ({DescribeStart(data)})", name);
    }

    /// <summary>The first bytes in hex and printable ASCII, for "not a PNG" messages.</summary>
    internal static string DescribeStart(ReadOnlySpan<byte> data)
    {
        var head = data[..Math.Min(8, data.Length)];
        var hex = string.Join(' ', head.ToArray().Select(b => b.ToString("X2")));
        var ascii = new string(head.ToArray().Select(b => b is >= 0x20 and < 0x7F ? (char)b : '.').ToArray());
        return $"starts with {hex} \"{ascii}\"";
    }
}
