using System.Text;
using System.Text.Json.Nodes;
using System.Xml.Linq;

namespace ContrastSeg.Training;

/// <summary>
/// The settings reference (docs/reference/settings.md) generated from the settings themselves: every key <c>--set</c> and
/// config files take (<see cref="ConfigSchema"/>), what it takes, its default, and its doc comment, so the reference
/// cannot fall behind the code.
/// </summary>
public static class SettingsReference
{
    /// <summary>The reference as markdown; summaries come from the core's XML documentation next to its assembly.</summary>
    public static string Markdown()
    {
        var docs = Summaries();
        var defaults = JsonNode.Parse(new TrainConfig().ToJson())!;
        var sb = new StringBuilder();
        sb.AppendLine("# Settings reference").AppendLine()
          .AppendLine("Every setting of a run's config (`config.json`), as `--set Section.Field=value` and `train --config` read it.")
          .AppendLine("Defaults are those of an empty config; presets (`--preset cpu|voc|cityscapes`) start from their own values")
          .AppendLine("(`train --print-config` shows them). Generated from the code by `dotnet fsi scripts/reference.fsx`; do not edit.").AppendLine();
        string? section = null;
        foreach (var (path, type) in ConfigSchema.All())
        {
            var dot = path.IndexOf('.');
            var here = dot < 0 ? "(top level)" : path[..path.LastIndexOf('.')];
            if (here != section)
            {
                section = here;
                sb.AppendLine().AppendLine($"## {here}").AppendLine().AppendLine("| setting | takes | default | meaning |").AppendLine("|---|---|---|---|");
            }
            JsonNode? value = defaults;
            foreach (var part in path.Split('.')) value = value?[part];
            value ??= DefaultOf(path); // settings written only when set (AllowPartialInit, the peers' loss options)
            var member = ConfigSchema.Member(path);
            var summary = member is null ? "" : docs.GetValueOrDefault(member, "");
            sb.AppendLine($"| `{path}` | {ConfigSchema.Describe(type)} | `{value?.ToJsonString() ?? "null"}` | {summary} |");
        }
        return sb.ToString();
    }

    /// <summary>The default of a setting that an empty config's JSON leaves out, read from the settings records themselves.</summary>
    private static JsonNode? DefaultOf(string path)
    {
        object? value = new TrainConfig();
        foreach (var part in path.Split('.'))
        {
            if (value?.GetType().GetProperty(part) is not { } property) return null;
            value = property.GetValue(value);
        }
        return value is null ? null : System.Text.Json.JsonSerializer.SerializeToNode(value, value.GetType(), TrainConfig.Json);
    }

    // Doc-comment summaries by member id (P:Namespace.Type.Property), one line each.
    private static Dictionary<string, string> Summaries()
    {
        var file = Path.ChangeExtension(typeof(TrainConfig).Assembly.Location, ".xml");
        if (!File.Exists(file)) throw new FileNotFoundException($"the core's XML documentation {file} is missing: build the core (GenerateDocumentationFile) first", file);
        return XDocument.Load(file).Descendants("member")
            .Where(m => (string?)m.Attribute("name") is { } n && n.StartsWith("P:", StringComparison.Ordinal) && m.Element("summary") is not null)
            .ToDictionary(m => (string)m.Attribute("name")!, m => Flatten(m.Element("summary")!));
    }

    private static string Flatten(XElement summary)
    {
        var text = string.Concat(summary.Nodes().Select(n => n switch
        {
            XElement { Name.LocalName: "see" } see => "`" + ((string?)see.Attribute("cref") ?? (string?)see.Attribute("langword") ?? "").Split('.')[^1] + "`",
            XElement { Name.LocalName: "c" } c => "`" + c.Value + "`",
            XElement e => e.Value,
            _ => n.ToString(),
        }));
        return string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).Replace("|", "\\|");
    }
}
