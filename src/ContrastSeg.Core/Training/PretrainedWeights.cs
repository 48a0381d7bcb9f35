using System.Collections;
using ContrastSeg.Models;
using TorchSharp.PyBridge;
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
/// </summary>
public static class PretrainedWeights
{
    /// <summary>Reads a state dict file into name -> tensor.</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weight file {path} does not exist.", path);
        try
        {
            if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return Safetensors.LoadStateDict(path);
            var table = PyTorchUnpickler.UnpickleStateDict(path);
            var dict = new Dictionary<string, Tensor>();
            foreach (DictionaryEntry e in table)
                if (e.Value is Tensor t) dict[(string)e.Key] = t;
            return dict;
        }
        catch (Exception e) when (e is not FileNotFoundException)
        {
            throw new InvalidDataException($"{path} is not a readable safetensors or PyTorch state-dict file: {e.Message}", e);
        }
    }

    /// <summary>
    /// Copies matching tensors from <paramref name="path"/> into <paramref name="encoder"/> and reports
    /// every key that did not load. With <paramref name="strict"/>, missing or mismatched keys throw
    /// (unexpected keys such as <c>fc.*</c> never do).
    /// </summary>
    public static WeightLoadReport LoadEncoder(ResNetEncoder encoder, string path, bool strict = false)
    {
        var file = Read(path);
        try
        {
            var report = Copy(encoder, Normalise(file));
            if (strict && (report.Missing.Count > 0 || report.ShapeMismatched.Count > 0))
                throw new InvalidDataException($"{path} does not fit the {encoder.Options.Depth} encoder: {report}");
            return report;
        }
        finally
        {
            foreach (var t in file.Values) t.Dispose();
        }
    }

    private static Dictionary<string, Tensor> Normalise(Dictionary<string, Tensor> file)
    {
        string[] prefixes = { "module.", "backbone.", "encoder." };
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, value) in file)
        {
            var k = key;
            foreach (var p in prefixes)
                if (k.StartsWith(p, StringComparison.Ordinal)) k = k[p.Length..];
            result[k] = value;
        }
        return result;
    }

    private static WeightLoadReport Copy(nn.Module module, Dictionary<string, Tensor> file)
    {
        var target = module.state_dict();
        var loaded = new List<string>();
        var mismatched = new List<string>();
        using (no_grad())
        {
            foreach (var (key, dest) in target)
            {
                if (!file.TryGetValue(key, out var src)) continue;
                if (!src.shape.SequenceEqual(dest.shape))
                {
                    mismatched.Add($"{key}: file [{string.Join(", ", src.shape)}] vs model [{string.Join(", ", dest.shape)}]");
                    continue;
                }
                dest.copy_(src.to_type(dest.dtype));
                loaded.Add(key);
            }
        }
        var missing = target.Keys.Where(k => !file.ContainsKey(k)).ToList();
        var unexpected = file.Keys.Where(k => !target.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        return new WeightLoadReport(loaded, missing, unexpected, mismatched);
    }
}
