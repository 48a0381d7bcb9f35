using System.Text.Json.Nodes;

namespace ContrastSeg.Training;

/// <summary>
/// The one place that knows how configs spelled settings before: config.json files of earlier runs, checkpoints and
/// <c>--set</c> keys of the former spelling are read as the settings are now. Run names hash the current spelling only
/// (since 2026-12-07; runs named before keep their folders, a grid trains them again under the new names).
/// </summary>
internal static class ConfigMigration
{
    /// <summary>The cross-entropy stage's name before it was called what it trains.</summary>
    public const string FormerCrossEntropyName = "Baseline";

    /// <summary>(former dotted path, current dotted path) of every setting that moved or was renamed, oldest first.</summary>
    private static readonly (string Former, string Current)[] Moves =
    [
        // The embedded scenes' settings got their own section.
        ("Data.SceneSize", "Data.Scenes.Size"), ("Data.TrainScenes", "Data.Scenes.Train"), ("Data.ValScenes", "Data.Scenes.Val"),
        // The model settings took the model options' names (SegmentationModelOptions, EncoderOptions).
        ("Model.Width", "Model.WidthMultiplier"), ("Model.Dropout", "Model.AsppDropout"),
    ];

    /// <summary>Former <c>--set</c> keys and the keys they mean now (compared ignoring case).</summary>
    public static readonly IReadOnlyDictionary<string, string> Keys = Moves.ToDictionary(m => m.Former, m => m.Current, StringComparer.OrdinalIgnoreCase);

    /// <summary>Rewrites settings spelled a former way to how they are spelled now (in place); whether there was one.</summary>
    /// <exception cref="ConfigException">The config sets a setting under both its former and its current name.</exception>
    public static bool Upgrade(JsonObject config)
    {
        var changed = false;
        var stage = config.Select(p => p.Key).FirstOrDefault(k => k.Equals(nameof(TrainConfig.Stage), StringComparison.OrdinalIgnoreCase));
        if (stage is not null && config[stage] is JsonValue v && v.TryGetValue<string>(out var name)
            && name.Equals(FormerCrossEntropyName, StringComparison.OrdinalIgnoreCase))
        {
            config[stage] = nameof(TrainingStage.CrossEntropy);
            changed = true;
        }
        foreach (var (former, current) in Moves)
        {
            var formerPath = former.Split('.');
            if (Find(config, formerPath[..^1]) is not { } parent) continue;
            var key = parent.Select(p => p.Key).FirstOrDefault(k => k.Equals(formerPath[^1], StringComparison.OrdinalIgnoreCase));
            if (key is null) continue;
            var value = parent[key];
            parent.Remove(key);
            var currentPath = current.Split('.');
            var target = config;
            foreach (var section in currentPath[..^1])
            {
                if (target[section] is not JsonObject next) target[section] = next = new JsonObject();
                target = next;
            }
            if (target.ContainsKey(currentPath[^1]))
                throw new ConfigException($"{former} is the former name of {current}: the config sets both", former);
            target[currentPath[^1]] = value?.DeepClone();
            changed = true;
        }
        return changed;
    }

    private static JsonObject? Find(JsonObject root, string[] sections)
    {
        var node = root;
        foreach (var section in sections)
        {
            var key = node.Select(p => p.Key).FirstOrDefault(k => k.Equals(section, StringComparison.OrdinalIgnoreCase));
            if (key is null || node[key] is not JsonObject next) return null;
            node = next;
        }
        return node;
    }
}
