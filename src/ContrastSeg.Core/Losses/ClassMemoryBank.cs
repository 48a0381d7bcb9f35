using System.Runtime.InteropServices;
using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Losses;

/// <summary>
/// ContrastiveSeg's per-class memory (Wang et al. 2021, the pixel queue and segment queue of its trainer): for each class, a
/// ring of <see cref="PixelSize"/> pixel embeddings and one of <see cref="RegionSize"/> region embeddings (the mean of an
/// image's pixels of that class). Each forward of the loss reads the memory as extra keys first, then writes the batch:
/// per image and class present, <see cref="PixelsPerImage"/> pixels drawn at random and the region mean, unit-normalised and
/// detached, each ring overwriting its oldest entries (FIFO, wrapping around). The state (entries, write positions, fill
/// counts) is what checkpoints keep (<see cref="Save"/>, <see cref="Load"/>), so a resumed run reads the same keys.
/// </summary>
public sealed class ClassMemoryBank : IDisposable
{
    private const string Magic = "CSMEM1";
    private Tensor? _pixels;   // [C, PixelSize, D]
    private Tensor? _regions;  // [C, RegionSize, D]
    private readonly long[] _pixelNext, _pixelFill, _regionNext, _regionFill;

    /// <summary>An empty memory; the embedding size is taken from the first write (or a loaded state).</summary>
    public ClassMemoryBank(int classes, int pixelSize, int regionSize, int pixelsPerImage)
    {
        if (classes < 1) throw new ArgumentException($"classes must be >= 1, got {classes}.", nameof(classes));
        if (pixelSize < 0 || regionSize < 0 || pixelsPerImage < 0) throw new ArgumentException("memory sizes must be >= 0.");
        (Classes, PixelSize, RegionSize, PixelsPerImage) = (classes, pixelSize, regionSize, pixelsPerImage);
        _pixelNext = new long[classes];
        _pixelFill = new long[classes];
        _regionNext = new long[classes];
        _regionFill = new long[classes];
    }

    /// <summary>Number of classes (labels 0..Classes-1).</summary>
    public int Classes { get; }

    /// <summary>Pixel entries per class.</summary>
    public int PixelSize { get; }

    /// <summary>Region entries per class.</summary>
    public int RegionSize { get; }

    /// <summary>Pixels of each class of each image written per update.</summary>
    public int PixelsPerImage { get; }

    /// <summary>The pixel ring of <paramref name="label"/>: its filled entries in slot order (a copy on the CPU), and the slot the next write takes.</summary>
    public (Tensor Entries, long Next) PixelsOf(int label) => Of(_pixels, _pixelFill, _pixelNext, label);

    /// <summary>The region ring of <paramref name="label"/>: its filled entries in slot order (a copy on the CPU), and the slot the next write takes.</summary>
    public (Tensor Entries, long Next) RegionsOf(int label) => Of(_regions, _regionFill, _regionNext, label);

    private static (Tensor, long) Of(Tensor? ring, long[] fill, long[] next, int label)
    {
        if (ring is null || fill[label] == 0) return (empty(new long[] { 0, 0 }, device: CPU), next[label]); // CPU: a copy for the caller to read
        return (ring[label].narrow(0, 0, fill[label]).cpu().clone(), next[label]);
    }

    /// <summary>
    /// Every filled entry as keys: embeddings [M, D] and labels [M] on <paramref name="device"/>, pixels then regions,
    /// class by class; null when the memory is empty.
    /// </summary>
    public (Tensor Embeddings, Tensor Labels)? Keys(Device device)
    {
        var rows = new List<Tensor>();
        var labels = new List<long>();
        void Add(Tensor? ring, long[] fill)
        {
            if (ring is null) return;
            for (var c = 0; c < Classes; c++)
            {
                if (fill[c] == 0) continue;
                rows.Add(ring[c].narrow(0, 0, fill[c]));
                for (var k = 0; k < fill[c]; k++) labels.Add(c);
            }
        }
        Add(_pixels, _pixelFill);
        Add(_regions, _regionFill);
        if (rows.Count == 0) return null;
        return (cat(rows).to(device), tensor(labels.ToArray(), ScalarType.Int64, device: device));
    }

    /// <summary>
    /// Writes a batch (detached): per image and class present, <see cref="PixelsPerImage"/> of its pixels (all if fewer)
    /// drawn from <paramref name="generator"/>, and its mean, each unit-normalised.
    /// </summary>
    /// <param name="embeddings">[B, P, D] pixel embeddings.</param>
    /// <param name="labels">[B, P] labels.</param>
    /// <param name="valid">[B, P], false for ignored pixels (never written).</param>
    /// <param name="generator">The draws of the pixels written (the loss's CPU generator).</param>
    public void Write(Tensor embeddings, Tensor labels, Tensor valid, Generator generator)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        var x = embeddings.detach();
        Allocate(x.shape[2], x.device);
        var labelsCpu = labels.cpu();
        var validCpu = valid.cpu();
        for (long b = 0; b < x.shape[0]; b++)
        {
            var y = labelsCpu[b].data<long>().ToArray();
            var v = validCpu[b].data<bool>().ToArray();
            var byClass = new SortedDictionary<long, List<long>>();
            for (long p = 0; p < y.Length; p++)
            {
                if (!v[p]) continue;
                if (y[p] < 0 || y[p] >= Classes)
                    throw new ArgumentException($"label {y[p]} is outside the memory's classes 0..{Classes - 1} (set Classes, or list the label in IgnoreLabels).");
                if (!byClass.TryGetValue(y[p], out var list)) byClass[y[p]] = list = [];
                list.Add(p);
            }
            var image = x[b];
            foreach (var (label, pixels) in byClass)
            {
                var c = (int)label;
                var rows = Unit(image.index_select(0, tensor(pixels.ToArray(), ScalarType.Int64, device: x.device)), held);
                if (_regions is not null)
                    Push(_regions, _regionNext, _regionFill, c, Unit(rows.mean(new long[] { 0 }, keepdim: true), held), RegionSize);
                if (_pixels is not null)
                {
                    var take = Math.Min(PixelsPerImage, pixels.Count);
                    Tensor chosen = rows;
                    if (take < pixels.Count)
                    {
                        // A CPU generator: the same draws on every device.
                        var order = randperm(pixels.Count, generator: generator, device: CPU).narrow(0, 0, take).to(x.device);
                        chosen = rows.index_select(0, order);
                    }
                    Push(_pixels, _pixelNext, _pixelFill, c, chosen, PixelSize);
                }
            }
        }
    }

    private static Tensor Unit(Tensor rows, HeldScalars held) => rows.div(rows.norm(1, keepdim: true).clamp_min(held.Of(1e-12)));

    /// <summary>Writes <paramref name="rows"/> into the ring of class <paramref name="c"/> from its next slot on, wrapping around.</summary>
    private static void Push(Tensor ring, long[] next, long[] fill, int c, Tensor rows, int size)
    {
        // As if written one by one: only the last `size` rows survive, in the slots they would have reached.
        var n = rows.shape[0];
        var skip = Math.Max(0, n - size);
        if (skip > 0) rows = rows.narrow(0, skip, size);
        var slots = new long[rows.shape[0]];
        for (var k = 0; k < slots.Length; k++) slots[k] = (next[c] + skip + k) % size;
        ring[c].index_copy_(0, tensor(slots, ScalarType.Int64, device: ring.device), rows);
        next[c] = (next[c] + n) % size;
        fill[c] = Math.Min(size, fill[c] + n);
    }

    private void Allocate(long dim, Device device)
    {
        if (_pixels is not null || _regions is not null)
        {
            var d = (_pixels ?? _regions)!.shape[2];
            if (d != dim) throw new ArgumentException($"the memory holds {d}-d embeddings; got {dim}-d.");
            if ((_pixels ?? _regions)!.device != device)
            {
                _pixels = Move(_pixels, device);
                _regions = Move(_regions, device);
            }
            return;
        }
        if (PixelSize > 0) _pixels = zeros(new long[] { Classes, PixelSize, dim }, ScalarType.Float32, device: device).DetachFromDisposeScope();
        if (RegionSize > 0) _regions = zeros(new long[] { Classes, RegionSize, dim }, ScalarType.Float32, device: device).DetachFromDisposeScope();
    }

    private static Tensor? Move(Tensor? t, Device device)
    {
        if (t is null) return null;
        var moved = t.to(device).DetachFromDisposeScope();
        t.Dispose();
        return moved;
    }

    /// <summary>Writes the state (sizes, write positions, fill counts, entries as float32) to <paramref name="stream"/>: the same state gives the same bytes.</summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        w.Write(Magic);
        w.Write(Classes);
        w.Write(PixelSize);
        w.Write(RegionSize);
        var dim = (_pixels ?? _regions)?.shape[2] ?? 0;
        w.Write(dim);
        foreach (var a in new[] { _pixelNext, _pixelFill, _regionNext, _regionFill })
            foreach (var v in a) w.Write(v);
        if (dim == 0) return;
        foreach (var t in new[] { _pixels, _regions })
        {
            if (t is null) continue;
            using var cpu = t.cpu().contiguous();
            w.Write(MemoryMarshal.AsBytes(cpu.data<float>().ToArray().AsSpan()));
        }
    }

    /// <summary>Reads a state <see cref="Save"/> wrote; sizes other than this memory's are an error naming both.</summary>
    /// <exception cref="InvalidDataException">The stream holds no memory of these sizes, or ends early.</exception>
    public void Load(Stream stream)
    {
        using var r = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        try
        {
            if (r.ReadString() != Magic) throw new InvalidDataException("not a class memory state.");
            var (classes, pixels, regions) = (r.ReadInt32(), r.ReadInt32(), r.ReadInt32());
            if ((classes, pixels, regions) != (Classes, PixelSize, RegionSize))
                throw new InvalidDataException($"it holds a memory of {classes} classes x {pixels} pixels + {regions} regions; this run's is {Classes} x {PixelSize} + {RegionSize}.");
            var dim = r.ReadInt64();
            foreach (var a in new[] { _pixelNext, _pixelFill, _regionNext, _regionFill })
                for (var c = 0; c < a.Length; c++) a[c] = r.ReadInt64();
            _pixels?.Dispose();
            _regions?.Dispose();
            (_pixels, _regions) = (null, null);
            if (dim == 0) return;
            Tensor Read(int size)
            {
                var count = checked((int)(Classes * (long)size * dim));
                var bytes = r.ReadBytes(count * sizeof(float));
                if (bytes.Length != count * sizeof(float)) throw new EndOfStreamException();
                var values = MemoryMarshal.Cast<byte, float>(bytes).ToArray();
                return tensor(values, new long[] { Classes, size, dim }, ScalarType.Float32, device: CPU).DetachFromDisposeScope(); // moved to the features' device at the next write
            }
            if (PixelSize > 0) _pixels = Read(PixelSize);
            if (RegionSize > 0) _regions = Read(RegionSize);
            if (stream.CanSeek && stream.Position != stream.Length) throw new InvalidDataException("it has bytes after the memory.");
        }
        catch (EndOfStreamException) { throw new InvalidDataException("it ends before the memory does (truncated)."); }
    }

    /// <summary>Releases the entries.</summary>
    public void Dispose()
    {
        _pixels?.Dispose();
        _regions?.Dispose();
    }
}
