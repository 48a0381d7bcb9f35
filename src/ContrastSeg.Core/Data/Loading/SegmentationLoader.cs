using System.Runtime.InteropServices;
using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Data;

/// <summary>How a <see cref="SegmentationLoader"/> batches, orders and prepares samples.</summary>
public sealed record LoaderOptions
{
    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Shuffle the sample order every epoch (from <see cref="Seed"/> and the epoch).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Seed of the order and of every sample's augmentation.</summary>
    public int Seed { get; init; }

    /// <summary>Threads that load and transform samples (at least 1). Results do not depend on it.</summary>
    public int Workers { get; init; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Batches prepared ahead of the one the consumer holds (at least 1); bounds memory.</summary>
    public int Prefetch { get; init; } = 2;

    /// <summary>Drop the last, smaller batch of each epoch.</summary>
    public bool DropLast { get; init; }

    /// <summary>
    /// Also deliver a second view of every sample (<see cref="Batch.Images2"/>, <see cref="Batch.Labels2"/>) for the
    /// cross-image contrastive loss: the same pipeline run again with an independent generator, so geometry
    /// (scale, crop, flip) and colour distortion are both independent, and the second label map is
    /// transformed with its own view. The label-based loss pairs pixels by class, not by position, so the
    /// views need no pixel correspondence, and independent geometry gives the loss more varied positives.
    /// </summary>
    public bool TwoViews { get; init; }
}

/// <summary>
/// Turns an <see cref="ISegmentationDataset"/> into mini-batches: float32 images [B, 3, H, W] and int64 labels
/// [B, H, W] (255 = ignore; unlabelled samples are all 255). Samples are loaded and transformed on worker
/// threads with a bounded prefetch window; batches arrive in order, and their tensors are created on the
/// consumer's thread (so dispose scopes and statistics there see them).
/// </summary>
/// <remarks>
/// Determinism: the sample order of an epoch depends only on (seed, epoch) and each sample's augmentation
/// only on (seed, epoch, dataset index, view) (<see cref="SampleRandom"/>), so the same seed gives the same
/// batches whatever the worker count, and the batch at step k is the same whether a run starts at 0 or
/// resumes at k. A failure in a worker stops all workers and is rethrown to the consumer as a
/// <see cref="DatasetException"/> naming the sample id (and the file, when the dataset named one).
/// </remarks>
public sealed class SegmentationLoader
{
    private readonly int[] _indices;

    /// <summary>Creates the loader over <paramref name="indices"/> (default: every sample of the dataset).</summary>
    public SegmentationLoader(ISegmentationDataset dataset, TransformPipeline transform, LoaderOptions? options = null, IReadOnlyList<int>? indices = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(transform);
        Dataset = dataset;
        Transform = transform;
        Options = options ?? new LoaderOptions();
        if (Options.BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1, got {Options.BatchSize}.");
        if (Options.Prefetch < 1) throw new ArgumentException($"Prefetch must be at least 1, got {Options.Prefetch}.");
        var count = dataset.Ids.Count;
        _indices = indices?.ToArray() ?? Enumerable.Range(0, count).ToArray();
        foreach (var i in _indices)
            if ((uint)i >= (uint)count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {i} is outside the dataset's {count} samples.");
        var n = _indices.Length;
        BatchesPerEpoch = Options.DropLast ? n / Options.BatchSize : (n + Options.BatchSize - 1) / Options.BatchSize;
    }

    /// <summary>The dataset.</summary>
    public ISegmentationDataset Dataset { get; }

    /// <summary>The per-sample transform.</summary>
    public TransformPipeline Transform { get; }

    /// <summary>The options in force.</summary>
    public LoaderOptions Options { get; }

    /// <summary>The dataset indices this loader draws from, in their given order.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <summary>Batches per epoch (after <see cref="LoaderOptions.DropLast"/>).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Worker threads actually used.</summary>
    public int Workers => Math.Max(1, Options.Workers);

    /// <summary>The generator of one sample's augmentation: a function of (seed, epoch, dataset index, view) only.</summary>
    public static Random SampleRandom(int seed, int epoch, int index, int view) => SeedHash.Random(seed, epoch, index, view, 0x5A3B1E);

    /// <summary>The dataset indices of <paramref name="epoch"/> in delivery order (a function of seed and epoch).</summary>
    public int[] Order(int epoch)
    {
        var order = _indices.ToArray();
        if (Options.Shuffle) SeedHash.Random(Options.Seed, epoch, 0x0D3E5).Shuffle(order);
        return order;
    }

    /// <summary>The batches of one epoch, in order.</summary>
    public IEnumerable<Batch> Epoch(int epoch = 0)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch));
        return Iterate((long)epoch * BatchesPerEpoch, (long)(epoch + 1) * BatchesPerEpoch);
    }

    /// <summary>
    /// Batches forever, from global step <paramref name="startStep"/>: step s is batch s mod
    /// <see cref="BatchesPerEpoch"/> of epoch s / <see cref="BatchesPerEpoch"/>, so resuming at step k gives
    /// exactly the batches a run from 0 would have seen from k on.
    /// </summary>
    public IEnumerable<Batch> Steps(long startStep = 0)
    {
        if (startStep < 0) throw new ArgumentOutOfRangeException(nameof(startStep));
        if (BatchesPerEpoch == 0)
            throw new InvalidOperationException($"No batches: {_indices.Length} samples, batch size {Options.BatchSize}, drop-last {Options.DropLast}.");
        return Iterate(startStep, long.MaxValue);
    }

    private IEnumerable<Batch> Iterate(long first, long end)
    {
        if (first >= end) yield break;
        TorchRuntime.EnsureInitialized();
        using var run = new Run(this, first, end);
        for (var b = first; b < end; b++)
        {
            var samples = run.Take(b);
            yield return Assemble(samples);
        }
    }

    private (int Epoch, int[] Indices) Job(long batch, ref (int Epoch, int[] Order) cache)
    {
        var epoch = checked((int)(batch / BatchesPerEpoch));
        var k = (int)(batch % BatchesPerEpoch);
        if (cache.Order is null || cache.Epoch != epoch) cache = (epoch, Order(epoch));
        var start = k * Options.BatchSize;
        var stop = Math.Min(start + Options.BatchSize, cache.Order.Length);
        return (epoch, cache.Order[start..stop]);
    }

    private (PreparedSample, PreparedSample?) Prepare(int epoch, int index)
    {
        var sample = Dataset.Load(index);
        var first = Transform.Prepare(sample, SampleRandom(Options.Seed, epoch, index, 0));
        var second = Options.TwoViews ? Transform.Prepare(sample, SampleRandom(Options.Seed, epoch, index, 1)) : null;
        return (first, second);
    }

    private DatasetException Wrap(Exception e, int index)
    {
        string id;
        try { id = Dataset.Ids[index]; }
        catch (Exception) { id = "?"; }
        var path = (e as DatasetException)?.Path;
        var message = e.Message;
        if (path is not null && message.StartsWith(path + ": ", StringComparison.Ordinal)) message = message[(path.Length + 2)..];
        return new DatasetException($"sample '{id}' (index {index}) failed in the loader: {message}", path, e);
    }

    private static Batch Assemble((PreparedSample, PreparedSample?)[] samples)
    {
        var first = samples.Select(s => s.Item1).ToArray();
        var (images, labels) = Stack(first);
        if (samples[0].Item2 is null) return new Batch(first.Select(s => s.Id).ToArray(), images, labels);
        try
        {
            var (images2, labels2) = Stack(samples.Select(s => s.Item2!).ToArray());
            return new Batch(first.Select(s => s.Id).ToArray(), images, labels, images2, labels2);
        }
        catch
        {
            images.Dispose();
            labels.Dispose();
            throw;
        }
    }

    private static (Tensor Images, Tensor Labels) Stack(PreparedSample[] samples)
    {
        int w = samples[0].Width, h = samples[0].Height;
        if (samples.Any(s => s.Width != w || s.Height != h))
            throw new DatasetException(
                "samples of one batch differ in size after the transforms (" +
                string.Join(", ", samples.Select(s => $"'{s.Id}' {s.Width}x{s.Height}")) +
                "); crop or pad them to one size (e.g. TransformPipeline.Eval(padWidth, padHeight)) or use batch size 1.");
        var b = samples.Length;
        var plane = w * h;
        // Batches are assembled in host memory (written through .bytes, which only CPU tensors have); the trainer and
        // the evaluation move each batch once to the model's device (Batch.To).
        var images = empty([b, 3, h, w], ScalarType.Float32, device: CPU);
        var labels = empty([b, h, w], ScalarType.Int64, device: CPU);
        var imageData = MemoryMarshal.Cast<byte, float>(images.bytes);
        var labelData = MemoryMarshal.Cast<byte, long>(labels.bytes);
        for (var i = 0; i < b; i++)
        {
            samples[i].Image.AsSpan().CopyTo(imageData.Slice(i * 3 * plane, 3 * plane));
            var src = samples[i].Labels;
            var dst = labelData.Slice(i * plane, plane);
            for (var p = 0; p < plane; p++) dst[p] = src[p];
        }
        return (images, labels);
    }

    /// <summary>One pass of worker threads over global batches [first, end).</summary>
    private sealed class Run : IDisposable
    {
        private sealed class Slot((int Epoch, int[] Indices) job)
        {
            public readonly int Epoch = job.Epoch;
            public readonly int[] Indices = job.Indices;
            public readonly (PreparedSample, PreparedSample?)[] Results = new (PreparedSample, PreparedSample?)[job.Indices.Length];
            public int Remaining = job.Indices.Length;
        }

        private readonly SegmentationLoader _loader;
        private readonly long _end;
        private readonly object _gate = new();
        private readonly Dictionary<long, Slot> _slots = [];
        private readonly Thread[] _threads;
        private (int Epoch, int[] Order) _orderCache = (-1, null!);
        private long _claimBatch;
        private int _claimPos;
        private long _consumer;
        private Exception? _failure;
        private bool _stopped;

        public Run(SegmentationLoader loader, long first, long end)
        {
            _loader = loader;
            _end = end;
            _claimBatch = first;
            _consumer = first;
            _threads = new Thread[loader.Workers];
            for (var t = 0; t < _threads.Length; t++)
            {
                _threads[t] = new Thread(Work) { IsBackground = true, Name = $"SegmentationLoader worker {t}" };
                _threads[t].Start();
            }
        }

        private Slot SlotOf(long batch)
        {
            if (!_slots.TryGetValue(batch, out var slot))
                _slots[batch] = slot = new Slot(_loader.Job(batch, ref _orderCache));
            return slot;
        }

        private void Work()
        {
            while (true)
            {
                Slot slot;
                int pos;
                lock (_gate)
                {
                    while (!_stopped && _failure is null && (_claimBatch >= _end || _claimBatch >= _consumer + _loader.Options.Prefetch))
                        Monitor.Wait(_gate);
                    if (_stopped || _failure is not null) return;
                    slot = SlotOf(_claimBatch);
                    pos = _claimPos++;
                    if (_claimPos == slot.Indices.Length)
                    {
                        _claimBatch++;
                        _claimPos = 0;
                    }
                }

                (PreparedSample, PreparedSample?) result;
                try
                {
                    result = _loader.Prepare(slot.Epoch, slot.Indices[pos]);
                }
                catch (Exception e)
                {
                    var wrapped = _loader.Wrap(e, slot.Indices[pos]);
                    lock (_gate)
                    {
                        _failure ??= wrapped;
                        Monitor.PulseAll(_gate);
                    }
                    return;
                }

                lock (_gate)
                {
                    slot.Results[pos] = result;
                    if (--slot.Remaining == 0) Monitor.PulseAll(_gate);
                }
            }
        }

        /// <summary>Waits for batch <paramref name="batch"/> (the next one in order) and takes its samples.</summary>
        public (PreparedSample, PreparedSample?)[] Take(long batch)
        {
            lock (_gate)
            {
                while (true)
                {
                    if (_slots.TryGetValue(batch, out var slot) && slot.Remaining == 0)
                    {
                        _slots.Remove(batch);
                        _consumer = batch + 1;
                        Monitor.PulseAll(_gate);
                        return slot.Results;
                    }
                    if (_failure is not null) throw _failure;
                    Monitor.Wait(_gate);
                }
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _stopped = true;
                Monitor.PulseAll(_gate);
            }
            foreach (var t in _threads) t.Join();
        }
    }
}
