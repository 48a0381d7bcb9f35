using ContrastSeg.Data;

namespace ContrastSeg.Training;

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
    [ShapesBatchesOnly]
    public int Crop { get; init; } = 64;
    /// <summary>Random scale range.</summary>
    [ShapesBatchesOnly]
    public double ScaleMin { get; init; } = 0.5;
    /// <summary>Random scale range.</summary>
    [ShapesBatchesOnly]
    public double ScaleMax { get; init; } = 2.0;
    /// <summary>SimCLR-style colour distortion in the contrastive stage.</summary>
    [ShapesBatchesOnly]
    public bool ContrastiveDistortion { get; init; } = true;
    /// <summary>Strength of the SimCLR colour distortion.</summary>
    [ShapesBatchesOnly]
    public double DistortionStrength { get; init; } = 0.5;
    /// <summary>Loader worker threads (0: one per 4 cores, at least 1; see <see cref="Runtime.ThreadPolicy"/>).</summary>
    public int Workers { get; init; } = 0;
    /// <summary>The embedded scenes' own settings (used when <see cref="Dataset"/> is <c>fashion-mnist-scenes</c>).</summary>
    public SceneSettings Scenes { get; init; } = new();
    /// <summary>Seed of the data (scenes, labelled subset), separate from the training seed.</summary>
    public int DataSeed { get; init; } = 0;
    /// <summary>Folder of pseudo-label index PNGs (<c>&lt;id&gt;.png</c>) for unlabelled training images; they join the labelled subset.</summary>
    [ShapesBatchesOnly]
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
/// <c>Data.TrainScenes</c> and <c>Data.ValScenes</c>: configs and <c>--set</c> keys of that spelling still read (<see cref="ConfigMigration"/>).
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
/// Marks a data setting that only shapes training batches (crop, augmentation, pseudo-labels added per stage): stages that
/// differ in it read the same images and share a run session (<see cref="RunSession.OpeningOf"/>). Every other data
/// setting decides what is opened.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ShapesBatchesOnlyAttribute : Attribute;
