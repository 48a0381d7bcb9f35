using ContrastSeg.Models;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>What loading a weight file did, key by key.</summary>
/// <param name="Loaded">Keys copied into the module.</param>
/// <param name="Missing">Module keys the file does not have (left as initialised).</param>
/// <param name="Unexpected">File keys the module does not have (e.g. torchvision's <c>fc.*</c>).</param>
/// <param name="ShapeMismatched">Keys present in both with different shapes, as "key: file [..] vs model [..]".</param>
public sealed record WeightLoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> ShapeMismatched)
{
    /// <summary>A readable summary naming every key that did not load.</summary>
    public override string ToString()
    {
        static string List(IReadOnlyList<string> keys) => keys.Count == 0 ? "none" : string.Join(", ", keys);
        return $"loaded {Loaded.Count} tensors; missing: {List(Missing)}; unexpected: {List(Unexpected)}; shape mismatches: {List(ShapeMismatched)}";
    }
}

/// <summary>
/// Initialises an encoder from torchvision ResNet ImageNet weights given as a file: safetensors
/// (preferred: no pickle) or a PyTorch <c>.pth</c>/<c>.pt</c> state dict. Keys map 1:1 because the
/// encoder uses torchvision's names; a <c>module.</c>, <c>backbone.</c> or <c>encoder.</c> prefix is stripped.
/// The file is read through <see cref="WeightFile"/>: names and shapes are compared first, and only the
/// tensors that fit the encoder are read, so a file costs at most the encoder's own size in memory.
/// </summary>
public static class PretrainedWeights
{
    /// <summary>
    /// Copies matching tensors from <paramref name="path"/> into <paramref name="encoder"/> and reports
    /// every key that did not load. With <paramref name="strict"/>, missing or mismatched keys throw before
    /// anything is copied (unexpected keys such as <c>fc.*</c> never do).
    /// </summary>
    public static WeightLoadReport LoadEncoder(ResNetEncoder encoder, string path, bool strict = false)
    {
        using var file = WeightFile.Open(path);
        var declared = Normalise(file.Tensors.Values);
        var target = encoder.state_dict();
        var fitting = new List<(string Key, DeclaredTensor Source, Tensor Dest)>();
        var mismatched = new List<string>();
        foreach (var (key, dest) in target)
        {
            if (!declared.TryGetValue(key, out var src)) continue;
            if (!src.Shape.SequenceEqual(dest.shape))
                mismatched.Add($"{key}: file {src.ShapeText} vs model [{string.Join(", ", dest.shape)}]");
            else fitting.Add((key, src, dest));
        }
        var missing = target.Keys.Where(k => !declared.ContainsKey(k)).ToList();
        var unexpected = declared.Keys.Where(k => !target.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var report = new WeightLoadReport(fitting.Select(f => f.Key).ToList(), missing, unexpected, mismatched);
        if (strict && (missing.Count > 0 || mismatched.Count > 0))
            throw new InvalidDataException($"{path} does not fit the {encoder.Options.Depth} encoder: {report}");
        using (no_grad())
            foreach (var (_, source, dest) in fitting)
            {
                // One tensor at a time: the file's bytes never sit in memory all at once.
                using var value = file.Read(source.Name);
                using var typed = value.to_type(dest.dtype);
                dest.copy_(typed);
            }
        return report;
    }

    /// <summary>File tensors by the encoder's names (training-wrapper prefixes stripped).</summary>
    private static Dictionary<string, DeclaredTensor> Normalise(IEnumerable<DeclaredTensor> file)
    {
        string[] prefixes = { "module.", "backbone.", "encoder." };
        var result = new Dictionary<string, DeclaredTensor>();
        foreach (var tensor in file)
        {
            var k = tensor.Name;
            foreach (var p in prefixes)
                if (k.StartsWith(p, StringComparison.Ordinal)) k = k[p.Length..];
            result[k] = tensor;
        }
        return result;
    }
}
