using System.Buffers.Binary;
using System.IO.Compression;

namespace ContrastSeg.Data;

/// <summary>A stack of same-size 8-bit images read from an IDX file (row-major, one byte per pixel).</summary>
public sealed class IdxImages
{
    /// <summary>Wraps <paramref name="pixels"/>; throws when its length is not count x rows x cols.</summary>
    public IdxImages(int count, int rows, int cols, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (count < 0 || rows < 1 || cols < 1 || pixels.Length != (long)count * rows * cols)
            throw new ArgumentException($"{count} images of {rows}x{cols} need {(long)count * rows * cols} bytes, got {pixels.Length}.");
        Count = count;
        Rows = rows;
        Cols = cols;
        Pixels = pixels;
    }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Image height.</summary>
    public int Rows { get; }

    /// <summary>Image width.</summary>
    public int Cols { get; }

    /// <summary>All pixels, image after image.</summary>
    public byte[] Pixels { get; }

    /// <summary>The pixels of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> Image(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"image {index} of {Count}");
        return Pixels.AsSpan(index * Rows * Cols, Rows * Cols);
    }
}

/// <summary>
/// Reads and writes the IDX format of MNIST and Fashion-MNIST: a big-endian int32 magic
/// (2051 for unsigned-byte 3-d image stacks, 2049 for 1-d label vectors), big-endian int32
/// dimension sizes, then the bytes. Files may be gzip-compressed (detected from the content, not the name).
/// </summary>
public static class Idx
{
    /// <summary>Magic number of an unsigned-byte, three-dimensional IDX file (images).</summary>
    public const int ImagesMagic = 2051;

    /// <summary>Magic number of an unsigned-byte, one-dimensional IDX file (labels).</summary>
    public const int LabelsMagic = 2049;

    /// <summary>Reads an image file (magic 2051).</summary>
    /// <exception cref="DatasetException">Missing file, wrong magic, truncated data or broken gzip; the message names the file.</exception>
    public static IdxImages ReadImages(string path)
    {
        var (dims, data) = Read(path, ImagesMagic, 3);
        return new IdxImages(dims[0], dims[1], dims[2], data);
    }

    /// <summary>Reads a label file (magic 2049).</summary>
    /// <exception cref="DatasetException">Missing file, wrong magic, truncated data or broken gzip; the message names the file.</exception>
    public static byte[] ReadLabels(string path) => Read(path, LabelsMagic, 1).Data;

    /// <summary>Writes an image file (magic 2051), gzip-compressed when <paramref name="gzip"/> is set.</summary>
    public static void WriteImages(string path, IdxImages images, bool gzip = true)
    {
        ArgumentNullException.ThrowIfNull(images);
        Write(path, ImagesMagic, [images.Count, images.Rows, images.Cols], images.Pixels, gzip);
    }

    /// <summary>Writes a label file (magic 2049), gzip-compressed when <paramref name="gzip"/> is set.</summary>
    public static void WriteLabels(string path, byte[] labels, bool gzip = true)
    {
        ArgumentNullException.ThrowIfNull(labels);
        Write(path, LabelsMagic, [labels.Length], labels, gzip);
    }

    private static (int[] Dims, byte[] Data) Read(string path, int expectedMagic, int rank)
    {
        if (!File.Exists(path)) throw new DatasetException("IDX file not found.", path);
        var kind = expectedMagic == ImagesMagic ? "image" : "label";
        try
        {
            using var file = File.OpenRead(path);
            var gz = file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
            file.Position = 0;
            using Stream stream = gz ? new GZipStream(file, CompressionMode.Decompress) : file;

            Span<byte> header = stackalloc byte[4 + 4 * rank];
            var got = ReadFully(stream, header);
            if (got < 4) throw new DatasetException($"not an IDX file: only {got} byte(s), no magic number.", path);
            var magic = BinaryPrimitives.ReadInt32BigEndian(header);
            if (magic != expectedMagic)
            {
                var hint = magic switch
                {
                    ImagesMagic => " (an image file; a label file was expected)",
                    LabelsMagic => " (a label file; an image file was expected)",
                    _ => "",
                };
                throw new DatasetException(
                    $"bad IDX magic number {magic} (0x{magic:X8}){hint}; an IDX {kind} file starts with {expectedMagic} (0x{expectedMagic:X8}).", path);
            }
            if (got < header.Length)
                throw new DatasetException($"truncated IDX header: {got} of {header.Length} bytes.", path);

            var dims = new int[rank];
            long total = 1;
            for (var i = 0; i < rank; i++)
            {
                dims[i] = BinaryPrimitives.ReadInt32BigEndian(header[(4 + 4 * i)..]);
                if (dims[i] < 0 || (i > 0 && dims[i] == 0))
                    throw new DatasetException($"bad IDX dimension {i}: {dims[i]}.", path);
                total *= dims[i];
            }
            if (total > Array.MaxLength) throw new DatasetException($"IDX data too large: {total} bytes.", path);

            var data = new byte[total];
            var read = ReadFully(stream, data);
            if (read < total)
                throw new DatasetException(
                    $"truncated IDX {kind} file: dimensions [{string.Join(", ", dims)}] need {total} data bytes, found {read}.", path);
            return (dims, data);
        }
        catch (DatasetException) { throw; }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"cannot read IDX {kind} file (truncated or corrupt gzip?): {e.Message}", path, e);
        }
    }

    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = stream.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static void Write(string path, int magic, int[] dims, byte[] data, bool gzip)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var file = File.Create(path);
        using Stream stream = gzip ? new GZipStream(file, CompressionLevel.SmallestSize) : file;
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, magic);
        stream.Write(word);
        foreach (var d in dims)
        {
            BinaryPrimitives.WriteInt32BigEndian(word, d);
            stream.Write(word);
        }
        stream.Write(data);
    }
}
