using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ContrastSeg.Data;

/// <summary>A MATLAB array read from a v5 MAT file.</summary>
/// <param name="Name">Variable name (empty inside structs and cells).</param>
/// <param name="Dims">Dimensions, MATLAB order (rows, columns, ...).</param>
internal abstract record MatValue(string Name, int[] Dims)
{
    /// <summary>Number of elements (product of the dimensions).</summary>
    public long Count => Dims.Aggregate(1L, (a, d) => a * d);
}

/// <summary>A numeric or logical array; values converted to double, column-major as stored.</summary>
internal sealed record MatNumeric(string Name, int[] Dims, int ClassId, double[] Real) : MatValue(Name, Dims);

/// <summary>A struct array; <see cref="Values"/>[element][field].</summary>
internal sealed record MatStruct(string Name, int[] Dims, string[] Fields, MatValue[][] Values) : MatValue(Name, Dims)
{
    /// <summary>Field <paramref name="field"/> of element <paramref name="element"/>, or null when there is no such field.</summary>
    public MatValue? Get(string field, int element = 0)
    {
        var f = Array.IndexOf(Fields, field);
        return f < 0 || element >= Values.Length ? null : Values[element][f];
    }
}

/// <summary>A cell array.</summary>
internal sealed record MatCell(string Name, int[] Dims, MatValue[] Items) : MatValue(Name, Dims);

/// <summary>A char array.</summary>
internal sealed record MatChar(string Name, int[] Dims, string Text) : MatValue(Name, Dims);

/// <summary>An array of a class this reader skips (sparse, object, function handle...).</summary>
internal sealed record MatSkipped(string Name, int[] Dims, int ClassId) : MatValue(Name, Dims);

/// <summary>
/// A reader for MATLAB level-5 MAT files (what SBD's <c>cls/*.mat</c> are): 128-byte header with
/// endian indicator, then data elements. Handles miMATRIX (numeric, logical, char, struct, cell;
/// sparse and objects skipped by size), miCOMPRESSED (zlib) elements, and the small-element format
/// (type and size in one 4-byte word, data in the next four). MATLAB arrays are column-major.
/// </summary>
internal sealed class MatFile
{
    private const int MiInt8 = 1, MiUInt8 = 2, MiInt16 = 3, MiUInt16 = 4, MiInt32 = 5, MiUInt32 = 6,
        MiSingle = 7, MiDouble = 9, MiInt64 = 12, MiUInt64 = 13, MiMatrix = 14, MiCompressed = 15,
        MiUtf8 = 16, MiUtf16 = 17, MiUtf32 = 18;

    private const int MxCell = 1, MxStruct = 2, MxChar = 4;

    private readonly bool _bigEndian;
    private readonly string _path;

    private MatFile(bool bigEndian, string path)
    {
        _bigEndian = bigEndian;
        _path = path;
    }

    /// <summary>Reads every top-level variable of a MAT file's bytes; <paramref name="path"/> names it in errors.</summary>
    public static IReadOnlyList<MatValue> Read(byte[] bytes, string path)
    {
        if (bytes.Length >= 10 && Encoding.ASCII.GetString(bytes, 0, 10) == "MATLAB 7.3")
            throw Problems.Fail(DatasetProblem.CorruptFile, "MATLAB 7.3 (HDF5) MAT files are not supported; SBD ships level-5 MAT files", path);
        if (bytes.Length < 128 || Encoding.ASCII.GetString(bytes, 0, 6) != "MATLAB")
            throw Problems.Fail(DatasetProblem.CorruptFile, "not a MATLAB level-5 MAT file (no 128-byte 'MATLAB' header)", path);
        bool bigEndian = (bytes[126], bytes[127]) switch
        {
            ((byte)'I', (byte)'M') => false,
            ((byte)'M', (byte)'I') => true,
            _ => throw Problems.Fail(DatasetProblem.CorruptFile, "corrupt MAT file: bad endian indicator in the header", path),
        };
        var reader = new MatFile(bigEndian, path);
        var values = new List<MatValue>();
        var data = new ReadOnlyMemory<byte>(bytes);
        var pos = 128;
        while (pos < bytes.Length)
        {
            if (bytes.Length - pos < 8)
            {
                if (bytes.AsSpan(pos).IndexOfAnyExcept((byte)0) < 0) break; // trailing padding
                throw reader.Truncated($"{bytes.Length - pos} stray bytes at the end");
            }
            var (type, body, next) = reader.ReadTag(data, pos);
            var value = reader.ReadTopLevel(type, body);
            if (value is not null) values.Add(value);
            pos = next;
        }
        return values;
    }

    private DatasetException Truncated(string detail) =>
        Problems.Fail(DatasetProblem.CorruptFile, $"truncated or corrupt MAT file: {detail}", _path);

    private uint U32(ReadOnlySpan<byte> s) => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);

    /// <summary>Reads the tag at <paramref name="pos"/>: type, data, and where the next element starts.</summary>
    private (int Type, ReadOnlyMemory<byte> Body, int Next) ReadTag(ReadOnlyMemory<byte> buf, int pos)
    {
        if (buf.Length - pos < 8) throw Truncated($"a data element tag at byte {pos} is cut off");
        var first = U32(buf.Span[pos..]);
        if ((first >> 16) != 0)
        {
            // Small data element: size in the upper 16 bits, type in the lower, data in the next 4 bytes.
            var smallSize = (int)(first >> 16);
            if (smallSize > 4) throw Truncated($"small data element at byte {pos} claims {smallSize} bytes");
            return ((int)(first & 0xFFFF), buf.Slice(pos + 4, smallSize), pos + 8);
        }
        var type = (int)first;
        var size = U32(buf.Span[(pos + 4)..]);
        if (size > (uint)(buf.Length - pos - 8)) throw Truncated($"element of type {type} at byte {pos} claims {size} bytes, {buf.Length - pos - 8} remain");
        var next = (long)pos + 8 + size;
        if (type != MiCompressed && size % 8 != 0) next += 8 - size % 8; // uncompressed elements are padded to 8 bytes
        return (type, buf.Slice(pos + 8, (int)size), (int)Math.Min(next, buf.Length));
    }

    private MatValue? ReadTopLevel(int type, ReadOnlyMemory<byte> body)
    {
        if (type == MiCompressed)
        {
            var inner = Inflate(body);
            var (innerType, innerBody, _) = ReadTag(inner, 0);
            return ReadTopLevel(innerType, innerBody);
        }
        return type == MiMatrix ? ReadMatrix(body) : null; // other top-level elements carry no variables
    }

    private ReadOnlyMemory<byte> Inflate(ReadOnlyMemory<byte> body)
    {
        try
        {
            using var input = new MemoryStream(body.ToArray(), writable: false);
            using var z = new ZLibStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            z.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw Problems.Fail(DatasetProblem.CorruptFile, $"corrupt MAT file: a compressed element is not a valid zlib stream ({e.Message})", _path, e);
        }
    }

    /// <summary>The sub-elements of a miMATRIX in order (each may be small-format).</summary>
    private sealed class Cursor(MatFile owner, ReadOnlyMemory<byte> body)
    {
        private int _pos;

        public bool AtEnd => _pos >= body.Length;

        public (int Type, ReadOnlyMemory<byte> Body) Next(string what)
        {
            if (AtEnd) throw owner.Truncated($"a matrix ends before its {what}");
            var (type, data, next) = owner.ReadTag(body, _pos);
            if (type == MiCompressed)
            {
                var inner = owner.Inflate(data);
                var (t, b, _) = owner.ReadTag(inner, 0);
                (type, data) = (t, b);
            }
            _pos = next;
            return (type, data);
        }
    }

    private MatValue ReadMatrix(ReadOnlyMemory<byte> body)
    {
        if (body.Length == 0) return new MatNumeric("", [0, 0], 6, []); // empty array written as a bare tag
        var c = new Cursor(this, body);
        var (flagsType, flags) = c.Next("array flags");
        if (flagsType != MiUInt32 || flags.Length < 8) throw Truncated($"array flags must be 8 bytes of miUINT32, got type {flagsType}, {flags.Length} bytes");
        var flagWord = U32(flags.Span);
        var classId = (int)(flagWord & 0xFF);
        var complex = (flagWord & 0x800) != 0;

        var (dimsType, dimsData) = c.Next("dimensions");
        if (dimsType != MiInt32 || dimsData.Length % 4 != 0 || dimsData.Length < 8) throw Truncated($"dimensions must be miINT32, got type {dimsType}");
        var dims = new int[dimsData.Length / 4];
        for (var i = 0; i < dims.Length; i++)
        {
            dims[i] = (int)U32(dimsData.Span[(4 * i)..]);
            if (dims[i] < 0) throw Truncated($"negative dimension {dims[i]}");
        }
        var count = dims.Aggregate(1L, (a, d) => a * d);

        var (nameType, nameData) = c.Next("name");
        if (nameType != MiInt8) throw Truncated($"array name must be miINT8, got type {nameType}");
        var name = Encoding.ASCII.GetString(nameData.Span);

        switch (classId)
        {
            case >= 6 and <= 15: // double, single, int8..uint64 (logical arrays are uint8 with a flag)
            {
                var (t, d) = c.Next("real part");
                var real = ToDoubles(t, d, count);
                if (complex && !c.AtEnd) c.Next("imaginary part");
                return new MatNumeric(name, dims, classId, real);
            }
            case MxStruct:
            {
                var (lenType, lenData) = c.Next("field name length");
                var lengths = ToDoubles(lenType, lenData, lenData.Length / ElementSize(lenType)); // miINT32 by the format; any integer accepted
                if (lengths.Length != 1 || lengths[0] is < 1 or > 4096) throw Truncated("malformed struct field name length");
                var nameLength = (int)lengths[0];
                var (fnType, fnData) = c.Next("field names");
                if (fnType != MiInt8 || nameLength <= 0 || fnData.Length % nameLength != 0) throw Truncated("malformed struct field names");
                var fields = new string[fnData.Length / nameLength];
                for (var f = 0; f < fields.Length; f++)
                {
                    var raw = fnData.Span.Slice(f * nameLength, nameLength);
                    var end = raw.IndexOf((byte)0);
                    fields[f] = Encoding.ASCII.GetString(end < 0 ? raw : raw[..end]);
                }
                var values = new MatValue[count][];
                for (var e = 0; e < count; e++)
                {
                    values[e] = new MatValue[fields.Length];
                    for (var f = 0; f < fields.Length; f++)
                    {
                        var (t, d) = c.Next($"field '{fields[f]}'");
                        if (t != MiMatrix) throw Truncated($"struct field '{fields[f]}' is element type {t}, expected miMATRIX");
                        values[e][f] = ReadMatrix(d);
                    }
                }
                return new MatStruct(name, dims, fields, values);
            }
            case MxCell:
            {
                var items = new MatValue[count];
                for (var i = 0; i < count; i++)
                {
                    var (t, d) = c.Next($"cell {i}");
                    if (t != MiMatrix) throw Truncated($"cell {i} is element type {t}, expected miMATRIX");
                    items[i] = ReadMatrix(d);
                }
                return new MatCell(name, dims, items);
            }
            case MxChar:
            {
                var (t, d) = c.Next("characters");
                var text = t switch
                {
                    MiUtf8 or MiUInt8 or MiInt8 => Encoding.UTF8.GetString(d.Span),
                    MiUtf16 or MiUInt16 => (_bigEndian ? Encoding.BigEndianUnicode : Encoding.Unicode).GetString(d.Span),
                    _ => string.Join("", ToDoubles(t, d, count).Select(v => (char)v)),
                };
                return new MatChar(name, dims, text);
            }
            default:
                return new MatSkipped(name, dims, classId); // sparse (e.g. SBD's Boundaries), objects: the caller skips by size
        }
    }

    private int ElementSize(int type) => type switch
    {
        MiInt8 or MiUInt8 => 1,
        MiInt16 or MiUInt16 => 2,
        MiInt32 or MiUInt32 or MiSingle => 4,
        MiDouble or MiInt64 or MiUInt64 => 8,
        _ => throw Truncated($"numeric data of element type {type} is not supported"),
    };

    private double[] ToDoubles(int type, ReadOnlyMemory<byte> data, long count)
    {
        var size = ElementSize(type);
        if (data.Length != count * size) throw Truncated($"numeric data holds {data.Length} bytes, expected {count} values of {size} bytes");
        var s = data.Span;
        var result = new double[count];
        for (var i = 0; i < result.Length; i++)
        {
            var v = s.Slice(i * size, size);
            result[i] = type switch
            {
                MiInt8 => (sbyte)v[0],
                MiUInt8 => v[0],
                MiInt16 => _bigEndian ? BinaryPrimitives.ReadInt16BigEndian(v) : BinaryPrimitives.ReadInt16LittleEndian(v),
                MiUInt16 => _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(v) : BinaryPrimitives.ReadUInt16LittleEndian(v),
                MiInt32 => _bigEndian ? BinaryPrimitives.ReadInt32BigEndian(v) : BinaryPrimitives.ReadInt32LittleEndian(v),
                MiUInt32 => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(v) : BinaryPrimitives.ReadUInt32LittleEndian(v),
                MiSingle => _bigEndian ? BinaryPrimitives.ReadSingleBigEndian(v) : BinaryPrimitives.ReadSingleLittleEndian(v),
                MiDouble => _bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(v) : BinaryPrimitives.ReadDoubleLittleEndian(v),
                MiInt64 => _bigEndian ? BinaryPrimitives.ReadInt64BigEndian(v) : BinaryPrimitives.ReadInt64LittleEndian(v),
                _ => _bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(v) : BinaryPrimitives.ReadUInt64LittleEndian(v),
            };
        }
        return result;
    }
}
