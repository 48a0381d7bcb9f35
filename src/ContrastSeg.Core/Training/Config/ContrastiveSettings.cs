using ContrastSeg.Losses;

namespace ContrastSeg.Training;

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
