using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>A tensor as a weight file declares it (name, element type, shape), known before any of its bytes are read.</summary>
public sealed record DeclaredTensor(string Name, ScalarType Type, long[] Shape)
{
    /// <summary>The shape as <c>[a, b, ...]</c>.</summary>
    public string ShapeText => $"[{string.Join(", ", Shape)}]";

    /// <summary>e.g. <c>conv1.weight Float32 [64, 3, 7, 7]</c>.</summary>
    public override string ToString() => $"{Name} {Type} {ShapeText}";
}

/// <summary>
/// A weight file opened for reading: safetensors or a PyTorch zip file (<c>torch.save</c>, TorchSharp.PyBridge's
/// <c>save_py</c>). Opening reads only the index (names, types, shapes) and checks every tensor's declared
/// size against the bytes the file holds for it; <see cref="Read"/> then allocates one tensor at its declared
/// size. So a file cannot make the reader allocate more than the tensors a caller takes from it (issue 12: a
/// 389 KB .pth declaring a compressed 400 MB storage raised memory by 400 MB before it was rejected), and a
/// pickle that refers to anything but tensors and dicts is refused unrun (<see cref="StateDictPickle"/>).
/// Every error is an <see cref="InvalidDataException"/> that names the file (and the tensor).
/// </summary>
public abstract class WeightFile : IDisposable
{
    /// <summary>Largest index (pickle or safetensors header) read: ResNet-101's is ~60 KB, as it holds only names and shapes.</summary>
    public const int MaxIndexBytes = 16 << 20;

    private protected WeightFile(string path) => Path = path;

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The tensors the file declares, by name.</summary>
    public abstract IReadOnlyDictionary<string, DeclaredTensor> Tensors { get; }

    /// <summary>Reads one tensor (contiguous, on the CPU, of its declared type and shape).</summary>
    public Tensor Read(string name)
    {
        if (!Tensors.TryGetValue(name, out var declared)) throw new KeyNotFoundException($"{Path} has no tensor {name}");
        try { return ReadTensor(declared); }
        catch (Exception e) when (e is IOException or InvalidDataException && !e.Message.StartsWith(Path, StringComparison.Ordinal))
        {
            throw Bad($"the bytes of tensor {name} cannot be read ({e.Message})", e);
        }
    }

    private protected abstract Tensor ReadTensor(DeclaredTensor tensor);

    /// <summary>Opens <paramref name="path"/>, telling the format from its first bytes.</summary>
    public static WeightFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weight file {path} does not exist.", path);
        var stream = File.OpenRead(path);
        try
        {
            Span<byte> head = stackalloc byte[9];
            var n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            stream.Position = 0;
            if (n >= 4 && head[..4].SequenceEqual("PK\x03\x04"u8)) return new TorchZipWeights(path, stream);
            if (n >= 9 && head[8] == (byte)'{') return new SafetensorsWeights(path, stream);
            if (n >= 2 && head[0] == 0x80 && head[1] == 0x02)
                throw new InvalidDataException($"{path} is a PyTorch file in the legacy (pre-1.6) format, which the kit does not read: " +
                                               "re-save it with a current PyTorch (torch.save) or as safetensors.");
            throw new InvalidDataException($"{path} is neither a PyTorch state-dict file (a zip archive, as torch.save writes) nor safetensors.");
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>An error naming the file.</summary>
    private protected InvalidDataException Bad(string what, Exception? inner = null) =>
        new($"{Path} is not a usable weight file: {what}.", inner);

    /// <summary>Elements of <paramref name="shape"/>, or an error when the shape is impossible.</summary>
    private protected long Elements(string name, long[] shape)
    {
        try
        {
            var n = 1L;
            foreach (var d in shape) n = d < 0 ? throw Bad($"tensor {name} has a negative size [{string.Join(", ", shape)}]") : checked(n * d);
            return n;
        }
        catch (OverflowException) { throw Bad($"tensor {name} declares an impossible size [{string.Join(", ", shape)}]"); }
    }

    /// <summary>A tensor filled from <paramref name="bytes"/> (which hold exactly its elements, little-endian).</summary>
    private protected static Tensor FromBytes(byte[] bytes, ScalarType type, long[] shape)
    {
        var t = empty(shape, type, device: CPU); // file contents in host memory; loading copies them to the parameters' device
        if (bytes.Length > 0) t.bytes = bytes;
        return t;
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="stream"/> or says how much was there.</summary>
    private protected static void ReadExactly(Stream stream, byte[] buffer, string what)
    {
        var got = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        if (got < buffer.Length) throw new EndOfStreamException($"{what} ends after {got:N0} of {buffer.Length:N0} bytes (truncated?)");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Closes the file.</summary>
    protected abstract void Dispose(bool disposing);
}

/// <summary>safetensors: an 8-byte header length, a JSON header (dtype, shape, data_offsets per tensor), the raw bytes.</summary>
internal sealed class SafetensorsWeights : WeightFile
{
    private readonly FileStream _stream;
    private readonly long _dataStart;
    private readonly Dictionary<string, DeclaredTensor> _tensors = new();
    private readonly Dictionary<string, (long Begin, long End)> _offsets = new();

    private static readonly Dictionary<string, (ScalarType Type, int Size)> Types = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };

    public SafetensorsWeights(string path, FileStream stream) : base(path)
    {
        _stream = stream;
        var length = stream.Length;
        var prefix = new byte[8];
        ReadExactly(stream, prefix, "the header length");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)MaxIndexBytes || headerLength > (ulong)(length - 8))
            throw Bad($"its header declares {headerLength:N0} bytes; the file has {length - 8:N0} after the length and an index may have {MaxIndexBytes:N0}");
        var header = new byte[headerLength];
        ReadExactly(stream, header, "the header");
        _dataStart = 8 + (long)headerLength;
        var dataLength = length - _dataStart;

        JsonDocument json;
        try { json = JsonDocument.Parse(header); }
        catch (JsonException e) { throw Bad($"its header is not valid JSON ({e.Message})"); }
        using (json)
        {
            if (json.RootElement.ValueKind != JsonValueKind.Object) throw Bad("its header is not a JSON object");
            foreach (var entry in json.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__") continue;
                var name = entry.Name;
                try
                {
                    var e = entry.Value;
                    var dtype = e.GetProperty("dtype").GetString() ?? "";
                    if (!Types.TryGetValue(dtype, out var type)) throw Bad($"tensor {name} has dtype '{dtype}', not one of {string.Join(", ", Types.Keys)}");
                    var shape = e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                    var offsets = e.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                    if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                        throw Bad($"tensor {name} has data_offsets [{string.Join(", ", offsets)}] outside the {dataLength:N0} data bytes the file holds");
                    var bytes = checked(Elements(name, shape) * type.Size);
                    if (bytes != offsets[1] - offsets[0])
                        throw Bad($"tensor {name} {dtype} [{string.Join(", ", shape)}] needs {bytes:N0} bytes but its data_offsets span {offsets[1] - offsets[0]:N0}");
                    _tensors[name] = new DeclaredTensor(name, type.Type, shape);
                    _offsets[name] = (offsets[0], offsets[1]);
                }
                catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
                {
                    throw Bad($"tensor {name}'s header entry is malformed ({ex.Message})");
                }
            }
        }
    }

    public override IReadOnlyDictionary<string, DeclaredTensor> Tensors => _tensors;

    private protected override Tensor ReadTensor(DeclaredTensor tensor)
    {
        var (begin, end) = _offsets[tensor.Name];
        var bytes = new byte[end - begin];
        _stream.Position = _dataStart + begin;
        ReadExactly(_stream, bytes, $"tensor {tensor.Name}");
        return FromBytes(bytes, tensor.Type, tensor.Shape);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _stream.Dispose();
    }
}

/// <summary>
/// A PyTorch zip file: <c>&lt;prefix&gt;/data.pkl</c> (the state dict, tensors as references to storages) and one
/// record <c>&lt;prefix&gt;/data/&lt;key&gt;</c> per storage. A record may be compressed, so its size on disk says
/// nothing about what it inflates to: only the bytes a requested tensor covers are ever inflated, in a buffer
/// of that tensor's size.
/// </summary>
internal sealed class TorchZipWeights : WeightFile
{
    private readonly ZipArchive _zip;
    private readonly string _prefix;
    private readonly Dictionary<string, DeclaredTensor> _tensors = new();
    private readonly Dictionary<string, StateDictPickle.PickledTensor> _views = new();

    public TorchZipWeights(string path, Stream stream) : base(path)
    {
        try { _zip = new ZipArchive(stream, ZipArchiveMode.Read); }
        catch (InvalidDataException e) { throw Bad($"it is not a readable zip archive ({e.Message})"); }
        var pickles = _zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
        if (pickles.Count != 1) throw Bad(pickles.Count == 0 ? "it has no <name>/data.pkl (not written by torch.save?)" : "it has more than one data.pkl");
        _prefix = pickles[0].FullName[..^"data.pkl".Length];
        if (_zip.GetEntry(_prefix + "byteorder") is { } order && ReadSmall(order, 16, "byteorder").Trim() is var o && o != "little")
            throw Bad($"its tensors are stored {o}-endian; the kit reads little-endian files");

        object? root;
        try { root = StateDictPickle.Load(ReadBounded(pickles[0], MaxIndexBytes, "data.pkl")); }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal)) { throw Bad($"data.pkl: {e.Message}"); }
        if (root is not Dictionary<object, object?> dict) throw Bad("data.pkl is not a state dict (name -> tensor)");
        foreach (var (key, value) in dict)
            if (key is string name && value is StateDictPickle.PickledTensor view) Add(name, view);
    }

    private void Add(string name, StateDictPickle.PickledTensor view)
    {
        var storage = view.Storage;
        var record = _prefix + "data/" + storage.Key;
        var entry = _zip.GetEntry(record) ?? throw Bad($"tensor {name}'s storage {record} is not in the archive");
        var storageBytes = checked(storage.Elements * storage.Type.ElementSize);
        if (entry.Length != storageBytes)
            throw Bad($"tensor {name}'s storage {record} declares {storage.Elements:N0} {storage.Type.Name} elements ({storageBytes:N0} bytes) but the record holds {entry.Length:N0}");
        var elements = Elements(name, view.Shape);
        if (view.Offset < 0 || view.Stride.Any(s => s < 0)) throw Bad($"tensor {name} has a negative offset or stride");
        long extent;
        try { extent = elements == 0 ? 0 : checked(view.Offset + view.Shape.Zip(view.Stride, (d, s) => (d - 1) * s).Sum() + 1); }
        catch (OverflowException) { throw Bad($"tensor {name} declares an impossible layout"); }
        if (extent > storage.Elements)
            throw Bad($"tensor {name} [{string.Join(", ", view.Shape)}] reaches element {extent:N0} of a storage of {storage.Elements:N0}");
        _tensors[name] = new DeclaredTensor(name, storage.Type.ScalarType, view.Shape);
        _views[name] = view;
    }

    public override IReadOnlyDictionary<string, DeclaredTensor> Tensors => _tensors;

    private protected override Tensor ReadTensor(DeclaredTensor tensor)
    {
        var view = _views[tensor.Name];
        var size = view.Storage.Type.ElementSize;
        var elements = view.Shape.Aggregate(1L, (a, b) => a * b);
        if (elements == 0) return empty(view.Shape, tensor.Type, device: CPU);
        var contiguous = IsContiguous(view.Shape, view.Stride);
        // Only the elements the view covers are inflated: from its offset to its last element.
        var span = contiguous ? elements : view.Shape.Zip(view.Stride, (d, s) => (d - 1) * s).Sum() + 1;
        var bytes = new byte[checked(span * size)];
        using (var stream = _zip.GetEntry(_prefix + "data/" + view.Storage.Key)!.Open())
        {
            Skip(stream, view.Offset * size, tensor.Name);
            ReadExactly(stream, bytes, $"tensor {tensor.Name}'s storage");
        }
        if (contiguous) return FromBytes(bytes, tensor.Type, view.Shape);
        using var flat = FromBytes(bytes, tensor.Type, new[] { span });
        return flat.as_strided(view.Shape, view.Stride).contiguous();
    }

    private static bool IsContiguous(long[] shape, long[] stride)
    {
        var expected = 1L;
        for (var i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] != 1 && stride[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    private static void Skip(Stream stream, long bytes, string name)
    {
        var scratch = new byte[Math.Min(bytes, 1 << 16)];
        while (bytes > 0)
        {
            var n = stream.Read(scratch, 0, (int)Math.Min(bytes, scratch.Length));
            if (n == 0) throw new EndOfStreamException($"tensor {name}'s storage ends before its offset (truncated?)");
            bytes -= n;
        }
    }

    private byte[] ReadBounded(ZipArchiveEntry entry, int limit, string what)
    {
        // The entry's declared length is not trusted: at most limit + 1 bytes are inflated.
        using var stream = entry.Open();
        using var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + n > limit) throw Bad($"{what} is larger than {limit:N0} bytes, more than a state dict's index needs");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private string ReadSmall(ZipArchiveEntry entry, int limit, string what) => System.Text.Encoding.ASCII.GetString(ReadBounded(entry, limit, what));

    protected override void Dispose(bool disposing)
    {
        if (disposing) _zip.Dispose();
    }
}
