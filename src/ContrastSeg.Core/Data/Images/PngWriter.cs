using System.Buffers.Binary;
using System.IO.Compression;

namespace ContrastSeg.Data;

/// <summary>Scanline filter choice when writing a PNG.</summary>
internal enum PngFilterChoice
{
    /// <summary>None for palette images, per-row minimum-sum-of-absolute-differences otherwise (the PNG spec's advice).</summary>
    Auto = -1,
    None = 0,
    Sub = 1,
    Up = 2,
    Average = 3,
    Paeth = 4,
}

/// <summary>A small non-interlaced 8-bit PNG encoder (grayscale, RGB, palette).</summary>
internal static class PngWriter
{
    /// <summary>Encodes 8-bit samples; <paramref name="colourType"/> 0 (gray), 2 (RGB) or 3 (palette, needs <paramref name="palette"/>).</summary>
    public static byte[] Encode(int width, int height, byte colourType, ReadOnlySpan<byte> pixels, IReadOnlyList<Rgb>? palette, PngFilterChoice filter = PngFilterChoice.Auto)
    {
        var bpp = colourType switch
        {
            0 or 3 => 1,
            2 => 3,
            _ => throw new ArgumentException($"Colour type {colourType} is not written by this encoder."),
        };
        var stride = width * bpp;
        if (pixels.Length != stride * height) throw new ArgumentException($"Expected {stride * height} bytes for {width}x{height}, got {pixels.Length}.");
        if (colourType == 3 && (palette is null || palette.Count is < 1 or > 256)) throw new ArgumentException("A palette PNG needs 1..256 palette entries.");

        using var output = new MemoryStream();
        output.Write(PngIndexReader.Signature);

        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr[4..], (uint)height);
        ihdr[8] = 8;
        ihdr[9] = colourType;
        ihdr[10] = ihdr[11] = ihdr[12] = 0;
        WriteChunk(output, "IHDR"u8, ihdr);

        if (colourType == 3)
        {
            var plte = new byte[palette!.Count * 3];
            for (var i = 0; i < palette.Count; i++)
            {
                plte[3 * i] = palette[i].R;
                plte[3 * i + 1] = palette[i].G;
                plte[3 * i + 2] = palette[i].B;
            }
            WriteChunk(output, "PLTE"u8, plte);
        }

        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                var row = new byte[stride + 1];
                var best = new byte[stride + 1];
                for (var y = 0; y < height; y++)
                {
                    var cur = pixels.Slice(y * stride, stride);
                    var prev = y > 0 ? pixels.Slice((y - 1) * stride, stride) : ReadOnlySpan<byte>.Empty;
                    if (filter != PngFilterChoice.Auto || colourType == 3)
                    {
                        FilterRow(filter == PngFilterChoice.Auto ? 0 : (int)filter, cur, prev, bpp, row);
                        z.Write(row);
                        continue;
                    }
                    var bestScore = long.MaxValue;
                    for (var f = 0; f <= 4; f++)
                    {
                        FilterRow(f, cur, prev, bpp, row);
                        long score = 0;
                        for (var i = 1; i < row.Length; i++) score += Math.Abs((int)(sbyte)row[i]);
                        if (score < bestScore)
                        {
                            bestScore = score;
                            row.CopyTo(best, 0);
                        }
                    }
                    z.Write(best);
                }
            }
            WriteChunk(output, "IDAT"u8, compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        }
        WriteChunk(output, "IEND"u8, ReadOnlySpan<byte>.Empty);
        return output.ToArray();
    }

    private static void FilterRow(int filter, ReadOnlySpan<byte> cur, ReadOnlySpan<byte> prev, int bpp, byte[] row)
    {
        row[0] = (byte)filter;
        var hasPrev = !prev.IsEmpty;
        for (var i = 0; i < cur.Length; i++)
        {
            int a = i >= bpp ? cur[i - bpp] : 0, b = hasPrev ? prev[i] : 0, c = i >= bpp && hasPrev ? prev[i - bpp] : 0;
            row[i + 1] = filter switch
            {
                0 => cur[i],
                1 => (byte)(cur[i] - a),
                2 => (byte)(cur[i] - b),
                3 => (byte)(cur[i] - ((a + b) >> 1)),
                _ => (byte)(cur[i] - PngIndexReader.Paeth(a, b, c)),
            };
        }
    }

    private static void WriteChunk(Stream output, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, (uint)data.Length);
        output.Write(word);
        output.Write(type);
        output.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.OfChunk(type, data));
        output.Write(word);
    }
}
