namespace ContrastSeg.Models;

/// <summary>Configuration of a <see cref="DeepLabV3Plus"/> model.</summary>
/// <param name="Encoder">Backbone depth, output stride, width and input channels.</param>
/// <param name="NumClasses">Number of segmentation classes (classifier outputs).</param>
/// <param name="AsppChannels">Channels of every ASPP branch and of its output.</param>
/// <param name="LowLevelChannels">Channels the decoder reduces the low-level features to.</param>
/// <param name="DecoderChannels">Channels of the decoder features (input of classifier and projection head).</param>
/// <param name="AsppDropout">Dropout after the ASPP projection, in [0, 1).</param>
/// <param name="Projection">The contrastive projection head; null = <see cref="ProjectionHeadOptions"/> defaults (3 x 256, no BatchNorm).</param>
public sealed record SegmentationModelOptions(
    EncoderOptions Encoder,
    int NumClasses,
    int AsppChannels = 256,
    int LowLevelChannels = 48,
    int DecoderChannels = 256,
    double AsppDropout = 0.1,
    ProjectionHeadOptions? Projection = null)
{
    /// <summary>The projection head options in force (<see cref="Projection"/> or the defaults).</summary>
    public ProjectionHeadOptions ProjectionOrDefault => Projection ?? new ProjectionHeadOptions();

    /// <summary>
    /// The paper's model: DeepLabV3+ on ResNet-50 at output stride 16, full widths, ASPP 256, low-level 48,
    /// decoder 256, projection head 3 x 256 without BatchNorm.
    /// </summary>
    public static SegmentationModelOptions Paper(int numClasses) => new(
        new EncoderOptions(ResNetDepth.ResNet50, OutputStride: 16, WidthMultiplier: 1.0),
        numClasses,
        AsppChannels: 256,
        LowLevelChannels: 48,
        DecoderChannels: 256,
        Projection: new ProjectionHeadOptions(Layers: 3, Channels: 256, BatchNorm: false));

    /// <summary>
    /// A CPU-sized model for 64x64 inputs (the <c>cpu</c> training preset's): ResNet-18 at width 0.25
    /// (16/32/64/128 channels) with the small stem, ASPP 64 channels, decoder 32, low-level 16, projection head 3 x 64.
    /// </summary>
    /// <remarks>
    /// The small stem keeps layer1 at full and layer2 at half resolution, and layer4 at 8x8 for a 64x64 input
    /// (output stride 8, no dilation); the decoder reads layer3 at stride 4.
    /// </remarks>
    public static SegmentationModelOptions CpuSmall(int numClasses) => new(
        new EncoderOptions(ResNetDepth.ResNet18, OutputStride: 8, WidthMultiplier: 0.25, Stem: EncoderStem.Small),
        numClasses,
        AsppChannels: 64,
        LowLevelChannels: 16,
        DecoderChannels: 32,
        Projection: new ProjectionHeadOptions(Layers: 3, Channels: 64, BatchNorm: false));

    /// <summary>Throws <see cref="ArgumentException"/> naming the offending field.</summary>
    public void Validate()
    {
        if (Encoder is null) throw new ArgumentException("SegmentationModelOptions.Encoder must be set.", nameof(Encoder));
        Encoder.Validate();
        if (NumClasses < 1) throw new ArgumentException($"SegmentationModelOptions.NumClasses = {NumClasses} must be at least 1.", nameof(NumClasses));
        if (AsppChannels < 1) throw new ArgumentException($"SegmentationModelOptions.AsppChannels = {AsppChannels} must be at least 1.", nameof(AsppChannels));
        if (LowLevelChannels < 1) throw new ArgumentException($"SegmentationModelOptions.LowLevelChannels = {LowLevelChannels} must be at least 1.", nameof(LowLevelChannels));
        if (DecoderChannels < 1) throw new ArgumentException($"SegmentationModelOptions.DecoderChannels = {DecoderChannels} must be at least 1.", nameof(DecoderChannels));
        if (!(AsppDropout >= 0 && AsppDropout < 1)) throw new ArgumentException($"SegmentationModelOptions.AsppDropout = {AsppDropout} must be in [0, 1).", nameof(AsppDropout));
        ProjectionOrDefault.Validate();
    }
}
