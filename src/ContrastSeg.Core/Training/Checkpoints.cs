using System.Security.Cryptography;
using System.Text.Json;
using ContrastSeg.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>Size and SHA-256 (lower-case hex) of one checkpoint file, as it was written.</summary>
public sealed record CheckpointFile(long Bytes, string Sha256);

/// <summary>What a checkpoint records besides weights and optimiser state.</summary>
/// <param name="Step">Optimiser steps completed.</param>
/// <param name="BestMetric">Best validation mIoU so far (NaN if none).</param>
/// <param name="BestStep">Step of the best validation mIoU (-1 if none).</param>
/// <param name="Config">The run's config JSON.</param>
/// <param name="Files">Every other file of the checkpoint with its size and checksum (null in checkpoints written before they were recorded).</param>
/// <param name="Device">The device the run computed on when it wrote the checkpoint (null in checkpoints written before it was recorded);
/// the files themselves are device-independent.</param>
public sealed record CheckpointState(int Step, double BestMetric, int BestStep, string Config, IReadOnlyDictionary<string, CheckpointFile>? Files = null,
    string? Device = null);

/// <summary>Writing a checkpoint failed (disk full, permissions); the message names the file and what it holds.</summary>
public sealed class CheckpointWriteException : IOException
{
    /// <summary>Creates the exception.</summary>
    public CheckpointWriteException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Checkpoints of one run in <c>&lt;run&gt;/checkpoints/step-NNNNNNN/</c>: model weights, SGD state
/// (momentum buffers), libtorch's RNG state, the loss's generator state, and <c>state.json</c> (step,
/// config, and the size and SHA-256 of every other file). Each is written to a temporary folder and
/// renamed into place, so a run killed mid-write leaves the previous checkpoint intact; a failed write
/// (disk full) removes its temporary folder. Before a checkpoint is loaded its files are checked against
/// state.json; a resume falls back to the newest checkpoint that passes. The last K and the best one are kept.
/// Every file is device-independent: tensors are written from CPU copies (TorchSharp's save moves them) and load
/// into a model and optimiser on any device; the RNG states are CPU generators'.
/// </summary>
public sealed class CheckpointStore
{
    private const string Prefix = "step-";
    private const string TempPrefix = ".tmp-";
    private const string StateFile = "state.json";
    private const string ModelFile = "model.bin";
    private const string OptimizerFile = "optimizer.bin";
    private const string TorchRngFile = "torch_rng.bin";
    private const string LossRngFile = "loss_rng.bin";
    private const string LossMemoryFile = "loss_memory.bin";

    /// <summary>What each file holds, for messages.</summary>
    private static readonly Dictionary<string, string> Contents = new()
    {
        [ModelFile] = "model weights", [OptimizerFile] = "optimiser state", [TorchRngFile] = "libtorch RNG state",
        [LossRngFile] = "loss RNG state", [LossMemoryFile] = "the loss's class memory", [StateFile] = "step, config and checksums",
    };

    // BestMetric is NaN until a validation has run.
    private static readonly JsonSerializerOptions StateJson = new()
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Checkpoints under <paramref name="runDirectory"/>/checkpoints.</summary>
    public CheckpointStore(string runDirectory) => Directory = Path.Combine(runDirectory, "checkpoints");

    /// <summary>The checkpoints folder.</summary>
    public string Directory { get; }

    /// <summary>Folder of the best checkpoint (a copy of one step's checkpoint).</summary>
    public string BestDirectory => Path.Combine(Directory, "best");

    /// <summary>Completed checkpoints, oldest first.</summary>
    public IReadOnlyList<(int Step, string Path)> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return Array.Empty<(int, string)>();
        return System.IO.Directory.EnumerateDirectories(Directory, Prefix + "*")
            .Select(p => (ok: int.TryParse(Path.GetFileName(p)[Prefix.Length..], out var s), step: s, path: p))
            .Where(x => x.ok && File.Exists(Path.Combine(x.path, StateFile)))
            .OrderBy(x => x.step).Select(x => (x.step, x.path)).ToList();
    }

    /// <summary>The newest complete checkpoint, or null.</summary>
    public string? Latest() => List() is { Count: > 0 } all ? all[^1].Path : null;

    /// <summary>
    /// Removes what an interrupted or failed write left: temporary folders (which on a full disk hold the
    /// space the next checkpoint needs) and, if a best copy was cut off between its two renames, puts the
    /// previous best back. Called when a run starts.
    /// </summary>
    public void RemoveIncomplete()
    {
        if (!System.IO.Directory.Exists(Directory)) return;
        foreach (var stale in System.IO.Directory.EnumerateDirectories(Directory, TempPrefix + "*")) System.IO.Directory.Delete(stale, recursive: true);
        var old = BestDirectory + ".old";
        if (!System.IO.Directory.Exists(old)) return;
        if (System.IO.Directory.Exists(BestDirectory)) System.IO.Directory.Delete(old, recursive: true);
        else System.IO.Directory.Move(old, BestDirectory);
    }

    /// <summary>
    /// Writes a checkpoint atomically and prunes old ones (keeping <paramref name="keepLast"/> and the best); a loss with a
    /// memory (<paramref name="lossMemory"/>) writes it too (runs without one write the files they always did).
    /// </summary>
    /// <exception cref="CheckpointWriteException">A file could not be written; the partial folder is removed.</exception>
    public string Save(CheckpointState state, nn.Module model, SgdOptimizer optimizer, Generator? lossGenerator, int keepLast, bool isBest,
        ContrastSeg.Losses.ClassMemoryBank? lossMemory = null)
    {
        var final = Path.Combine(Directory, $"{Prefix}{state.Step:D7}");
        var temp = Path.Combine(Directory, $"{TempPrefix}{state.Step:D7}-{Guid.NewGuid():N}");
        var writing = temp;
        try
        {
            System.IO.Directory.CreateDirectory(temp);
            var files = new Dictionary<string, CheckpointFile>();
            void Write(string name, Action<Stream> write)
            {
                writing = Path.Combine(temp, name);
                files[name] = WriteFile(writing, write);
            }
            Write(ModelFile, s => model.save(s));
            Write(OptimizerFile, s => SaveOptimizer(optimizer, s));
            Write(TorchRngFile, s => WriteState(s, get_rng_state()));
            if (lossGenerator is not null) Write(LossRngFile, s => WriteState(s, lossGenerator.get_state()));
            if (lossMemory is not null) Write(LossMemoryFile, lossMemory.Save);
            var record = state with { Files = files };
            writing = Path.Combine(temp, StateFile);
            WriteFile(writing, s => JsonSerializer.Serialize(s, record, StateJson)); // last: it vouches for the others
            writing = final;
            if (System.IO.Directory.Exists(final)) System.IO.Directory.Delete(final, recursive: true);
            System.IO.Directory.Move(temp, final);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DeleteQuietly(temp);
            throw WriteFailed($"the step-{state.Step} checkpoint", writing, e);
        }
        if (isBest) CopyAtomically(final, BestDirectory);
        foreach (var (_, path) in List().SkipLast(keepLast)) System.IO.Directory.Delete(path, recursive: true);
        foreach (var stale in System.IO.Directory.EnumerateDirectories(Directory, TempPrefix + "*")) System.IO.Directory.Delete(stale, recursive: true);
        return final;
    }

    private CheckpointWriteException WriteFailed(string what, string path, Exception e)
    {
        var holds = Contents.TryGetValue(Path.GetFileName(path), out var c) ? $" ({c})" : "";
        return new CheckpointWriteException(
            $"writing {what} failed at {path}{holds}: {e.Message.TrimEnd('.')}. The partial folder was removed; the last complete checkpoint is " +
            $"{Latest() ?? "(none)"}. Free space on that disk (or move the run folder and set OutputRoot), then run again to resume.", e);
    }

    private void CopyAtomically(string source, string target)
    {
        var temp = Path.Combine(Directory, $"{TempPrefix}best-{Guid.NewGuid():N}");
        var writing = temp;
        try
        {
            System.IO.Directory.CreateDirectory(temp);
            foreach (var file in System.IO.Directory.EnumerateFiles(source))
            {
                writing = Path.Combine(temp, Path.GetFileName(file));
                File.Copy(file, writing);
            }
            writing = target;
            var old = target + ".old";
            if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, true);
            if (System.IO.Directory.Exists(target)) System.IO.Directory.Move(target, old);
            System.IO.Directory.Move(temp, target);
            if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DeleteQuietly(temp);
            throw WriteFailed($"the copy of {source} as the best checkpoint", writing, e);
        }
    }

    private static void DeleteQuietly(string folder)
    {
        try { if (System.IO.Directory.Exists(folder)) System.IO.Directory.Delete(folder, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // RemoveIncomplete retries at the next start
    }

    // Optimiser state in and out: the only lines that know the optimiser's type.
    private static void SaveOptimizer(SgdOptimizer optimizer, Stream stream)
    {
        optimizer.Save(stream);
    }

    private static void LoadOptimizer(SgdOptimizer optimizer, string file)
    {
        optimizer.Load(file);
    }

    /// <summary>Where checkpoint files are opened for writing (a test seam: a stream that reports a full disk).</summary>
    private static readonly AsyncLocal<Func<string, Stream>?> OpenForWrite = new();

    /// <summary>Opens checkpoint files through <paramref name="open"/> in this flow of control until disposed (tests).</summary>
    internal static IDisposable RedirectWrites(Func<string, Stream> open)
    {
        var previous = OpenForWrite.Value;
        OpenForWrite.Value = open;
        return new Undo(() => OpenForWrite.Value = previous);
    }

    private sealed class Undo(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    /// <summary>Writes one file, hashing it on the way and flushing it to the disk.</summary>
    private static CheckpointFile WriteFile(string path, Action<Stream> write)
    {
        using var file = OpenForWrite.Value?.Invoke(path) ?? new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long bytes;
        using (var hashing = new HashingStream(file, hash))
        {
            write(hashing);
            hashing.Flush();
            bytes = hashing.Written;
        }
        if (file is FileStream fs) fs.Flush(flushToDisk: true);
        return new CheckpointFile(bytes, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    private static void WriteState(Stream stream, Tensor state)
    {
        using var s = state;
        stream.Write(s.data<byte>().ToArray());
    }

    /// <summary>Reads a checkpoint's state record.</summary>
    public static CheckpointState ReadState(string checkpoint)
    {
        var file = Path.Combine(checkpoint, StateFile);
        if (!File.Exists(file)) throw new FileNotFoundException($"{checkpoint} is not a ContrastSeg checkpoint (no {StateFile}).", file);
        CheckpointState? state;
        try { state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(file), StateJson); }
        catch (JsonException e) { throw new InvalidDataException($"{file} is not a valid checkpoint record (damaged?): {e.Message}", e); }
        if (state is null || string.IsNullOrEmpty(state.Config)) throw new InvalidDataException($"{file} is not a valid checkpoint record: it holds no config.");
        return state;
    }

    /// <summary>
    /// Reads state.json and checks the files a load needs (<paramref name="needed"/>; default all): each listed
    /// file's size and SHA-256 against state.json, and, for every checkpoint, that the RNG states have the size
    /// libtorch expects (libtorch aborts the process on others, which no catch can report). Checkpoints written
    /// before checksums were recorded pass with <c>Verified = false</c> if their files exist.
    /// </summary>
    /// <exception cref="InvalidDataException">A file is missing, has another size or checksum; the message names it.</exception>
    public static (CheckpointState State, bool Verified) Verify(string checkpoint, IReadOnlyCollection<string>? needed = null)
    {
        var state = ReadState(checkpoint);
        var name = Path.GetFileName(checkpoint);
        if (name.StartsWith(Prefix, StringComparison.Ordinal) && int.TryParse(name[Prefix.Length..], out var step) && step != state.Step)
            throw new InvalidDataException($"{Path.Combine(checkpoint, StateFile)} records step {state.Step}, but the folder is step {step}.");
        needed ??= state.Files?.Keys.ToList() ?? new List<string> { ModelFile, OptimizerFile, TorchRngFile };
        foreach (var file in needed)
        {
            var path = Path.Combine(checkpoint, file);
            if (!File.Exists(path)) throw new InvalidDataException($"{path} ({Contents.GetValueOrDefault(file, file)}) is missing.");
            var length = new FileInfo(path).Length;
            if (state.Files is not null)
            {
                if (!state.Files.TryGetValue(file, out var expected))
                    throw new InvalidDataException($"{path} is not listed in {StateFile}, so it cannot be verified.");
                if (length != expected.Bytes)
                    throw new InvalidDataException($"{path} ({Contents.GetValueOrDefault(file, file)}) is {length:N0} bytes; {StateFile} records {expected.Bytes:N0} (truncated or overwritten).");
                string actual;
                using (var s = File.OpenRead(path)) actual = Convert.ToHexStringLower(SHA256.HashData(s));
                if (actual != expected.Sha256)
                    throw new InvalidDataException($"{path} ({Contents.GetValueOrDefault(file, file)}) has SHA-256 {actual[..12]}..., not the {expected.Sha256[..12]}... {StateFile} records (damaged since it was written).");
            }
            if (file is TorchRngFile or LossRngFile && length != RngStateBytes)
                throw new InvalidDataException($"{path} ({Contents[file]}) is {length:N0} bytes; a CPU generator's state is {RngStateBytes:N0}.");
        }
        return (state, state.Files is not null);
    }

    /// <summary>Size of a CPU generator's state (libtorch's mt19937 state plus normal-distribution cache).</summary>
    private static long RngStateBytes => _rngStateBytes ??= Measure();

    private static long? _rngStateBytes;

    private static long Measure()
    {
        using var g = new Generator(0, device: CPU); // the generators checkpointed are CPU ones (libtorch's default, the losses')
        using var s = g.get_state();
        return s.NumberOfElements;
    }

    /// <summary>Restores weights, optimiser state, RNG states and the loss's memory from <paramref name="checkpoint"/>, after <see cref="Verify"/>.</summary>
    /// <exception cref="InvalidDataException">A file is damaged or does not fit; the message names it.</exception>
    public static CheckpointState Restore(string checkpoint, nn.Module model, SgdOptimizer? optimizer, Generator? lossGenerator,
        ContrastSeg.Losses.ClassMemoryBank? lossMemory = null)
    {
        var needed = new List<string> { ModelFile, TorchRngFile };
        if (optimizer is not null) needed.Add(OptimizerFile);
        var lossRng = Path.Combine(checkpoint, LossRngFile);
        // A loss generator's state is restored when the checkpoint has one (stages without a sampling loss write none).
        if (lossGenerator is not null && (ReadState(checkpoint).Files?.ContainsKey(LossRngFile) ?? File.Exists(lossRng))) needed.Add(LossRngFile);
        // A run with a memory always writes it (the config, which the resume matched, says there is one): without it no exact resume.
        if (lossMemory is not null) needed.Add(LossMemoryFile);
        var (state, verified) = Verify(checkpoint, needed);
        LoadModel(Path.Combine(checkpoint, ModelFile), model, verified);
        if (optimizer is not null) Load(Path.Combine(checkpoint, OptimizerFile), verified, "does not fit this run's optimiser", f => LoadOptimizer(optimizer, f));
        Load(Path.Combine(checkpoint, TorchRngFile), verified, "cannot be restored", f =>
        {
            using var rng = LoadBytes(f);
            set_rng_state(rng);
        });
        if (needed.Contains(LossRngFile))
            Load(lossRng, verified, "cannot be restored", f =>
            {
                using var g = LoadBytes(f);
                lossGenerator!.set_state(g);
            });
        if (lossMemory is not null)
            Load(Path.Combine(checkpoint, LossMemoryFile), verified, "does not fit this run's memory", f =>
            {
                using var stream = File.OpenRead(f);
                lossMemory.Load(stream);
            });
        return state;
    }

    /// <summary>A resumed checkpoint: its folder, its record, whether its files were verified against checksums.</summary>
    public sealed record Resumed(string Path, CheckpointState State, bool Verified);

    /// <summary>
    /// Restores the newest checkpoint that passes <see cref="Verify"/> and loads. Each one that does not is
    /// reported through <paramref name="report"/> (which file, why) and renamed to <c>step-N.damaged</c>, kept
    /// for inspection but no longer listed, so the run continues from the newest intact one (the steps in
    /// between are replayed exactly). <paramref name="sameRun"/> sees each record first and throws if the
    /// checkpoint belongs to another run's settings (not a damage: no fallback then).
    /// Returns null when there is no checkpoint.
    /// </summary>
    /// <exception cref="InvalidDataException">Checkpoints exist but none can be restored.</exception>
    public Resumed? RestoreNewestIntact(nn.Module model, SgdOptimizer optimizer, Generator? lossGenerator, Action<CheckpointState> sameRun, Action<string> report,
        ContrastSeg.Losses.ClassMemoryBank? lossMemory = null)
    {
        var skipped = new List<string>();
        foreach (var (_, path) in List().Reverse())
        {
            try
            {
                sameRun(ReadState(path));
                var state = Restore(path, model, optimizer, lossGenerator, lossMemory);
                var verified = state.Files is not null;
                if (!verified) report($"{path} was written without checksums (an older checkpoint): its files were not verified.");
                RestoreBestCopy(state);
                return new Resumed(path, state, verified);
            }
            catch (InvalidDataException e)
            {
                var aside = SetAside(path);
                report($"skipped checkpoint {Path.GetFileName(path)}: {e.Message} It was renamed to {Path.GetFileName(aside)}.");
                skipped.Add($"{Path.GetFileName(path)}: {e.Message}");
            }
        }
        if (skipped.Count == 0) return null;
        throw new InvalidDataException($"no checkpoint in {Directory} can be restored ({string.Join(" ", skipped)}). " +
                                       "They were renamed to *.damaged; run again to start this run from step 0.");
    }

    private static string SetAside(string checkpoint)
    {
        var aside = checkpoint + ".damaged";
        for (var i = 2; System.IO.Directory.Exists(aside); i++) aside = $"{checkpoint}.damaged{i}";
        System.IO.Directory.Move(checkpoint, aside);
        return aside;
    }

    /// <summary>
    /// If the run's best checkpoint is not the one the resumed record names (a write failed between saving a
    /// new best step and copying it), copies that step again, so that best/ never silently holds older weights.
    /// </summary>
    private void RestoreBestCopy(CheckpointState resumed)
    {
        if (resumed.BestStep < 0) return;
        var bestState = Path.Combine(BestDirectory, StateFile);
        if (File.Exists(bestState))
        {
            try { if (ReadState(BestDirectory).Step == resumed.BestStep) return; }
            catch (InvalidDataException) { } // a damaged best copy is replaced below
        }
        var source = Path.Combine(Directory, $"{Prefix}{resumed.BestStep:D7}");
        if (File.Exists(Path.Combine(source, StateFile))) CopyAtomically(source, BestDirectory);
    }

    /// <summary>
    /// Loads only the weights of a checkpoint folder (or a run folder: its best, else latest checkpoint), after
    /// verifying model.bin; with <paramref name="exceptClassifier"/> everything but the classifier, which may then
    /// have another class count.
    /// </summary>
    public static string LoadWeights(string checkpointOrRun, DeepLabV3Plus model, bool exceptClassifier = false)
    {
        var checkpoint = Resolve(checkpointOrRun);
        var (_, verified) = Verify(checkpoint, new[] { ModelFile });
        var skip = WeightFit.CheckCheckpoint(checkpoint, model, exceptClassifier); // names the tensor and setting that do not fit
        LoadModel(Path.Combine(checkpoint, ModelFile), model, verified, skip);
        return checkpoint;
    }

    private static void LoadModel(string file, nn.Module model, bool verified, IEnumerable<string>? skip = null)
    {
        try { model.load(file, strict: true, skip: skip?.ToList()); }
        catch (Exception e) when (e is not (FileNotFoundException or OutOfMemoryException))
        {
            throw new InvalidDataException(verified
                ? $"{file} does not fit this model ({e.Message}); was it written with other model settings?"
                : $"{file} cannot be loaded ({e.Message}); it has no checksum (an older checkpoint), so it may be damaged or written with other model settings.", e);
        }
    }

    private static void Load(string file, bool verified, string problem, Action<string> load)
    {
        try { load(file); }
        catch (Exception e) when (e is not (FileNotFoundException or OutOfMemoryException))
        {
            throw new InvalidDataException($"{file} ({Contents[Path.GetFileName(file)]}) {problem} ({e.Message})" +
                                           (verified ? "." : "; it has no checksum (an older checkpoint), so it may be damaged."), e);
        }
    }

    /// <summary>A checkpoint folder, or for a run folder its best checkpoint, else its latest one.</summary>
    public static string Resolve(string checkpointOrRun)
    {
        if (File.Exists(Path.Combine(checkpointOrRun, ModelFile))) return checkpointOrRun;
        var store = new CheckpointStore(checkpointOrRun);
        if (File.Exists(Path.Combine(store.BestDirectory, ModelFile))) return store.BestDirectory;
        return store.Latest() ?? throw new FileNotFoundException($"{checkpointOrRun} holds no checkpoint (expected model.bin, or a run folder with checkpoints/).");
    }

    private static Tensor LoadBytes(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return tensor(bytes, ScalarType.Byte, device: CPU); // a CPU generator's state
    }

    /// <summary>Passes writes through to a stream while hashing them and counting bytes.</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public long Written { get; private set; }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            hash.AppendData(buffer);
            Written += buffer.Length;
        }
        public override void WriteByte(byte value) => Write(new[] { value });
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
