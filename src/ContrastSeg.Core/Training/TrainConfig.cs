using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using ContrastSeg.Data;
using ContrastSeg.Losses;
using ContrastSeg.Models;
using ContrastSeg.Runtime;

namespace ContrastSeg.Training;

/// <summary>What a run trains.</summary>
public enum TrainingStage
{
    /// <summary>Cross-entropy only, from scratch or from external weights (paper LR 0.03). Its former name <c>Baseline</c> still reads (<see cref="TrainingStages"/>).</summary>
    CrossEntropy,
    /// <summary>Encoder + decoder + projection head with the pixel contrastive loss (paper LR 0.1).</summary>
    Contrastive,
    /// <summary>From a contrastive checkpoint: drop the projection head, fresh classifier, cross-entropy on the whole network (paper LR 0.007).</summary>
    FineTune,
}

/// <summary>
/// Stage names as configs and command lines spell them: the names of <see cref="TrainingStage"/>, any case, and
/// <c>Baseline</c>, the cross-entropy stage's name before it was called what it trains (config.json files of earlier
/// runs, scripts, <c>--stage Baseline</c>).
/// </summary>
public static class TrainingStages
{
    /// <summary>The cross-entropy stage's former name: still read, and what run names hash (so they stay what they were).</summary>
    public const string FormerCrossEntropyName = "Baseline";

    /// <summary>What a stage setting takes, as messages say it.</summary>
    public static string Accepted => $"{string.Join(", ", Enum.GetNames<TrainingStage>())} (or {FormerCrossEntropyName}, the former name of CrossEntropy)";

    /// <summary>The stage <paramref name="text"/> names, or null.</summary>
    public static TrainingStage? TryParse(string? text)
    {
        var t = (text ?? "").Trim();
        if (t.Equals(FormerCrossEntropyName, StringComparison.OrdinalIgnoreCase)) return TrainingStage.CrossEntropy;
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

/// <summary>Where the images come from.</summary>
public sealed record DataSettings
{
    /// <summary>A name of <see cref="DatasetRegistry"/>: <c>fashion-mnist-scenes</c> (embedded default), <c>voc</c>, <c>cityscapes</c> or <c>folder</c>.</summary>
    public string Dataset { get; init; } = "fashion-mnist-scenes";
    /// <summary>Dataset root (not needed for the embedded scenes; a Fashion-MNIST folder there).</summary>
    public string? Root { get; init; }
    /// <summary>Training split name or list file.</summary>
    public string TrainSplit { get; init; } = "train";
    /// <summary>Validation split name or list file.</summary>
    public string ValSplit { get; init; } = "val";
    /// <summary>Labelled images drawn from the training split (null: all).</summary>
    public int? Labelled { get; init; }
    /// <summary>List file holding the labelled subset (written on first use, reused after; default inside the run's data folder).</summary>
    public string? LabelledList { get; init; }
    /// <summary>Working resolution: every image and mask is resized by this factor when loaded, for training and evaluation (1 = as stored; e.g. 0.5 halves 240x180 street scenes to 120x90).</summary>
    public double Resize { get; init; } = 1.0;
    /// <summary>Training crop (square).</summary>
    public int Crop { get; init; } = 64;
    /// <summary>Random scale range.</summary>
    public double ScaleMin { get; init; } = 0.5;
    /// <summary>Random scale range.</summary>
    public double ScaleMax { get; init; } = 2.0;
    /// <summary>SimCLR-style colour distortion in the contrastive stage.</summary>
    public bool ContrastiveDistortion { get; init; } = true;
    /// <summary>Strength of the SimCLR colour distortion.</summary>
    public double DistortionStrength { get; init; } = 0.5;
    /// <summary>Loader worker threads (0: one per 4 cores, at least 1; see <see cref="Runtime.ThreadPolicy"/>).</summary>
    public int Workers { get; init; } = 0;
    /// <summary>The embedded scenes' own settings (used when <see cref="Dataset"/> is <c>fashion-mnist-scenes</c>).</summary>
    public SceneSettings Scenes { get; init; } = new();
    /// <summary>Seed of the data (scenes, labelled subset), separate from the training seed.</summary>
    public int DataSeed { get; init; } = 0;
    /// <summary>Folder of pseudo-label index PNGs (<c>&lt;id&gt;.png</c>) for unlabelled training images; they join the labelled subset.</summary>
    public string? PseudoLabels { get; init; }
    /// <summary>
    /// The most pixels an image or mask may have (default 8192x8192, see <see cref="PixelLimit"/>): a larger one is refused
    /// from its header, before decoding, with an error naming it. Raise it for genuinely large images. Not part of what a
    /// run is (an image above it is refused, never resized), so run names do not hash it.
    /// </summary>
    public int MaxImagePixels { get; init; } = PixelLimit.Default;
}

/// <summary>
/// The embedded Fashion-MNIST scenes' settings (<c>Data.Scenes</c>). Until 2026-12 they were <c>Data.SceneSize</c>,
/// <c>Data.TrainScenes</c> and <c>Data.ValScenes</c>: configs and <c>--set</c> keys of that spelling still read, and run
/// names hash them as they were (<see cref="FormerLayout"/>).
/// </summary>
public sealed record SceneSettings
{
    /// <summary>Canvas size (square).</summary>
    public int Size { get; init; } = 64;
    /// <summary>Training scenes.</summary>
    public int Train { get; init; } = 2000;
    /// <summary>Validation scenes.</summary>
    public int Val { get; init; } = 300;
}

/// <summary>
/// Settings that moved, and how configs spelled them before: earlier config.json files and <c>--set</c> keys read,
/// and the text run names hash keeps the former layout, so that moving a setting renamed no run.
/// </summary>
internal static class FormerLayout
{
    /// <summary>(former <c>Data.</c> field, its field in <c>Data.Scenes</c>), in the order the former fields stood.</summary>
    private static readonly (string Former, string Current)[] SceneFields = [("SceneSize", "Size"), ("TrainScenes", "Train"), ("ValScenes", "Val")];

    /// <summary>Former <c>--set</c> keys and the keys they mean now (compared ignoring case).</summary>
    public static readonly IReadOnlyDictionary<string, string> Keys =
        SceneFields.ToDictionary(f => $"Data.{f.Former}", f => $"Data.{nameof(DataSettings.Scenes)}.{f.Current}", StringComparer.OrdinalIgnoreCase);

    /// <summary>Moves settings spelled the former way to where they are now (in place); whether there was one.</summary>
    public static bool Upgrade(JsonObject config)
    {
        if (config[nameof(TrainConfig.Data)] is not JsonObject data) return false;
        var moved = false;
        foreach (var (former, current) in SceneFields)
        {
            var key = data.Select(p => p.Key).FirstOrDefault(k => k.Equals(former, StringComparison.OrdinalIgnoreCase));
            if (key is null) continue;
            var value = data[key];
            data.Remove(key);
            if (data[nameof(DataSettings.Scenes)] is not JsonObject scenes) data[nameof(DataSettings.Scenes)] = scenes = new JsonObject();
            if (scenes.ContainsKey(current))
                throw new ConfigException($"Data.{former} is the former name of Data.Scenes.{current}: the config sets both", $"Data.{former}");
            scenes[current] = value?.DeepClone();
            moved = true;
        }
        return moved;
    }

    /// <summary>
    /// The weights-defining JSON of a config as run names hash it (in place): the cross-entropy stage under its former
    /// name, the scenes' settings flat in <c>Data</c>, where they stood.
    /// </summary>
    public static void AsHashed(JsonObject config)
    {
        if (config[nameof(TrainConfig.Stage)]?.GetValue<string>() == nameof(TrainingStage.CrossEntropy))
            config[nameof(TrainConfig.Stage)] = TrainingStages.FormerCrossEntropyName;
        if (config[nameof(TrainConfig.Data)] is not JsonObject data || data[nameof(DataSettings.Scenes)] is not JsonObject scenes) return;
        var at = data.IndexOf(nameof(DataSettings.Scenes));
        data.RemoveAt(at);
        foreach (var (former, current) in SceneFields) data.Insert(at++, former, scenes[current]?.DeepClone());
    }
}

/// <summary>
/// Network shape (see <see cref="SegmentationModelOptions"/>, which <see cref="ToOptions"/> and <see cref="From"/> map to and
/// from). Its defaults are <see cref="SegmentationModelOptions.CpuSmall"/>'s, the model of the kit's default data, read
/// from it: the model presets are the one place a model's numbers are written.
/// </summary>
public sealed record ModelSettings
{
    // The source of the defaults (its class count is not part of the settings: the dataset's is used).
    private static readonly SegmentationModelOptions Defaults = SegmentationModelOptions.CpuSmall(numClasses: 1);

    /// <summary>ResNet depth.</summary>
    public ResNetDepth Depth { get; init; } = Defaults.Encoder.Depth;
    /// <summary>Encoder stem: <c>ImageNet</c> (torchvision's 7x7 + max-pool, weights load 1:1) or <c>Small</c> (3x3, no max-pool, for small images).</summary>
    public EncoderStem Stem { get; init; } = Defaults.Encoder.Stem;
    /// <summary>Output stride, 8 or 16 (8 with the small stem).</summary>
    public int OutputStride { get; init; } = Defaults.Encoder.OutputStride;
    /// <summary>Encoder width multiplier.</summary>
    public double Width { get; init; } = Defaults.Encoder.WidthMultiplier;
    /// <summary>ASPP channels.</summary>
    public int AsppChannels { get; init; } = Defaults.AsppChannels;
    /// <summary>Low-level projection channels.</summary>
    public int LowLevelChannels { get; init; } = Defaults.LowLevelChannels;
    /// <summary>Decoder (feature) channels.</summary>
    public int DecoderChannels { get; init; } = Defaults.DecoderChannels;
    /// <summary>Projection head layers.</summary>
    public int ProjectionLayers { get; init; } = Defaults.ProjectionOrDefault.Layers;
    /// <summary>Projection head channels.</summary>
    public int ProjectionChannels { get; init; } = Defaults.ProjectionOrDefault.Channels;
    /// <summary>BatchNorm between projection layers (released code: yes).</summary>
    public bool ProjectionBatchNorm { get; init; } = Defaults.ProjectionOrDefault.BatchNorm;
    /// <summary>ASPP dropout.</summary>
    public double Dropout { get; init; } = Defaults.AsppDropout;

    /// <summary>
    /// The settings of a model preset (<see cref="SegmentationModelOptions.CpuSmall"/>, <see cref="SegmentationModelOptions.Paper"/>):
    /// the training presets are built from them, so each model is defined once. The class count is the dataset's.
    /// </summary>
    public static ModelSettings From(SegmentationModelOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Encoder.InChannels != 3)
            throw new ArgumentException($"EncoderOptions.InChannels = {o.Encoder.InChannels}: the training settings build RGB models only.", nameof(o));
        return new ModelSettings
        {
            Depth = o.Encoder.Depth, Stem = o.Encoder.Stem, OutputStride = o.Encoder.OutputStride, Width = o.Encoder.WidthMultiplier,
            AsppChannels = o.AsppChannels, LowLevelChannels = o.LowLevelChannels, DecoderChannels = o.DecoderChannels,
            ProjectionLayers = o.ProjectionOrDefault.Layers, ProjectionChannels = o.ProjectionOrDefault.Channels,
            ProjectionBatchNorm = o.ProjectionOrDefault.BatchNorm, Dropout = o.AsppDropout,
        };
    }

    /// <summary>The encoder's options (RGB input): what encoder weights, e.g. classification pretraining's, are made for.</summary>
    public EncoderOptions ToEncoderOptions() => new(Depth, OutputStride, Width, Stem: Stem);

    /// <summary>The model options for <paramref name="numClasses"/> classes.</summary>
    public SegmentationModelOptions ToOptions(int numClasses) => new(
        ToEncoderOptions(), numClasses, AsppChannels, LowLevelChannels, DecoderChannels, Dropout,
        new ProjectionHeadOptions(ProjectionLayers, ProjectionChannels, ProjectionBatchNorm));
}

/// <summary>SGD, schedule, batch.</summary>
public sealed record OptimizerSettings
{
    /// <summary>Initial learning rate.</summary>
    public double LearningRate { get; init; } = 0.03;
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>Weight decay (paper 4e-5).</summary>
    public double WeightDecay { get; init; } = 4e-5;
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 1500;
    /// <summary>Linear warm-up steps before the cosine decay.</summary>
    public int WarmupSteps { get; init; } = 0;
    /// <summary>Images per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches accumulated per optimiser step (effective batch = BatchSize x this).</summary>
    public int Accumulation { get; init; } = 1;
    /// <summary>Keep BatchNorm statistics frozen (eval-mode BN) while training.</summary>
    public bool FreezeBatchNorm { get; init; } = false;
}

/// <summary>Contrastive-stage loss settings.</summary>
public sealed record ContrastiveSettings
{
    /// <summary>Loss variant.</summary>
    public ContrastiveVariant Variant { get; init; } = ContrastiveVariant.WithinImage;
    /// <summary>Temperature.</summary>
    public double Temperature { get; init; } = 0.07;
    /// <summary>Features are resized to this square size before the projection head (released code order); 0 = no resize.</summary>
    public int ResizeTo { get; init; } = 16;
    /// <summary>Batch variant: sampled pixels.</summary>
    public int BatchSampleSize { get; init; } = 10_000;
    /// <summary>Cross-image partner choice.</summary>
    public CrossImagePairing Pairing { get; init; } = CrossImagePairing.NextImage;
}

/// <summary>
/// Where a run computes. Not part of what a run is: <see cref="TrainConfig.WeightsDefiningJson"/> leaves this section
/// out, so the run name is the same on every device and a run resumes on another device.
/// </summary>
public sealed record RuntimeSettings
{
    /// <summary>
    /// <c>auto</c> (default: <c>CONTRASTSEG_DEVICE</c> if set, else CUDA when available, else the CPU), <c>cpu</c>, <c>cuda</c> or
    /// <c>cuda:N</c> (see <see cref="Devices"/>). A run's config.json records the device it used (e.g. <c>cpu</c>).
    /// </summary>
    public string Device { get; init; } = Devices.Auto;
}

/// <summary>
/// Everything a run needs, serialised as JSON next to the run. Every field can be overridden from
/// the command line with <c>--set Section.Field=value</c> (see <see cref="ConfigOverrides"/>).
/// </summary>
public sealed record TrainConfig
{
    /// <summary>Stage.</summary>
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
        Check(m.Width is > 0 and <= 4, "Model.Width", m.Width, "must be in (0, 4]");
        // The embedded scenes are generated, not files the run checks: their size after the resize is known here.
        var scene = ContrastSeg.Data.ResizedDataset.SizeOf(d.Scenes.Size, d.Scenes.Size, d.Resize).Width;
        Check(d.Dataset != "fashion-mnist-scenes" || scene >= m.OutputStride, "Data.Resize", d.Resize,
            $"makes the {d.Scenes.Size}x{d.Scenes.Size} scenes {scene}x{scene}, smaller than the model reads ({m.OutputStride}x{m.OutputStride}, its output stride Model.OutputStride)");
        foreach (var (field, channels) in new[] { ("Model.AsppChannels", m.AsppChannels), ("Model.LowLevelChannels", m.LowLevelChannels),
                                                  ("Model.DecoderChannels", m.DecoderChannels), ("Model.ProjectionChannels", m.ProjectionChannels) })
            Check(channels is >= 1 and <= 4096, field, channels, "must be between 1 and 4096 channels");
        Check(m.ProjectionLayers is >= 1 and <= 16, "Model.ProjectionLayers", m.ProjectionLayers, "must be between 1 and 16");
        Check(m.Dropout is >= 0 and < 1, "Model.Dropout", m.Dropout, "must be in [0, 1)");
        var c = Contrastive;
        Check(Enum.IsDefined(c.Variant), "Contrastive.Variant", c.Variant, "must be WithinImage, CrossImage or Batch");
        Check(Positive(c.Temperature), "Contrastive.Temperature", c.Temperature, "must be a positive finite number");
        Check(c.ResizeTo is >= 0 and <= 1024, "Contrastive.ResizeTo", c.ResizeTo, "must be in [0, 1024] (0: no resize)");
        Check(c.BatchSampleSize >= 2, "Contrastive.BatchSampleSize", c.BatchSampleSize, "must be >= 2");
        Check(Enum.IsDefined(c.Pairing), "Contrastive.Pairing", c.Pairing, $"must be one of {string.Join(", ", Enum.GetNames<CrossImagePairing>())}");
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
        // Renamed and moved settings are hashed as they were spelled: renaming and moving them renamed no run.
        FormerLayout.AsHashed(json);
        return json.ToJsonString(Json);
    }

    /// <summary>Reads a config from JSON; unknown fields are an error naming the field.</summary>
    public static TrainConfig FromJson(string json)
    {
        try
        {
            // Settings spelled the former way (config.json of earlier runs) are read where they are now; other text as it is,
            // so that errors give its line numbers.
            if (JsonNode.Parse(json) is JsonObject root && FormerLayout.Upgrade(root)) json = root.ToJsonString(Json);
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

/// <summary>An invalid setting; <see cref="Field"/> names it.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ConfigException(string message, string field) : base(message) => Field = field;

    /// <summary>The offending field (dotted path).</summary>
    public string Field { get; }
}

/// <summary>Command-line overrides: <c>Section.Field=value</c>, case-insensitive field names.</summary>
public static class ConfigOverrides
{
    /// <summary>
    /// Applies <c>key=value</c> overrides in order. Unknown keys, derived ones (<see cref="TrainConfig.RunName"/>)
    /// and values of the wrong kind are errors that name the key and say what it takes.
    /// </summary>
    public static TrainConfig Apply(TrainConfig config, IEnumerable<string> assignments)
    {
        var root = JsonNode.Parse(config.ToJson())!.AsObject();
        foreach (var assignment in assignments)
        {
            var eq = assignment.IndexOf('=');
            if (eq <= 0) throw new ConfigException($"override '{assignment}' is not key=value", assignment);
            var key = assignment[..eq].Trim();
            if (FormerLayout.Keys.TryGetValue(key, out var moved)) key = moved; // e.g. Data.SceneSize, now Data.Scenes.Size
            var (node, property) = ConfigSchema.Resolve(root, key);
            node[property.Name] = ConfigSchema.Parse(key, assignment[(eq + 1)..].Trim(), property);
        }
        try { return TrainConfig.FromJson(root.ToJsonString()); }
        catch (ConfigException e) { throw new ConfigException($"override produced an invalid config: {e.Message}", e.Field); }
    }
}

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

/// <summary>Run names that encode the settings, so a results table maps to runs (as mmsegmentation's config names do).</summary>
public static class RunNames
{
    /// <summary>
    /// e.g. <c>contrastive-within-t0.07_r18w0.25-os8_fmscenes-n20_crop64_b8_1500st_lr0.1_s0_1a2b3c</c>: the main
    /// settings readably, then a hash of every weights-defining setting (<see cref="SettingsHash"/>), so two
    /// runs that differ in a setting the readable part leaves out (augmentation, temperature, schedule details)
    /// never share a folder and a changed profile never finds a stale run.
    /// </summary>
    public static string Derive(TrainConfig c) => Readable(c) + "_" + SettingsHash(c);

    /// <summary>
    /// Six hex digits of the SHA-256 of <see cref="TrainConfig.WeightsDefiningJson"/> without the output
    /// location and explicit name (which say where a run goes, not what it is).
    /// </summary>
    public static string SettingsHash(TrainConfig c) =>
        // Name = "" (not null): the JSON includes RunName, which must not call back into Derive.
        Hash((c with { OutputRoot = "", Name = "" }).WeightsDefiningJson())[..6];

    /// <summary>A number as names write it: invariant, up to five decimals, no trailing zeros (0.25, 1e-3 as 0.001).</summary>
    public static string Number(double v) => v.ToString("0.#####", CultureInfo.InvariantCulture);

    /// <summary>The first <paramref name="bytes"/> bytes of the SHA-256 of <paramref name="text"/> (UTF-8) in lower-case hex: the short hashes names end with.</summary>
    public static string Digest(string text, int bytes) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)), 0, bytes).ToLowerInvariant();

    private static string Readable(TrainConfig c)
    {
        var stage = c.Stage switch
        {
            TrainingStage.Contrastive => $"contrastive-{c.Contrastive.Variant.ToString().ToLowerInvariant().Replace("image", "")}-t{Number(c.Contrastive.Temperature)}"
                                         + (c.Data.ContrastiveDistortion ? "" : "-nodistort"),
            TrainingStage.FineTune => "finetune",
            _ => "ce",
        };
        var depth = (int)c.Model.Depth;
        var data = DatasetRegistry.Find(c.Data.Dataset)?.RunNameTag ?? c.Data.Dataset; // an unknown name fails Validate
        var labelled = (c.Data.Labelled is { } n ? $"n{n}" : "all") + (c.Data.PseudoLabels is { } pseudo ? "+pseudo-" + Hash(pseudo) : "");
        var batch = c.Optimizer.Accumulation > 1 ? $"b{c.Optimizer.BatchSize}x{c.Optimizer.Accumulation}" : $"b{c.Optimizer.BatchSize}";
        var init = c.InitFrom is null ? "" : "_init-" + InitTag(c.InitFrom);
        return $"{stage}_r{depth}w{Number(c.Model.Width)}-os{c.Model.OutputStride}{(c.Model.Stem == EncoderStem.Small ? "-small" : "")}_{data}-{labelled}_crop{c.Data.Crop}_{batch}_{c.Optimizer.Steps}st_lr{Number(c.Optimizer.LearningRate)}{init}_s{c.Seed}";
    }

    /// <summary>A short readable prefix of the initial weights' name plus a hash of the full path, so names stay unique.</summary>
    private static string InitTag(string initFrom)
    {
        var name = Path.GetFileName(initFrom.TrimEnd('/', '\\'));
        var clean = new string(name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '.' ? ch : '-').ToArray());
        return (clean.Length > 20 ? clean[..20] : clean) + "-" + Hash(initFrom);
    }

    // Separators as '/': a path typed on Windows names the same run.
    private static string Hash(string path) => Digest(path.Replace('\\', '/'), 4);
}
