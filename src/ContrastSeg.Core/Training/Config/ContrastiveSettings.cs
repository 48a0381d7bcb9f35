using System.Text.Json.Serialization;
using ContrastSeg.Losses;

namespace ContrastSeg.Training;

/// <summary>Contrastive-stage loss settings.</summary>
/// <remarks>
/// The settings after <see cref="Pairing"/> are the peers' options (docs/loss.md), each off at its default. They are written
/// (to config.json, plan.json and the settings hash of run names) only when set, so every config without them keeps its
/// text and its run name.
/// </remarks>
public sealed record ContrastiveSettings
{
    /// <summary>The contrastive term's weight the Joint stage's presets and study cells use (ContrastiveSeg's loss_weight).</summary>
    public const double PeerJointWeight = 0.1;

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

    /// <summary>Joint stage: weight of the contrastive term added to cross-entropy (ContrastiveSeg: 0.1); required there, unused elsewhere.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double JointWeight { get; init; }

    /// <summary>Anchors per image and class present (ContrastiveSeg's per-class budget); the Regional form: queries per class (ReCo: 256). 0: every pixel (the paper).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int AnchorsPerClass { get; init; }

    /// <summary>Cap on the anchors of a group (ContrastiveSeg's max_samples); the per-class budget shrinks to fit. 0: none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int MaxAnchors { get; init; }

    /// <summary>Share of each class's anchors from pixels the classifier gets wrong (ContrastiveSeg: 0.5); Joint stage only. 0: uniform.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double HardAnchorFraction { get; init; }

    /// <summary>The loss: Paper, or Regional (ReCo's class-mean positives and similarity-weighted negatives).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public ContrastiveForm Form { get; init; }

    /// <summary>Regional form: negative keys per query (ReCo: 256).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int RegionalNegatives { get; init; }

    /// <summary>Regional form: queries only from pixels whose predicted probability of their label is below this (ReCo: 0.97); Joint stage only. 0: off.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double HardQueryThreshold { get; init; }

    /// <summary>Memory of pixel embeddings: entries per class, used as extra keys (ContrastiveSeg: 5000 at full scale). 0: none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int MemoryPixels { get; init; }

    /// <summary>Pixels of each class of each image written to the pixel memory per step (ContrastiveSeg: 10).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int MemoryPixelsPerImage { get; init; }

    /// <summary>Memory of region embeddings (an image's class mean): entries per class, used as extra keys. 0: none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int MemoryRegions { get; init; }

    /// <summary>Whether a peer option (anything beyond the paper's loss) is set.</summary>
    [JsonIgnore]
    public bool UsesPeerOptions => AnchorsPerClass > 0 || MaxAnchors > 0 || HardAnchorFraction > 0 || Form != ContrastiveForm.Paper || RegionalNegatives > 0
                                   || HardQueryThreshold > 0 || MemoryPixels > 0 || MemoryPixelsPerImage > 0 || MemoryRegions > 0;

    /// <summary>
    /// The loss these settings make, on embeddings the projection head has normalised at the loss's resolution (the features
    /// are resized before the head): the one mapping from settings to <see cref="PixelContrastiveOptions"/>.
    /// </summary>
    public PixelContrastiveOptions ToLossOptions(int seed, long ignoreLabel, int classes) => new()
    {
        Variant = Variant,
        Temperature = Temperature,
        IgnoreLabels = new[] { ignoreLabel },
        ResizeTo = null,
        NormalizeEmbeddings = false,
        BatchSampleSize = BatchSampleSize,
        Pairing = Pairing,
        Seed = seed,
        AnchorsPerClass = AnchorsPerClass,
        MaxAnchors = MaxAnchors,
        HardAnchorFraction = HardAnchorFraction,
        Form = Form,
        RegionalNegatives = RegionalNegatives,
        HardQueryThreshold = HardQueryThreshold,
        MemoryPixels = MemoryPixels,
        MemoryPixelsPerImage = MemoryPixelsPerImage,
        MemoryRegions = MemoryRegions,
        Classes = classes,
    };
}
