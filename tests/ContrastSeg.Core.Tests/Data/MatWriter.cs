using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// Writes MATLAB level-5 MAT files byte by byte from the format description, independently of the
/// reader under test: 128-byte header, data elements with 8-byte tags padded to 8 bytes, the
/// small-element format for data of at most 4 bytes, and optional miCOMPRESSED (zlib) wrapping.
/// </summary>
public sealed class MatWriter(bool bigEndian = false)
{
    public const int MiInt8 = 1, MiUInt8 = 2, MiInt32 = 5, MiUInt32 = 6, MiDouble = 9, MiMatrix = 14, MiCompressed = 15;
    public const int MxCell = 1, MxStruct = 2, MxSparse = 5, MxDouble = 6, MxUInt8 = 9;

    private byte[] U32(uint v)
    {
        var b = new byte[4];
        if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, v); else BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }

    private byte[] F64(double v)
    {
        var b = new byte[8];
        if (bigEndian) BinaryPrimitives.WriteDoubleBigEndian(b, v); else BinaryPrimitives.WriteDoubleLittleEndian(b, v);
        return b;
    }

    public byte[] Header()
    {
        var h = new byte[128];
        var text = Encoding.ASCII.GetBytes("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2026".PadRight(116));
        text.CopyTo(h, 0);
        for (var i = 116; i < 124; i++) h[i] = 0x20; // subsystem data offset: unused
        // Version 0x0100 and the endian indicator 'MI' written as a 16-bit value in the file's byte order.
        if (bigEndian) { h[124] = 0x01; h[125] = 0x00; h[126] = (byte)'M'; h[127] = (byte)'I'; }
        else { h[124] = 0x00; h[125] = 0x01; h[126] = (byte)'I'; h[127] = (byte)'M'; }
        return h;
    }

    /// <summary>A data element: small format when allowed and the data fits in 4 bytes, else tag + data + padding.</summary>
    public byte[] Element(int type, byte[] data, bool small = true)
    {
        if (small && data.Length is > 0 and <= 4)
            return [.. U32(((uint)data.Length << 16) | (uint)type), .. data, .. new byte[4 - data.Length]];
        var pad = (8 - data.Length % 8) % 8;
        return [.. U32((uint)type), .. U32((uint)data.Length), .. data, .. new byte[pad]];
    }

    public byte[] Compressed(byte[] element)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(element);
        var zipped = ms.ToArray();
        return [.. U32(MiCompressed), .. U32((uint)zipped.Length), .. zipped]; // no padding after compressed elements
    }

    public byte[] Matrix(int classId, int[] dims, string name, params byte[][] content)
    {
        byte[] flags = [.. U32((uint)classId), .. U32(0)];
        var dimBytes = dims.SelectMany(d => U32((uint)d)).ToArray();
        byte[] body = [.. Element(MiUInt32, flags), .. Element(MiInt32, dimBytes), .. Element(MiInt8, Encoding.ASCII.GetBytes(name)), .. content.SelectMany(c => c)];
        return Element(MiMatrix, body, small: false);
    }

    /// <summary>A numeric matrix given row-major values; stored column-major as MATLAB does.</summary>
    public byte[] Numeric(int classId, int storageType, int rows, int cols, double[] rowMajor, string name = "")
    {
        var colMajor = new double[rows * cols];
        for (var r = 0; r < rows; r++)
        for (var c = 0; c < cols; c++) colMajor[r + c * rows] = rowMajor[r * cols + c];
        var data = storageType switch
        {
            MiUInt8 => colMajor.Select(v => (byte)v).ToArray(),
            MiDouble => colMajor.SelectMany(F64).ToArray(),
            _ => throw new ArgumentException("storage type"),
        };
        return Matrix(classId, [rows, cols], name, Element(storageType, data));
    }

    /// <summary>A sparse matrix with no non-zeros (like SBD's empty boundary maps).</summary>
    public byte[] EmptySparse(int rows, int cols) =>
        Matrix(MxSparse, [rows, cols], "", Element(MiInt32, [], small: false), Element(MiInt32, Enumerable.Range(0, cols + 1).SelectMany(_ => U32(0)).ToArray()), Element(MiDouble, [], small: false));

    public byte[] Struct(string name, string[] fields, params byte[][] fieldValues)
    {
        const int len = 32;
        var names = fields.SelectMany(f => Encoding.ASCII.GetBytes(f).Concat(new byte[len - f.Length])).ToArray();
        return Matrix(MxStruct, [1, 1], name, [Element(MiInt32, U32(len)), Element(MiInt8, names), .. fieldValues]);
    }

    public byte[] Cell(int rows, int cols, params byte[][] items) => Matrix(MxCell, [rows, cols], "", items);

    /// <summary>An SBD-like cls file: GTcls with Boundaries (cell of sparse), Segmentation and CategoriesPresent.</summary>
    public byte[] SbdFile(int rows, int cols, double[] rowMajor, bool compressed, int classId, int storageType)
    {
        var seg = Numeric(classId, storageType, rows, cols, rowMajor);
        var categories = Numeric(MxUInt8, MiUInt8, 1, 2, [1, 15]); // 2 bytes: small element format
        var boundaries = Cell(2, 1, EmptySparse(rows, cols), EmptySparse(rows, cols));
        var gt = Struct("GTcls", ["Boundaries", "Segmentation", "CategoriesPresent"], boundaries, seg, categories);
        var other = Numeric(MxDouble, MiDouble, 1, 1, [42], name: "version");
        return [.. Header(), .. compressed ? Compressed(other) : other, .. compressed ? Compressed(gt) : gt];
    }
}
