using System.IO.Compression;
using System.Text;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// Writes crafted PyTorch weight files the way <c>torch.save(state_dict)</c> does (protocol-2 pickle in
/// <c>archive/data.pkl</c>, one record per storage in <c>archive/data/&lt;key&gt;</c>), so tests need no Python.
/// The pickle has torch.save's structure and opcodes (checked against a Python mimic of torch/serialization.py),
/// including the state dict's <c>_metadata</c> attribute, without its memo entries.
/// </summary>
internal static class TorchSaveFile
{
    /// <summary>One state-dict entry: a view (offset, shape, stride) of storage <paramref name="Key"/>.</summary>
    public sealed record Entry(string Name, string StorageType, string Key, long StorageElements, long Offset, long[] Shape, long[] Stride);

    /// <summary>A contiguous float tensor that is its own storage.</summary>
    public static Entry Floats(string name, string key, params long[] shape)
    {
        var stride = new long[shape.Length];
        var n = 1L;
        for (var i = shape.Length - 1; i >= 0; i--) { stride[i] = n; n *= shape[i]; }
        return new Entry(name, "FloatStorage", key, n, 0, shape, stride);
    }

    /// <summary>The state-dict pickle of <paramref name="entries"/>.</summary>
    public static byte[] Pickle(IEnumerable<Entry> entries)
    {
        var p = new MemoryStream();
        void Op(char c) => p.WriteByte((byte)c);
        void Raw(string s) => p.Write(Encoding.ASCII.GetBytes(s));
        void Text(string s) { Op('X'); var b = Encoding.UTF8.GetBytes(s); p.Write(BitConverter.GetBytes(b.Length)); p.Write(b); }
        void Global(string module, string name) { Op('c'); Raw(module + "\n" + name + "\n"); }
        void Int(long v)
        {
            if (v is >= 0 and < 256) { Op('K'); p.WriteByte((byte)v); }
            else if (v is >= 0 and < 65536) { Op('M'); p.Write(BitConverter.GetBytes((ushort)v)); }
            else if (v is >= int.MinValue and <= int.MaxValue) { Op('J'); p.Write(BitConverter.GetBytes((int)v)); }
            else { p.WriteByte(0x8a); p.WriteByte(8); p.Write(BitConverter.GetBytes(v)); }
        }
        void Tuple(long[] items) { Op('('); foreach (var v in items) Int(v); Op('t'); }
        void EmptyOrderedDict() { Global("collections", "OrderedDict"); Op(')'); Op('R'); }

        p.WriteByte(0x80); p.WriteByte(2);
        EmptyOrderedDict();
        Op('(');
        foreach (var e in entries)
        {
            Text(e.Name);
            Global("torch._utils", "_rebuild_tensor_v2");
            Op('(');
            Op('('); Text("storage"); Global("torch", e.StorageType); Text(e.Key); Text("cpu"); Int(e.StorageElements); Op('t');
            Op('Q');
            Int(e.Offset);
            Tuple(e.Shape);
            Tuple(e.Stride);
            p.WriteByte(0x89); // NEWFALSE: requires_grad
            EmptyOrderedDict(); // backward hooks
            Op('t');
            Op('R');
        }
        Op('u');
        // state_dict()._metadata, which torch.save pickles as the OrderedDict's attributes (BUILD).
        Op('}'); Text("_metadata"); EmptyOrderedDict(); Op('s'); Op('b');
        Op('.');
        return p.ToArray();
    }

    /// <summary>A zip file as torch.save writes it, with <paramref name="pickle"/> and the given storage records.</summary>
    public static void Write(string path, byte[] pickle, IReadOnlyDictionary<string, byte[]> storages, CompressionLevel level = CompressionLevel.NoCompression)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string name, byte[] bytes)
        {
            using var s = zip.CreateEntry("archive/" + name, level).Open();
            s.Write(bytes);
        }
        Add("data.pkl", pickle);
        Add("byteorder", "little"u8.ToArray());
        foreach (var (key, bytes) in storages) Add("data/" + key, bytes);
        Add("version", "3\n"u8.ToArray());
    }

    /// <summary>Floats 0, 1, 2, ... as little-endian bytes.</summary>
    public static byte[] Counting(long n) => Enumerable.Range(0, (int)n).SelectMany(i => BitConverter.GetBytes((float)i)).ToArray();
}
