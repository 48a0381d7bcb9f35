using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace ContrastSeg.Training;

/// <summary>
/// The settings of <see cref="TrainConfig"/> as its JSON serialiser sees them (dotted paths, types), so overrides
/// and config files are read by the same rules and their errors say what a setting takes.
/// </summary>
internal static class ConfigSchema
{
    private static JsonTypeInfo Info(Type type) => TrainConfig.Json.GetTypeInfo(type);

    private static bool IsSection(Type type) => Info(type).Kind == JsonTypeInfoKind.Object;

    /// <summary>The JSON object holding <paramref name="key"/> and the key's property; unknown and derived keys throw naming the key.</summary>
    public static (JsonObject Node, JsonPropertyInfo Property) Resolve(JsonObject root, string key)
    {
        var parts = key.Split('.');
        var node = root;
        var type = Info(typeof(TrainConfig));
        for (var i = 0; ; i++)
        {
            var here = string.Join('.', parts[..(i + 1)]);
            var property = type.Properties.FirstOrDefault(p => p.Name.Equals(parts[i], StringComparison.OrdinalIgnoreCase))
                ?? throw new ConfigException(Unknown(key, parts[..i], type), key);
            if (property.Set is null) throw new ConfigException(Derived(here, property.Name), key);
            if (i == parts.Length - 1) return (node, property);
            if (!IsSection(property.PropertyType)) throw new ConfigException($"'{here}' is a setting, not a section: use {here}=<value>", key);
            node = node[property.Name] as JsonObject ?? throw new ConfigException($"section '{here}' is null", key);
            type = Info(property.PropertyType);
        }
    }

    /// <summary>The value of <paramref name="text"/> for <paramref name="property"/>, parsed as the setting's type.</summary>
    public static JsonNode? Parse(string key, string text, JsonPropertyInfo property)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        var inv = CultureInfo.InvariantCulture;
        if (text.Equals("null", StringComparison.OrdinalIgnoreCase))
            return AcceptsNull(property) ? null : throw new ConfigException($"'{key}' cannot be null: it takes {Describe(type)}", key);
        if (type == typeof(string)) return JsonValue.Create(text);
        if (type == typeof(bool) && bool.TryParse(text, out var flag)) return JsonValue.Create(flag);
        if (type == typeof(int))
        {
            if (int.TryParse(text, NumberStyles.AllowLeadingSign, inv, out var whole)) return JsonValue.Create(whole);
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, inv, out _))
                throw new ConfigException($"'{key}' takes an integer from {int.MinValue} to {int.MaxValue}, got '{text}'", key);
        }
        // NaN and values beyond double's range (1e400 parses as infinity) are no settings and JSON cannot hold them.
        if (type == typeof(double) && double.TryParse(text, NumberStyles.Float, inv, out var number) && double.IsFinite(number))
            return JsonValue.Create(number);
        if (type == typeof(TrainingStage) && TrainingStages.TryParse(text) is { } stage) return JsonValue.Create(stage.ToString());
        if (type.IsEnum && Enum.GetNames(type).FirstOrDefault(n => n.Equals(text, StringComparison.OrdinalIgnoreCase)) is { } name)
            return JsonValue.Create(name);
        throw new ConfigException($"'{key}' takes {Describe(type)}, got '{text}'", key);
    }

    /// <summary>What a setting of <paramref name="type"/> takes, as a message says it.</summary>
    public static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(int)) return "an integer";
        if (type == typeof(double)) return "a finite number";
        if (type == typeof(string)) return "text";
        if (type == typeof(TrainingStage)) return "one of " + TrainingStages.Accepted;
        if (type.IsEnum) return "one of " + string.Join(", ", Enum.GetNames(type));
        return IsSection(type) ? "a section of settings" : type.Name;
    }

    /// <summary>Every settable leaf setting: dotted path and type.</summary>
    public static IEnumerable<(string Path, Type Type)> All(Type? section = null, string prefix = "")
    {
        foreach (var p in Info(section ?? typeof(TrainConfig)).Properties.Where(p => p.Set is not null))
        {
            if (IsSection(p.PropertyType))
                foreach (var inner in All(p.PropertyType, prefix + p.Name + ".")) yield return inner;
            else yield return (prefix + p.Name, p.PropertyType);
        }
    }

    /// <summary>The doc-comment id (<c>P:Namespace.Type.Property</c>) of the property a dotted setting path names, or null.</summary>
    public static string? Member(string path)
    {
        var type = typeof(TrainConfig);
        System.Reflection.PropertyInfo? property = null;
        foreach (var part in path.Split('.'))
        {
            var name = Info(type).Properties.FirstOrDefault(p => p.Name == part)?.Name;
            property = name is null ? null : type.GetProperty(name);
            if (property is null) return null;
            type = property.PropertyType;
        }
        return property is null ? null : $"P:{property.DeclaringType!.FullName}.{property.Name}";
    }

    /// <summary>A config file's JSON error as a message that names the setting and what it takes, where the path is a setting.</summary>
    public static ConfigException Explain(JsonException e, string json)
    {
        var line = e.LineNumber is { } l ? $" (line {l + 1})" : "";
        var path = e.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : null;
        if (path is not null && path.IndexOfAny(['[', '\'']) < 0)
        {
            var parts = path.Split('.');
            var type = Info(typeof(TrainConfig));
            for (var i = 0; i < parts.Length; i++)
            {
                var property = type.Properties.FirstOrDefault(x => x.Name == parts[i]);
                if (property is null) return new ConfigException($"config JSON{line}: {Unknown(path, parts[..i], type)}", path);
                if (i == parts.Length - 1)
                    return new ConfigException($"config JSON{line}: '{path}' takes {Describe(property.PropertyType)}, got {ValueAt(json, parts)}", path);
                if (!IsSection(property.PropertyType)) break;
                type = Info(property.PropertyType);
            }
        }
        return new ConfigException($"config JSON is invalid at {e.Path}{line}: {e.Message}", e.Path ?? "(root)");
    }

    private static string ValueAt(string json, string[] parts)
    {
        try
        {
            JsonNode? node = JsonNode.Parse(json);
            foreach (var part in parts) node = node?[part];
            return node?.ToJsonString() ?? "null";
        }
        catch (JsonException) { return "a value that is not valid JSON"; }
    }

    private static string Unknown(string key, string[] section, JsonTypeInfo type)
    {
        var known = type.Properties.Where(p => p.Set is not null).Select(p => p.Name);
        return $"unknown setting '{key}' (known {(section.Length == 0 ? "" : "in " + string.Join('.', section) + " ")}settings: {string.Join(", ", known)})";
    }

    private static string Derived(string key, string name) => name switch
    {
        nameof(TrainConfig.RunName) =>
            $"'{key}' is derived (from Name, or from the settings when Name is null) and cannot be set: name the run with Name=<folder name> (--set Name=...)",
        nameof(TrainConfig.RunDirectory) => $"'{key}' is derived (OutputRoot/RunName) and cannot be set: set OutputRoot and Name instead",
        _ => $"'{key}' is derived from other settings and cannot be set",
    };

    private static bool AcceptsNull(JsonPropertyInfo p) =>
        Nullable.GetUnderlyingType(p.PropertyType) is not null
        || (!p.PropertyType.IsValueType && p.AttributeProvider is PropertyInfo info
            && new NullabilityInfoContext().Create(info).WriteState != NullabilityState.NotNull);
}
