using System.Text.Json.Nodes;

namespace ContrastSeg.Training;

/// <summary>Command-line overrides: <c>Section.Field=value</c>, case-insensitive field names.</summary>
public static class ConfigOverrides
{
    /// <summary>
    /// Applies <c>key=value</c> overrides in order. Unknown keys, derived ones (<see cref="TrainConfig.RunName"/>)
    /// and values of the wrong kind are errors that name the key and say what it takes. A stage shortened with
    /// <c>Optimizer.Steps</c> and no <c>Optimizer.WarmupSteps</c> gets the one warm-up rule again
    /// (<see cref="OptimizerSettings.WithSteps"/>: at most a quarter of its steps), as presets and studies apply it.
    /// </summary>
    public static TrainConfig Apply(TrainConfig config, IEnumerable<string> assignments)
    {
        var root = JsonNode.Parse(config.ToJson())!.AsObject();
        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var assignment in assignments)
        {
            var eq = assignment.IndexOf('=');
            if (eq <= 0) throw new ConfigException($"override '{assignment}' is not key=value", assignment);
            var key = assignment[..eq].Trim();
            if (ConfigMigration.Keys.TryGetValue(key, out var moved)) key = moved; // e.g. Model.Width, now Model.WidthMultiplier
            var (node, property) = ConfigSchema.Resolve(root, key);
            node[property.Name] = ConfigSchema.Parse(key, assignment[(eq + 1)..].Trim(), property);
            set.Add(key);
        }
        try
        {
            var result = TrainConfig.FromJson(root.ToJsonString());
            var steps = $"{nameof(TrainConfig.Optimizer)}.{nameof(OptimizerSettings.Steps)}";
            var warmup = $"{nameof(TrainConfig.Optimizer)}.{nameof(OptimizerSettings.WarmupSteps)}";
            return set.Contains(steps) && !set.Contains(warmup) ? result with { Optimizer = result.Optimizer.WithSteps(result.Optimizer.Steps) } : result;
        }
        catch (ConfigException e) { throw new ConfigException($"override produced an invalid config: {e.Message}", e.Field); }
    }
}
