using ContrastSeg.Models;

namespace ContrastSeg.Training;

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
    /// <summary>Encoder width multiplier (<c>Model.Width</c> before 2026-12-07).</summary>
    public double WidthMultiplier { get; init; } = Defaults.Encoder.WidthMultiplier;
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
    /// <summary>ASPP dropout (<c>Model.Dropout</c> before 2026-12-07).</summary>
    public double AsppDropout { get; init; } = Defaults.AsppDropout;

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
            Depth = o.Encoder.Depth, Stem = o.Encoder.Stem, OutputStride = o.Encoder.OutputStride, WidthMultiplier = o.Encoder.WidthMultiplier,
            AsppChannels = o.AsppChannels, LowLevelChannels = o.LowLevelChannels, DecoderChannels = o.DecoderChannels,
            ProjectionLayers = o.ProjectionOrDefault.Layers, ProjectionChannels = o.ProjectionOrDefault.Channels,
            ProjectionBatchNorm = o.ProjectionOrDefault.BatchNorm, AsppDropout = o.AsppDropout,
        };
    }

    /// <summary>The encoder's options (RGB input): what encoder weights, e.g. classification pretraining's, are made for.</summary>
    public EncoderOptions ToEncoderOptions() => new(Depth, OutputStride, WidthMultiplier, Stem: Stem);

    /// <summary>The model options for <paramref name="numClasses"/> classes.</summary>
    public SegmentationModelOptions ToOptions(int numClasses) => new(
        ToEncoderOptions(), numClasses, AsppChannels, LowLevelChannels, DecoderChannels, AsppDropout,
        new ProjectionHeadOptions(ProjectionLayers, ProjectionChannels, ProjectionBatchNorm));
}
