using System.Text.Json;
using ContrastSeg.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>What a checkpoint records besides weights and optimiser state.</summary>
/// <param name="Step">Optimiser steps completed.</param>
/// <param name="BestMetric">Best validation mIoU so far (NaN if none).</param>
/// <param name="BestStep">Step of the best validation mIoU (-1 if none).</param>
/// <param name="Config">The run's config JSON.</param>
public sealed record CheckpointState(int Step, double BestMetric, int BestStep, string Config);

/// <summary>
/// Checkpoints of one run in <c>&lt;run&gt;/checkpoints/step-NNNNNNN/</c>: model weights, SGD state
/// (momentum buffers), libtorch's RNG state, the loss's generator state, the step and the config.
/// Each is written to a temporary folder and renamed into place, so a run killed mid-write leaves
/// the previous checkpoint intact. The last K and the best one are kept.
/// </summary>
public sealed class CheckpointStore
{
    private const string Prefix = "step-";

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
            .Where(x => x.ok && File.Exists(Path.Combine(x.path, "state.json")))
            .OrderBy(x => x.step).Select(x => (x.step, x.path)).ToList();
    }

    /// <summary>The newest complete checkpoint, or null.</summary>
    public string? Latest() => List() is { Count: > 0 } all ? all[^1].Path : null;

    /// <summary>Writes a checkpoint atomically and prunes old ones (keeping <paramref name="keepLast"/> and the best).</summary>
    public string Save(CheckpointState state, nn.Module model, SgdOptimizer optimizer, Generator? lossGenerator, int keepLast, bool isBest)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var final = Path.Combine(Directory, $"{Prefix}{state.Step:D7}");
        var temp = Path.Combine(Directory, $".tmp-{state.Step:D7}-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(temp);
        WriteContents(temp, state, model, optimizer, lossGenerator);
        if (System.IO.Directory.Exists(final)) System.IO.Directory.Delete(final, recursive: true);
        System.IO.Directory.Move(temp, final);
        if (isBest) CopyAtomically(final, BestDirectory);
        foreach (var (_, path) in List().SkipLast(keepLast)) System.IO.Directory.Delete(path, recursive: true);
        foreach (var stale in System.IO.Directory.EnumerateDirectories(Directory, ".tmp-*")) System.IO.Directory.Delete(stale, recursive: true);
        return final;
    }

    private void CopyAtomically(string source, string target)
    {
        var temp = Path.Combine(Directory, $".tmp-best-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(temp);
        foreach (var file in System.IO.Directory.EnumerateFiles(source)) File.Copy(file, Path.Combine(temp, Path.GetFileName(file)));
        var old = target + ".old";
        if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, true);
        if (System.IO.Directory.Exists(target)) System.IO.Directory.Move(target, old);
        System.IO.Directory.Move(temp, target);
        if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, true);
    }

    private static void WriteContents(string folder, CheckpointState state, nn.Module model, SgdOptimizer optimizer, Generator? lossGenerator)
    {
        model.save(Path.Combine(folder, "model.bin"));
        optimizer.Save(Path.Combine(folder, "optimizer.bin"));
        SaveBytes(Path.Combine(folder, "torch_rng.bin"), get_rng_state());
        if (lossGenerator is not null) SaveBytes(Path.Combine(folder, "loss_rng.bin"), lossGenerator.get_state());
        File.WriteAllText(Path.Combine(folder, "state.json"), JsonSerializer.Serialize(state, StateJson));
    }

    /// <summary>Reads a checkpoint's state record.</summary>
    public static CheckpointState ReadState(string checkpoint)
    {
        var file = Path.Combine(checkpoint, "state.json");
        if (!File.Exists(file)) throw new FileNotFoundException($"{checkpoint} is not a ContrastSeg checkpoint (no state.json).", file);
        return JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(file), StateJson)
               ?? throw new InvalidDataException($"{file} is empty.");
    }

    /// <summary>Restores weights, optimiser state and RNG states from <paramref name="checkpoint"/>.</summary>
    public static CheckpointState Restore(string checkpoint, nn.Module model, SgdOptimizer? optimizer, Generator? lossGenerator)
    {
        var state = ReadState(checkpoint);
        LoadWeights(checkpoint, model);
        if (optimizer is not null) optimizer.Load(Path.Combine(checkpoint, "optimizer.bin"));
        using (var rng = LoadBytes(Path.Combine(checkpoint, "torch_rng.bin"))) set_rng_state(rng);
        var lossRng = Path.Combine(checkpoint, "loss_rng.bin");
        if (lossGenerator is not null && File.Exists(lossRng))
            using (var g = LoadBytes(lossRng)) lossGenerator.set_state(g);
        return state;
    }

    /// <summary>Loads only the weights of a checkpoint folder (or a run folder: its best, else latest checkpoint).</summary>
    public static string LoadWeights(string checkpointOrRun, nn.Module model)
    {
        var checkpoint = Resolve(checkpointOrRun);
        var file = Path.Combine(checkpoint, "model.bin");
        try { model.load(file, strict: true); }
        catch (Exception e) when (e is not FileNotFoundException)
        {
            throw new InvalidDataException($"{file} does not fit this model ({e.Message}); was it written with other model settings?", e);
        }
        return checkpoint;
    }

    /// <summary>A checkpoint folder, or for a run folder its best checkpoint, else its latest one.</summary>
    public static string Resolve(string checkpointOrRun)
    {
        if (File.Exists(Path.Combine(checkpointOrRun, "model.bin"))) return checkpointOrRun;
        var store = new CheckpointStore(checkpointOrRun);
        if (File.Exists(Path.Combine(store.BestDirectory, "model.bin"))) return store.BestDirectory;
        return store.Latest() ?? throw new FileNotFoundException($"{checkpointOrRun} holds no checkpoint (expected model.bin, or a run folder with checkpoints/).");
    }

    private static void SaveBytes(string path, Tensor state)
    {
        using var s = state;
        File.WriteAllBytes(path, s.data<byte>().ToArray());
    }

    private static Tensor LoadBytes(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return tensor(bytes, ScalarType.Byte);
    }
}
