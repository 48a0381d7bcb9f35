using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ContrastSeg.Data;
using ContrastSeg.Losses;
using ContrastSeg.Models;
using ContrastSeg.Runtime;

namespace ContrastSeg.Training;

/// <summary>
/// Everything a run needs, serialised as JSON next to the run. Every field can be overridden from
/// the command line with <c>--set Section.Field=value</c> (see <see cref="ConfigOverrides"/>).
/// </summary>
public sealed record TrainConfig
{
    /// <summary>What the run trains: CrossEntropy, Contrastive (pretraining), FineTune (from a contrastive run) or Joint (cross-entropy + weight x contrastive).</summary>
    public TrainingStage Stage { get; init; } = TrainingStage.CrossEntropy;
    /// <summary>Training seed (weights, dropout, order, augmentation).</summary>
    public int Seed { get; init; } = 0;
    /// <summary>Data.</summary>
    public DataSettings Data { get; init; } = new();
    /// <summary>Model.</summary>
    public ModelSettings Model { get; init; } = new();
    /// <summary>Optimiser.</summary>
    public OptimizerSettings Optimizer { get; init; } = new();
    /// <summary>Contrastive loss (used by the contrastive stage).</summary>
    public ContrastiveSettings Contrastive { get; init; } = new();
    /// <summary>Device (not part of the run's identity).</summary>
    public RuntimeSettings Runtime { get; init; } = new();
    /// <summary>Initial weights: a kit checkpoint folder/run, or torchvision ResNet weights (.safetensors, .pth); null = from scratch.</summary>
    public string? InitFrom { get; init; }
    /// <summary>
    /// Train from a weight file that fits the encoder only in part (tensors missing or of another shape keep their
    /// fresh initialisation). Off: anything below a full match is an error listing what did not fit (CLI: <c>--allow-partial</c>).
    /// </summary>
    // Written only when on, so the JSON (and the settings hash in run names) of every config without it stays as it was.
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool AllowPartialInit { get; init; }
    /// <summary>
    /// Start from a run folder (<see cref="InitFrom"/>) whose training has not taken all its steps. Off: that is an error
    /// naming the run, the step it reached and the steps it planned (CLI: <c>--allow-unfinished-init</c>; naming one of its
    /// checkpoint folders is explicit too). Not part of the run name, like <see cref="AllowPartialInit"/>.
    /// </summary>
    // Written only when on, so the JSON (and the settings hash in run names) of every config without it stays as it was.
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool AllowUnfinishedInit { get; init; }
    /// <summary>Folder that holds runs.</summary>
    public string OutputRoot { get; init; } = "runs";
    /// <summary>Explicit run name (default: derived from the settings, see <see cref="RunName"/>).</summary>
    public string? Name { get; init; }
    /// <summary>Print/log every N steps.</summary>
    public int LogEvery { get; init; } = 25;
    /// <summary>Checkpoint every N steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 250;
    /// <summary>Checkpoints kept besides the best one.</summary>
    public int KeepLast { get; init; } = 2;
    /// <summary>Validate every N steps (0: only at the end; never for the contrastive stage, which has no classifier).</summary>
    public int EvalEvery { get; init; } = 0;
    /// <summary>Continue from the run's last checkpoint when there is one.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>The run's name: <see cref="Name"/> or one derived from the settings.</summary>
    public string RunName => Name ?? RunNames.Derive(this);

    /// <summary>The run's folder.</summary>
    public string RunDirectory => Path.Combine(OutputRoot, RunName);

    /// <summary>The largest random or test-time scale factor (a 64-pixel crop at 4x is already a 256-pixel image).</summary>
    public const double MaxScale = 4;

    /// <summary>The smallest <c>Data.Resize</c>: 1/20 (a 2048-pixel Cityscapes frame becomes 102 pixels wide). Images must also stay at least the model's minimum input after it (checked per image before a run).</summary>
    public const double MinResize = 0.05;

    /// <summary>Checks every field before any work starts; the message names the field and the value.</summary>
    public TrainConfig Validate()
    {
        static void Check(bool ok, string field, object? value, string rule)
        {
            if (!ok) throw new ConfigException($"{field} = {Format(value)} is invalid: {rule}.", field);
        }
        static bool Positive(double v) => v > 0 && double.IsFinite(v);
        Check(Enum.IsDefined(Stage), "Stage", Stage, $"must be one of {string.Join(", ", Enum.GetNames<TrainingStage>())}");
        var o = Optimizer;
        Check(Positive(o.LearningRate), "Optimizer.LearningRate", o.LearningRate, "must be a positive finite number");
        Check(o.Momentum is >= 0 and < 1, "Optimizer.Momentum", o.Momentum, "must be in [0, 1)");
        Check(o.WeightDecay >= 0 && double.IsFinite(o.WeightDecay), "Optimizer.WeightDecay", o.WeightDecay, "must be a finite number >= 0");
        Check(o.Steps >= 1, "Optimizer.Steps", o.Steps, "must be >= 1");
        Check(o.WarmupSteps >= 0 && o.WarmupSteps < o.Steps, "Optimizer.WarmupSteps", o.WarmupSteps,
            $"must be in [0, Optimizer.Steps = {o.Steps}) (a short run needs a shorter warm-up: --set Optimizer.WarmupSteps={Math.Max(0, o.Steps / 10)})");
        Check(o.BatchSize >= 1, "Optimizer.BatchSize", o.BatchSize, "must be >= 1");
        Check(o.Accumulation >= 1, "Optimizer.Accumulation", o.Accumulation, "must be >= 1");
        var d = Data;
        var kind = DatasetRegistry.Find(d.Dataset);
        Check(kind is not null, "Data.Dataset", d.Dataset, $"must be one of {string.Join(", ", DatasetRegistry.Names)}");
        Check(kind is not { NeedsRoot: true } || !string.IsNullOrWhiteSpace(d.Root), "Data.Root", d.Root, $"is required for {d.Dataset}");
        Check(d.Root is null || Directory.Exists(d.Root), "Data.Root", d.Root, "folder does not exist");
        Check(d.Crop is >= 16 and <= 2048, "Data.Crop", d.Crop, "must be between 16 and 2048 pixels");
        Check(d.Resize is >= MinResize and <= MaxScale, "Data.Resize", d.Resize,
            $"must be in [{Format(MinResize)}, {MaxScale}] (1 = images as stored; below {Format(MinResize)} an image keeps less than a twentieth of its side)");
        Check(d.ScaleMax is > 0 and <= MaxScale, "Data.ScaleMax", d.ScaleMax, $"must be in (0, {MaxScale}]");
        Check(d.ScaleMin > 0 && d.ScaleMin <= d.ScaleMax, "Data.ScaleMin", d.ScaleMin, $"must be positive and <= Data.ScaleMax = {Format(d.ScaleMax)}");
        Check(d.Labelled is null or >= 1, "Data.Labelled", d.Labelled, "must be >= 1 (or null for all)");
        Check(d.DistortionStrength is >= 0 and <= 2, "Data.DistortionStrength", d.DistortionStrength, "must be in [0, 2]");
        Check(d.Workers is >= 0 and <= 256, "Data.Workers", d.Workers, "must be in [0, 256] (0: automatic)");
        Check(d.MaxImagePixels is >= 1 and <= PixelLimit.Max, PixelLimit.Setting, d.MaxImagePixels,
            $"must be in [1, {PixelLimit.Max}] pixels (default {PixelLimit.Default} = 8192x8192)");
        Check(d.Scenes is not null, "Data.Scenes", d.Scenes, "must be set (the embedded scenes' settings)");
        Check(d.Scenes!.Size is >= 16 and <= 1024, "Data.Scenes.Size", d.Scenes.Size, "must be between 16 and 1024");
        Check(d.Scenes.Train >= 1, "Data.Scenes.Train", d.Scenes.Train, "must be >= 1");
        Check(d.Scenes.Val >= 1, "Data.Scenes.Val", d.Scenes.Val, "must be >= 1");
        var m = Model;
        Check(Enum.IsDefined(m.Depth), "Model.Depth", m.Depth, "must be ResNet18, ResNet34, ResNet50 or ResNet101");
        Check(Enum.IsDefined(m.Stem), "Model.Stem", m.Stem, "must be ImageNet or Small");
        var strides = EncoderOptions.SupportedOutputStridesFor(m.Stem);
        Check(strides.Contains(m.OutputStride), "Model.OutputStride", m.OutputStride, $"must be {string.Join(" or ", strides)} with the {m.Stem} stem");
        Check(m.WidthMultiplier is > 0 and <= 4, "Model.WidthMultiplier", m.WidthMultiplier, "must be in (0, 4]");
        // The embedded scenes are generated, not files the run checks: their size after the resize is known here.
        var scene = ContrastSeg.Data.ResizedDataset.SizeOf(d.Scenes.Size, d.Scenes.Size, d.Resize).Width;
        Check(d.Dataset != "fashion-mnist-scenes" || scene >= m.OutputStride, "Data.Resize", d.Resize,
            $"makes the {d.Scenes.Size}x{d.Scenes.Size} scenes {scene}x{scene}, smaller than the model reads ({m.OutputStride}x{m.OutputStride}, its output stride Model.OutputStride)");
        foreach (var (field, channels) in new[] { ("Model.AsppChannels", m.AsppChannels), ("Model.LowLevelChannels", m.LowLevelChannels),
                                                  ("Model.DecoderChannels", m.DecoderChannels), ("Model.ProjectionChannels", m.ProjectionChannels) })
            Check(channels is >= 1 and <= 4096, field, channels, "must be between 1 and 4096 channels");
        Check(m.ProjectionLayers is >= 1 and <= 16, "Model.ProjectionLayers", m.ProjectionLayers, "must be between 1 and 16");
        Check(m.AsppDropout is >= 0 and < 1, "Model.AsppDropout", m.AsppDropout, "must be in [0, 1)");
        var c = Contrastive;
        Check(Enum.IsDefined(c.Variant), "Contrastive.Variant", c.Variant, "must be WithinImage, CrossImage or Batch");
        Check(Positive(c.Temperature), "Contrastive.Temperature", c.Temperature, "must be a positive finite number");
        Check(c.ResizeTo is >= 0 and <= 1024, "Contrastive.ResizeTo", c.ResizeTo, "must be in [0, 1024] (0: no resize)");
        Check(c.BatchSampleSize >= 2, "Contrastive.BatchSampleSize", c.BatchSampleSize, "must be >= 2");
        Check(Enum.IsDefined(c.Pairing), "Contrastive.Pairing", c.Pairing, $"must be one of {string.Join(", ", Enum.GetNames<CrossImagePairing>())}");
        ValidatePeerOptions(c);
        Check(Devices.Normalize(Runtime.Device) is not null, Devices.Field, Runtime.Device, $"must be {Devices.Accepted}");
        Check(Stage != TrainingStage.FineTune || InitFrom is not null, "InitFrom", InitFrom, "fine-tuning needs the contrastive checkpoint to start from");
        Check(LogEvery >= 1, "LogEvery", LogEvery, "must be >= 1");
        Check(CheckpointEvery >= 1, "CheckpointEvery", CheckpointEvery, "must be >= 1");
        Check(KeepLast >= 1, "KeepLast", KeepLast, "must be >= 1");
        Check(EvalEvery >= 0, "EvalEvery", EvalEvery, "must be >= 0 (0: only at the end)");
        Check(Name is null || IsFolderName(Name), "Name", Name,
            "must be one folder name inside OutputRoot: not empty, not '.' or '..', no '/' or '\\', not an absolute path");
        return this;
    }

    /// <summary>The peers' options of the contrastive loss (docs/loss.md): each message names the field, its value and the rule.</summary>
    private void ValidatePeerOptions(ContrastiveSettings c)
    {
        static void Check(bool ok, string field, object? value, string rule)
        {
            if (!ok) throw new ConfigException($"{field} = {Format(value)} is invalid: {rule}.", field);
        }
        var joint = Stage == TrainingStage.Joint;
        Check(c.JointWeight >= 0 && double.IsFinite(c.JointWeight), "Contrastive.JointWeight", c.JointWeight, "must be a finite number >= 0");
        Check(!joint || c.JointWeight > 0, "Contrastive.JointWeight", c.JointWeight,
            $"must be > 0 for the Joint stage (cross-entropy + weight x contrastive; ContrastiveSeg: {Format(ContrastiveSettings.PeerJointWeight)})");
        Check(c.HardAnchorFraction == 0 || joint, "Contrastive.HardAnchorFraction", c.HardAnchorFraction,
            "needs the classifier's predictions: train the Joint stage (Stage=Joint)");
        Check(c.HardQueryThreshold == 0 || joint, "Contrastive.HardQueryThreshold", c.HardQueryThreshold,
            "needs the classifier's predictions: train the Joint stage (Stage=Joint)");
        // The loss's own rules, named as the settings that carry them.
        foreach (var (field, value, rule) in c.ToLossOptions(Seed, 255, 1).PeerProblems().Take(1))
            Check(false, "Contrastive." + field, value, rule);
    }

    /// <summary>A single, relative folder name: the run stays inside <see cref="OutputRoot"/> on every OS.</summary>
    private static bool IsFolderName(string name) =>
        name.Trim().Length > 0 && name is not ("." or "..") && name.IndexOfAny(['/', '\\']) < 0
        && name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0 && !Path.IsPathRooted(name);

    private static string Format(object? v) => v switch
    {
        null => "null",
        double d => d.ToString("G", CultureInfo.InvariantCulture),
        string s => $"'{s}'",
        _ => v.ToString() ?? "null",
    };

    /// <summary>JSON options used for configs (enums as names, indented).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new TrainingStageJsonConverter(), new JsonStringEnumConverter() },
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Serialises to JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>
    /// The config without the settings that cannot change the weights (loader workers, the pixel limit, logging and
    /// checkpoint cadence, whether a partial weight file or an unfinished run may start the run, where the run folder lies, the device):
    /// what must match to resume a run.
    /// </summary>
    public string WeightsDefiningJson()
    {
        var json = JsonNode.Parse((this with { Data = Data with { Workers = 0 }, LogEvery = 1, CheckpointEvery = 1, KeepLast = 1, Resume = true, AllowPartialInit = false, AllowUnfinishedInit = false, OutputRoot = "" }).ToJson())!.AsObject();
        // The device is left out, not normalised: a run resumed on another device is the same run, and the text (so
        // the settings hash in run names) of every config stays what it was before the Runtime section existed.
        json.Remove(nameof(Runtime));
        // The pixel limit only refuses images (never resizes them), and the text of every config stays what it was before it existed.
        json[nameof(Data)]!.AsObject().Remove(nameof(DataSettings.MaxImagePixels));
        return json.ToJsonString(Json);
    }

    /// <summary>Reads a config from JSON; unknown fields are an error naming the field.</summary>
    public static TrainConfig FromJson(string json)
    {
        try
        {
            // Settings spelled the former way (config.json of earlier runs) are read where they are now; other text as it is,
            // so that errors give its line numbers.
            if (JsonNode.Parse(json) is JsonObject root && ConfigMigration.Upgrade(root)) json = root.ToJsonString(Json);
            return JsonSerializer.Deserialize<TrainConfig>(json, Json) ?? throw new ConfigException("empty config", "(root)");
        }
        catch (JsonException e) { throw ConfigSchema.Explain(e, json); }
    }

    /// <summary>Reads a config file.</summary>
    public static TrainConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ConfigException($"config file {path} does not exist", path);
        return FromJson(File.ReadAllText(path));
    }
}
