using System.Text.Json;
using System.Text.Json.Serialization;

namespace ContrastSeg.Training;

/// <summary>What a run trains.</summary>
public enum TrainingStage
{
    /// <summary>Cross-entropy only, from scratch or from external weights (paper LR 0.03). </summary>
    CrossEntropy,
    /// <summary>Encoder + decoder + projection head with the pixel contrastive loss (paper LR 0.1).</summary>
    Contrastive,
    /// <summary>From a contrastive checkpoint: drop the projection head, fresh classifier, cross-entropy on the whole network (paper LR 0.007).</summary>
    FineTune,
    /// <summary>
    /// Cross-entropy + <c>Contrastive.JointWeight</c> x the contrastive loss, classifier and projection head trained together, as
    /// ContrastiveSeg and ReCo train (the classifier's predictions feed hard anchors and hard queries). From scratch, or from a
    /// run (InitFrom: everything but the classifier, which starts fresh, as fine-tuning does).
    /// </summary>
    Joint,
}

/// <summary>
/// Stage names as configs and command lines spell them: the names of <see cref="TrainingStage"/>, any case, and
/// <c>Baseline</c>, the cross-entropy stage's name before it was called what it trains (config.json files of earlier
/// runs, scripts, <c>--stage Baseline</c>).
/// </summary>
public static class TrainingStages
{
    /// <summary>What a stage setting takes, as messages say it.</summary>
    public static string Accepted => string.Join(", ", Enum.GetNames<TrainingStage>());

    /// <summary>The stage <paramref name="text"/> names, or null.</summary>
    public static TrainingStage? TryParse(string? text)
    {
        var t = (text ?? "").Trim();
        if (t.Equals(ConfigMigration.FormerCrossEntropyName, StringComparison.OrdinalIgnoreCase)) return TrainingStage.CrossEntropy;
        return Enum.GetNames<TrainingStage>().FirstOrDefault(n => n.Equals(t, StringComparison.OrdinalIgnoreCase)) is { } name
            ? Enum.Parse<TrainingStage>(name)
            : null;
    }

    /// <summary>The stage <paramref name="text"/> names.</summary>
    /// <exception cref="ConfigException">No stage has that name (the message says what is accepted and names <paramref name="field"/>).</exception>
    public static TrainingStage Parse(string? text, string field = "Stage") =>
        TryParse(text) ?? throw new ConfigException($"{field} = '{text}' is not a stage: use {Accepted}", field);
}

/// <summary>Reads a stage by any name <see cref="TrainingStages"/> accepts; writes its name.</summary>
internal sealed class TrainingStageJsonConverter : JsonConverter<TrainingStage>
{
    public override TrainingStage Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String && TrainingStages.TryParse(reader.GetString()) is { } stage
            ? stage
            : throw new JsonException($"a stage is one of {TrainingStages.Accepted}");

    public override void Write(Utf8JsonWriter writer, TrainingStage value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
