using System.Globalization;
using ContrastSeg.Models;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>One tensor of a TorchSharp state-dict file: name, element type, shape.</summary>
/// <param name="Name">The state-dict key.</param>
/// <param name="Type">Element type.</param>
/// <param name="Shape">Shape.</param>
public sealed record StateDictEntry(string Name, ScalarType Type, long[] Shape);

/// <summary>
/// Whether a weight file fits a model, decided before anything is copied, with errors that name the tensor, both
/// shapes and the setting that likely differs (TorchSharp's own load says only "Mismatched tensor shape").
/// </summary>
public static class WeightFit
{
    /// <summary>State-dict prefix of the classifier, the part a fine-tuning stage replaces.</summary>
    public const string ClassifierPrefix = "classifier.";

    /// <summary>
    /// The tensors of a file written by TorchSharp's <c>Module.save</c> (LEB128 count, then per tensor: name,
    /// LEB128 element type, rank and sizes, raw data), read without the data.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is truncated or not in that format; the message names the file.</exception>
    public static IReadOnlyList<StateDictEntry> ReadEntries(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        var entries = new List<StateDictEntry>();
        var at = "its header";
        try
        {
            var count = Decode(reader);
            if (count is < 0 or > 1_000_000) throw new FormatException($"it claims {count} tensors");
            for (var i = 0; i < count; i++)
            {
                var name = reader.ReadString();
                at = $"tensor '{name}'";
                var type = (ScalarType)Decode(reader);
                var rank = Decode(reader);
                if (rank is < 0 or > 16) throw new FormatException($"{at} claims rank {rank}");
                var shape = new long[rank];
                long elements = 1;
                for (var d = 0; d < rank; d++)
                {
                    shape[d] = Decode(reader);
                    if (shape[d] < 0) throw new FormatException($"{at} claims size {shape[d]}");
                    elements = checked(elements * shape[d]);
                }
                var bytes = checked(elements * ElementSize(type, at));
                if (bytes > stream.Length - stream.Position) throw new EndOfStreamException();
                stream.Seek(bytes, SeekOrigin.Current);
                entries.Add(new StateDictEntry(name, type, shape));
            }
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{path} ends inside {at} ({stream.Length} bytes): the file is truncated.", e);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new InvalidDataException($"{path} is not a TorchSharp state-dict file ({e.Message}, at {at}).", e);
        }
        return entries;
    }

    /// <summary>
    /// Checks that <paramref name="checkpoint"/>'s <c>model.bin</c> holds exactly the tensors of <paramref name="model"/>,
    /// of the same types and shapes. With <paramref name="exceptClassifier"/> the classifier may have another shape
    /// (another class count) and is not to be loaded. Returns the keys to skip when loading.
    /// </summary>
    /// <exception cref="InvalidDataException">The file does not fit: names the tensor, both shapes and the setting that likely differs.</exception>
    public static IReadOnlyList<string> CheckCheckpoint(string checkpoint, DeepLabV3Plus model, bool exceptClassifier)
    {
        var file = Path.Combine(checkpoint, "model.bin");
        var stored = new Dictionary<string, StateDictEntry>();
        foreach (var e in ReadEntries(file)) stored.TryAdd(e.Name, e);
        var own = model.state_dict().ToDictionary(kv => kv.Key, kv => (kv.Value.dtype, Shape: kv.Value.shape));
        var problems = new List<Problem>();
        var skip = new List<string>();
        foreach (var (key, (type, shape)) in own)
        {
            if (!stored.TryGetValue(key, out var entry)) problems.Add(new(key, $"this model has '{key}' {Text(shape)}, the checkpoint does not", null, shape));
            else if (entry.Type != type) problems.Add(new(key, $"'{key}' holds {entry.Type} in the checkpoint but {type} in this model", entry.Shape, shape));
            else if (exceptClassifier && key.StartsWith(ClassifierPrefix, StringComparison.Ordinal)) skip.Add(key);
            else if (!entry.Shape.SequenceEqual(shape))
                problems.Add(new(key, $"tensor '{key}' is {Text(entry.Shape)} in the checkpoint but {Text(shape)} in this model", entry.Shape, shape));
        }
        foreach (var entry in stored.Values.Where(e => !own.ContainsKey(e.Name)))
            problems.Add(new(entry.Name, $"the checkpoint has '{entry.Name}' {Text(entry.Shape)}, this model does not", entry.Shape, null));
        if (problems.Count == 0) return skip;

        var more = problems.Count == 1 ? "" :
            (problems.Count == 2 ? "; 1 more tensor differs (" : $"; {problems.Count - 1} more tensors differ (") +
            string.Join(", ", problems.Skip(1).Take(3).Select(p => p.Key)) + (problems.Count > 4 ? ", ...)" : ")");
        throw new InvalidDataException($"{file} does not fit this model: {problems[0].Text}{more}. {LikelyCause(checkpoint, model, problems)}.");
    }

    /// <summary>Classes of the classifier stored in <paramref name="checkpoint"/>'s <c>model.bin</c> (null when it has none).</summary>
    public static int? CheckpointClasses(string checkpoint) =>
        ReadEntries(Path.Combine(checkpoint, "model.bin")).FirstOrDefault(e => e.Name == ClassifierPrefix + "weight") is { Shape.Length: > 0 } w
            ? (int)w.Shape[0] : null;

    /// <summary>
    /// The rule for encoder weight files (torchvision ResNets, classification pretraining): every encoder tensor must
    /// load, unless <paramref name="allowPartial"/> (<see cref="TrainConfig.AllowPartialInit"/>); a file that fits
    /// nothing is always an error. The message counts the matches and names examples of what did not fit.
    /// </summary>
    /// <exception cref="ConfigException">Below a full match (field <c>InitFrom</c>).</exception>
    public static void RequireFullEncoderMatch(WeightLoadReport report, string path, EncoderOptions encoder, bool allowPartial)
    {
        var total = report.Loaded.Count + report.Missing.Count + report.ShapeMismatched.Count;
        if (report.Loaded.Count == total || (allowPartial && report.Loaded.Count > 0)) return;
        static string Examples(IReadOnlyList<string> keys, int n) => string.Join(", ", keys.Take(n)) + (keys.Count > n ? ", ..." : "");
        var missing = report.Missing.Count == 0 ? "" : $"; missing from the file ({report.Missing.Count}): {Examples(report.Missing, 4)}";
        var shapes = report.ShapeMismatched.Count == 0 ? "" : $"; of another shape ({report.ShapeMismatched.Count}): {Examples(report.ShapeMismatched, 2)}";
        var hints = EncoderHints(report, encoder).ToList();
        var hint = hints.Count == 0 ? "" : $". Likely cause: {string.Join("; ", hints)}";
        var remedy = report.Loaded.Count == 0
            ? "Nothing of it would be used"
            : "To train anyway with the tensors that did not load freshly initialised, pass --allow-partial (setting AllowPartialInit=true)";
        throw new ConfigException(
            $"{path} matches {report.Loaded.Count} of the {total} tensors of the {encoder.Depth} encoder (Model.WidthMultiplier = {Number(encoder.WidthMultiplier)}, " +
            $"Model.Stem = {encoder.Stem}){missing}{shapes}{hint}. {remedy}.", "InitFrom");
    }

    private static IEnumerable<string> EncoderHints(WeightLoadReport report, EncoderOptions encoder)
    {
        if (report.ShapeMismatched.Count > 0)
        {
            if (encoder.Stem == EncoderStem.Small && report.ShapeMismatched.Any(m => m.StartsWith("conv1.weight:", StringComparison.Ordinal)))
                yield return "Model.Stem = Small has a 3x3 conv1, torchvision's ResNets the 7x7 ImageNet stem";
            if (encoder.WidthMultiplier != 1.0)
                yield return $"Model.WidthMultiplier = {Number(encoder.WidthMultiplier)} narrows every layer; torchvision's ResNets are width 1";
        }
        // Blocks the model lacks, or some of the model's blocks but not all: a ResNet of another depth.
        static bool Block(string key) => key.StartsWith("layer", StringComparison.Ordinal);
        if (report.Unexpected.Any(Block) || (report.Missing.Any(Block) && report.Loaded.Any(Block)))
            yield return $"Model.Depth = {encoder.Depth}: the file's ResNet has other blocks";
    }

    private sealed record Problem(string Key, string Text, long[]? Stored, long[]? Own);

    /// <summary>The settings that differ according to the checkpoint's recorded config, else a guess from the first tensor.</summary>
    private static string LikelyCause(string checkpoint, DeepLabV3Plus model, List<Problem> problems)
    {
        var causes = new List<string>();
        if (RecordedModel(checkpoint) is { } recorded) causes.AddRange(Differences(recorded, model.Options));
        // The class count is the data's, not a model setting.
        if (problems.FirstOrDefault(p => p.Key == ClassifierPrefix + "weight") is { Stored: { } s, Own: { } o } && s[0] != o[0])
            causes.Add($"the checkpoint's classifier has {s[0]} classes and this model {o[0]}: the data's classes differ (Data.Dataset, or a folder's classes.txt); " +
                       "only a FineTune stage starts a fresh classifier");
        if (causes.Count == 0) causes.Add(Guess(problems[0]));
        return "Likely cause: " + string.Join("; ", causes);
    }

    private static string Guess(Problem p)
    {
        bool Under(string prefix) => p.Key.StartsWith(prefix, StringComparison.Ordinal);
        if (p.Key == "backbone.conv1.weight" && p.Stored is { Length: 4 } s && p.Own is { Length: 4 } o && s[2] != o[2])
            return $"Model.Stem (the checkpoint's conv1 is {s[2]}x{s[3]}: {(s[2] == 3 ? "the Small" : "the ImageNet")} stem)";
        if (Under("backbone.")) return p.Stored is null || p.Own is null ? "Model.Depth (the encoders have other blocks)" : "Model.WidthMultiplier (or Model.Depth)";
        if (Under("aspp.")) return "Model.AsppChannels (or Model.WidthMultiplier or Model.Depth, which set the ASPP's input)";
        if (Under("decoder.")) return "Model.LowLevelChannels or Model.DecoderChannels (or Model.AsppChannels, Model.WidthMultiplier, Model.Depth)";
        if (Under("projection.")) return "Model.ProjectionLayers, Model.ProjectionChannels or Model.ProjectionBatchNorm";
        if (Under(ClassifierPrefix)) return "Model.DecoderChannels";
        return "the model settings (Model.*) of the run that wrote the checkpoint";
    }

    private static ModelSettings? RecordedModel(string checkpoint)
    {
        // Only a hint: a checkpoint without a readable record still gets the guess from the tensor names.
        try { return TrainConfig.FromJson(CheckpointStore.ReadState(checkpoint).Config).Model; }
        catch (Exception) { return null; }
    }

    private static IEnumerable<string> Differences(ModelSettings recorded, SegmentationModelOptions m)
    {
        var p = m.ProjectionOrDefault;
        var pairs = new (string Setting, object Recorded, object Here)[]
        {
            ("Model.Depth", recorded.Depth, m.Encoder.Depth), ("Model.Stem", recorded.Stem, m.Encoder.Stem),
            ("Model.WidthMultiplier", recorded.WidthMultiplier, m.Encoder.WidthMultiplier), ("Model.AsppChannels", recorded.AsppChannels, m.AsppChannels),
            ("Model.LowLevelChannels", recorded.LowLevelChannels, m.LowLevelChannels), ("Model.DecoderChannels", recorded.DecoderChannels, m.DecoderChannels),
            ("Model.ProjectionLayers", recorded.ProjectionLayers, p.Layers), ("Model.ProjectionChannels", recorded.ProjectionChannels, p.Channels),
            ("Model.ProjectionBatchNorm", recorded.ProjectionBatchNorm, p.BatchNorm),
        };
        foreach (var (setting, a, b) in pairs)
            if (!Equals(a, b)) yield return $"{setting} is {Value(a)} in the checkpoint's run and {Value(b)} here";
    }

    private static string Value(object v) => v is double d ? Number(d) : v.ToString() ?? "";

    private static string Number(double v) => v.ToString("G", CultureInfo.InvariantCulture);

    private static string Text(long[] shape) => "[" + string.Join(", ", shape) + "]";

    private static long Decode(BinaryReader reader)
    {
        long value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = reader.ReadByte();
            value |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new FormatException("an over-long LEB128 number");
    }

    private static long ElementSize(ScalarType type, string at) => type switch
    {
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        _ => throw new FormatException($"{at} has the unknown element type {(int)type}"),
    };
}
