using System.Buffers.Binary;
using System.IO.Compression;

namespace ContrastSeg.Data;

/// <summary>What an index PNG holds: its size, colour type, palette (if any) and raw indices.</summary>
internal sealed record PngIndexImage(int Width, int Height, byte ColourType, Rgb[]? Palette, byte[] Indices);

/// <summary>
/// Reads the stored sample values of 8-bit palette (colour type 3) and grayscale (colour type 0)
/// PNGs exactly, without any colour conversion: chunk parsing, zlib inflate of the concatenated
/// IDAT data, and the five scanline filters. SkiaSharp only returns colours, never palette indices.
/// </summary>
internal static class PngIndexReader
{
    internal static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Human name of a PNG colour type, as used in error messages.</summary>
    public static string ColourTypeName(int colourType) => colourType switch
    {
        0 => "grayscale",
        2 => "RGB",
        3 => "palette",
        4 => "grayscale+alpha",
        6 => "RGBA",
        _ => "unknown",
    };

    /// <summary>Decodes <paramref name="data"/> (the bytes of <paramref name="path"/>), refusing more than <paramref name="maxPixels"/> pixels before inflating.</summary>
    public static PngIndexImage Decode(ReadOnlySpan<byte> data, string path, int maxPixels = PixelLimit.Default)
    {
        if (data.Length == 0) throw Problems.Fail(DatasetProblem.CorruptFile, "empty file, expected an index PNG", path);
        if (data.Length < 8 || !data[..8].SequenceEqual(Signature))
            throw Problems.Fail(DatasetProblem.CorruptFile, $"not a PNG ({ImageCodec.DescribeStart(data)}); an index mask must be an 8-bit palette or grayscale PNG", path);

        int width = 0, height = 0;
        byte colourType = 0;
        Rgb[]? palette = null;
        var idat = new MemoryStream();
        var seenHeader = false;
        var pos = 8;
        while (true)
        {
            if (pos == data.Length) break; // no IEND: decode what is there, the inflate step tells if it is short
            if (pos + 8 > data.Length) throw Problems.Fail(DatasetProblem.CorruptFile, $"truncated PNG: file ends inside a chunk header at byte {pos}", path);
            var length = BinaryPrimitives.ReadUInt32BigEndian(data[pos..]);
            var type = data.Slice(pos + 4, 4);
            var typeName = ChunkName(type);
            if (length > int.MaxValue) throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: chunk '{typeName}' at byte {pos} claims {length} bytes", path);
            var start = pos + 8;
            var complete = (long)start + length + 4 <= data.Length;
            var body = data.Slice(start, (int)Math.Min(length, (long)data.Length - start));
            if (complete)
            {
                var stored = BinaryPrimitives.ReadUInt32BigEndian(data[(start + (int)length)..]);
                if (stored != Crc32.OfChunk(type, body))
                    throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: CRC mismatch in chunk '{typeName}' at byte {pos}", path);
            }
            else if (!type.SequenceEqual("IDAT"u8))
                throw Problems.Fail(DatasetProblem.CorruptFile, $"truncated PNG: chunk '{typeName}' at byte {pos} runs past the end of the file ({data.Length} bytes)", path);

            if (!seenHeader)
            {
                if (!type.SequenceEqual("IHDR"u8) || length != 13)
                    throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: the first chunk must be a 13-byte IHDR, got '{typeName}' ({length} bytes)", path);
                seenHeader = true;
                width = checked((int)BinaryPrimitives.ReadUInt32BigEndian(body));
                height = checked((int)BinaryPrimitives.ReadUInt32BigEndian(body[4..]));
                var bitDepth = body[8];
                colourType = body[9];
                var interlace = body[12];
                if (width < 1 || height < 1)
                    throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: unusable size {width}x{height}", path);
                PixelLimit.Check(width, height, maxPixels, "index PNG", path);
                if ((long)width * height > int.MaxValue - 1024)
                    throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: unusable size {width}x{height}", path);
                if (colourType is not (0 or 3))
                    throw Problems.Fail(DatasetProblem.NotIndexMask, $"expected an 8-bit palette or grayscale index PNG, got {ColourTypeName(colourType)} (colour type {colourType})", path);
                if (bitDepth != 8)
                    throw Problems.Fail(DatasetProblem.NotIndexMask, $"expected an 8-bit palette or grayscale index PNG, got {bitDepth}-bit {ColourTypeName(colourType)} (colour type {colourType})", path);
                if (interlace != 0)
                    throw Problems.Fail(DatasetProblem.NotIndexMask, "interlaced (Adam7) PNGs are not supported as index masks; re-save it without interlacing", path);
            }
            else if (type.SequenceEqual("PLTE"u8))
            {
                if (length % 3 != 0 || length == 0 || length > 768)
                    throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: PLTE chunk of {length} bytes", path);
                palette = new Rgb[length / 3];
                for (var i = 0; i < palette.Length; i++) palette[i] = new Rgb(body[3 * i], body[3 * i + 1], body[3 * i + 2]);
            }
            else if (type.SequenceEqual("IDAT"u8))
            {
                idat.Write(body);
            }
            else if (type.SequenceEqual("IEND"u8))
            {
                break;
            }
            if (!complete) break;
            pos = start + (int)length + 4;
        }
        if (!seenHeader) throw Problems.Fail(DatasetProblem.CorruptFile, "truncated PNG: no IHDR chunk", path);
        if (idat.Length == 0) throw Problems.Fail(DatasetProblem.CorruptFile, "truncated PNG: no IDAT data", path);
        if (colourType == 3 && palette is null) throw Problems.Fail(DatasetProblem.CorruptFile, "corrupt PNG: palette image without a PLTE chunk", path);

        var stride = width; // 8-bit, one sample per pixel
        var rawLength = checked((stride + 1) * height);
        var raw = new byte[rawLength];
        var got = 0;
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            while (got < rawLength)
            {
                var n = z.Read(raw, got, rawLength - got);
                if (n == 0) break;
                got += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: IDAT data is not a valid zlib stream ({e.Message})", path, e);
        }
        if (got < rawLength)
            throw Problems.Fail(DatasetProblem.CorruptFile, $"truncated PNG: IDAT stream ended early ({got} of {rawLength} bytes, {got / (stride + 1)} of {height} rows)", path);

        var indices = new byte[width * height];
        Unfilter(raw, indices, width, height, 1, path);
        return new PngIndexImage(width, height, colourType, palette, indices);
    }

    /// <summary>Undoes the per-row filters of non-interlaced image data (bpp = bytes per pixel).</summary>
    internal static void Unfilter(byte[] raw, byte[] output, int width, int height, int bpp, string path)
    {
        var stride = width * bpp;
        for (var y = 0; y < height; y++)
        {
            var filter = raw[y * (stride + 1)];
            var src = raw.AsSpan(y * (stride + 1) + 1, stride);
            var cur = output.AsSpan(y * stride, stride);
            var prev = y > 0 ? output.AsSpan((y - 1) * stride, stride) : Span<byte>.Empty;
            switch (filter)
            {
                case 0:
                    src.CopyTo(cur);
                    break;
                case 1: // Sub
                    for (var i = 0; i < stride; i++) cur[i] = (byte)(src[i] + (i >= bpp ? cur[i - bpp] : 0));
                    break;
                case 2: // Up
                    for (var i = 0; i < stride; i++) cur[i] = (byte)(src[i] + (y > 0 ? prev[i] : 0));
                    break;
                case 3: // Average
                    for (var i = 0; i < stride; i++)
                    {
                        int a = i >= bpp ? cur[i - bpp] : 0, b = y > 0 ? prev[i] : 0;
                        cur[i] = (byte)(src[i] + ((a + b) >> 1));
                    }
                    break;
                case 4: // Paeth
                    for (var i = 0; i < stride; i++)
                    {
                        int a = i >= bpp ? cur[i - bpp] : 0, b = y > 0 ? prev[i] : 0, c = i >= bpp && y > 0 ? prev[i - bpp] : 0;
                        cur[i] = (byte)(src[i] + Paeth(a, b, c));
                    }
                    break;
                default:
                    throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt PNG: unknown filter type {filter} on row {y}", path);
            }
        }
    }

    internal static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static string ChunkName(ReadOnlySpan<byte> type)
    {
        Span<char> chars = stackalloc char[4];
        for (var i = 0; i < 4; i++) chars[i] = type[i] is >= 0x20 and < 0x7F ? (char)type[i] : '?';
        return new string(chars);
    }
}
