using System.Text.Json;
using System.Text.Json.Nodes;

namespace ContrastSeg.Training;

/// <summary>
/// A run folder's config.json against the config being run, before a resume. The kit writes config.json; a run's settings
/// come from its command (a derived folder name is a hash of them), so a hand edit of the file cannot take effect on resume.
/// An edit of a setting that changes the weights is refused before any step, naming each field, and the file is left as it
/// is; other differences (device, loader workers, log cadence, OutputRoot written relative or absolute) are reported and the
/// file then records this command's values.
/// </summary>
internal static class RecordedConfig
{
    /// <summary>The file's name in a run folder.</summary>
    public const string FileName = "config.json";

    /// <summary>
    /// Compares <paramref name="run"/>'s folder's config.json (if any) with the run's config. Returns the differences that
    /// do not change the weights, as "field old -> new" (the file's value -> this command's), to be reported.
    /// </summary>
    /// <exception cref="ConfigException">config.json sets a weights-defining setting otherwise than the run (the message names
    /// the file, each field as "the run's value -> the file's", and how to train the edited settings), or cannot be read.</exception>
    public static IReadOnlyList<string> Check(TrainingRun run, CheckpointStore store)
    {
        var file = Path.Combine(run.Directory, FileName);
        if (!File.Exists(file)) return [];
        string recorded;
        try
        {
            recorded = run.Normalize(File.ReadAllText(file));
            _ = run.Identity(recorded);
        }
        catch (Exception e) when (e is ConfigException or JsonException)
        {
            throw new ConfigException($"{file} cannot be read as this run's config ({e.Message.TrimEnd('.')}): was it edited? A run's settings come from " +
                                      $"its command, not from this file. Put it back as it was or delete it (the kit writes it again), or delete {run.Directory} to start over.", FileName);
        }
        var differences = Differences(recorded, run.ConfigJson);
        if (differences.Count == 0) return [];
        if (run.Identity(recorded) == run.Identity(run.ConfigJson))
            return differences.Select(d => $"{d.Field} {d.Old} -> {d.New}").ToList();
        // A file that agrees with the run's checkpoints was written by the kit for other settings: the folder holds another
        // run, which the checkpoints' own check (Trainer) refuses, naming the settings.
        if (LatestConfig(store) is { } checkpointed && SameIdentity(run, checkpointed, recorded)) return [];
        var edited = differences.Where(d => ChangesWeights(run, d.Field, recorded)).ToList();
        var fields = string.Join(", ", edited.Select(d => $"{d.Field} {d.New} -> {d.Old}"));
        var sets = string.Join(" ", edited.Select(d => $"--set {d.Field}={d.Assignment}"));
        throw new ConfigException(
            $"{file} differs from the settings of the run it belongs to (edited by hand?): {fields} (the run's value -> the file's). A run's settings " +
            "come from its command, so an edited config.json is not read on resume (and the kit leaves it as it is). To train the edited settings, " +
            $"pass them as a new run: {sets} (or --config with a copy of the file); they get a run folder of their own (with an explicit Name, give " +
            $"another one). To continue this run, undo the edit (or delete config.json: the kit writes it again); to start it over, delete {run.Directory}.",
            edited.FirstOrDefault()?.Field ?? FileName);
    }

    /// <summary>The weights-defining settings in which <paramref name="stored"/> differs from the run, as "field stored -> run" (for messages).</summary>
    public static string WeightsDifferences(TrainingRun run, string stored)
    {
        try
        {
            var normal = run.Normalize(stored);
            var list = Differences(normal, run.ConfigJson).Where(d => ChangesWeights(run, d.Field, normal)).Select(d => $"{d.Field} {d.Old} -> {d.New}");
            return string.Join(", ", list);
        }
        catch (Exception e) when (e is ConfigException or JsonException) { return "(unreadable)"; }
    }

    private static string? LatestConfig(CheckpointStore store)
    {
        if (store.Latest() is not { } latest) return null;
        try { return CheckpointStore.ReadState(latest).Config; }
        catch (Exception e) when (e is InvalidDataException or IOException) { return null; } // a damaged record: the resume reports it
    }

    private static bool SameIdentity(TrainingRun run, string a, string b)
    {
        try { return run.Identity(a) == run.Identity(b); }
        catch (Exception e) when (e is ConfigException or JsonException) { return false; }
    }

    /// <summary>One setting that differs: its dotted path, the value in the first JSON and in the second, and the value as <c>--set</c> takes it.</summary>
    private sealed record Difference(string Field, string Old, string New, string Assignment);

    private static List<Difference> Differences(string oldJson, string newJson)
    {
        var old = Leaves(JsonNode.Parse(oldJson));
        var now = Leaves(JsonNode.Parse(newJson));
        return old.Keys.Union(now.Keys)
            .Select(k => (k, o: old.TryGetValue(k, out var a) ? a : Absent, n: now.TryGetValue(k, out var b) ? b : Absent))
            .Where(x => !JsonNode.DeepEquals(x.o, x.n) || (ReferenceEquals(x.o, Absent) != ReferenceEquals(x.n, Absent)))
            .Select(x => new Difference(x.k, Show(x.o), Show(x.n), ReferenceEquals(x.o, Absent) ? "null" : x.o is JsonValue v && v.TryGetValue<string>(out var s) ? s : x.o?.ToJsonString() ?? "null"))
            .ToList();
    }

    /// <summary>Marks a setting one JSON leaves out (e.g. AllowPartialInit, written only when on).</summary>
    private static readonly JsonNode Absent = JsonValue.Create("(not set)");

    private static string Show(JsonNode? v) =>
        ReferenceEquals(v, Absent) ? "(not set)" : v is JsonValue value && value.TryGetValue<string>(out var s) ? $"'{s}'" : v?.ToJsonString() ?? "null";

    private static Dictionary<string, JsonNode?> Leaves(JsonNode? root)
    {
        var leaves = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        void Walk(JsonNode? node, string path)
        {
            if (node is JsonObject o && o.Count > 0)
                foreach (var (key, value) in o) Walk(value, path.Length == 0 ? key : path + "." + key);
            else leaves[path] = node;
        }
        Walk(root, "");
        return leaves;
    }

    /// <summary>Whether setting only <paramref name="field"/> of the run's config as <paramref name="other"/> has it changes the run's identity.</summary>
    private static bool ChangesWeights(TrainingRun run, string field, string other)
    {
        var changed = JsonNode.Parse(run.ConfigJson)!.AsObject();
        var source = Leaves(JsonNode.Parse(other));
        var parts = field.Split('.');
        var node = changed;
        foreach (var part in parts[..^1])
        {
            if (node[part] is not JsonObject inner) node[part] = inner = new JsonObject();
            node = inner;
        }
        if (source.TryGetValue(field, out var value)) node[parts[^1]] = value?.DeepClone();
        else node.Remove(parts[^1]);
        try { return run.Identity(changed.ToJsonString()) != run.Identity(run.ConfigJson); }
        catch (Exception e) when (e is ConfigException or JsonException) { return true; } // a value the run cannot even read is no cosmetic difference
    }
}
