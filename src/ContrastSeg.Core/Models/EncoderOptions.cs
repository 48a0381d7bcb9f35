namespace ContrastSeg.Models;

/// <summary>The ResNet variants the encoder supports; the value is the depth.</summary>
public enum ResNetDepth
{
    /// <summary>ResNet-18: BasicBlock, layers [2, 2, 2, 2].</summary>
    ResNet18 = 18,

    /// <summary>ResNet-34: BasicBlock, layers [3, 4, 6, 3].</summary>
    ResNet34 = 34,

    /// <summary>ResNet-50: Bottleneck (expansion 4), layers [3, 4, 6, 3].</summary>
    ResNet50 = 50,

    /// <summary>ResNet-101: Bottleneck (expansion 4), layers [3, 4, 23, 3].</summary>
    ResNet101 = 101,
}

/// <summary>
/// How the encoder turns the image into the input of layer1. Feature-map strides per stem and output stride
/// (the decoder always reads the stage at stride 4 as its low-level features):
/// <code>
/// stem      OS | conv1          maxpool | layer1 layer2 layer3    layer4    | low-level
/// ImageNet  16 | 7x7 s2         3x3 s2  | 4      8      16        16 (d2)   | layer1
/// ImageNet   8 | 7x7 s2         3x3 s2  | 4      8      8 (d2)    8 (d4)    | layer1
/// Small      8 | 3x3 s1         none    | 1      2      4         8         | layer3
/// </code>
/// </summary>
public enum EncoderStem
{
    /// <summary>torchvision's stem (7x7 stride-2 convolution + 3x3 stride-2 max-pool): ImageNet weights load 1:1. Layer1 runs at stride 4.</summary>
    ImageNet,

    /// <summary>
    /// A CIFAR-ResNet stem (3x3 stride-1 convolution, no max-pool) for small images: layer1 and layer2 run at
    /// full and half resolution, so detail that a 64x64 scene holds in a few pixels reaches the residual blocks.
    /// Same parameter names as torchvision (conv1 has a 3x3 kernel, so ImageNet conv1 weights do not fit).
    /// Output stride 8 only (layer4 is at stride 8 without dilation).
    /// </summary>
    Small,
}

/// <summary>Configuration of a <see cref="ResNetEncoder"/>.</summary>
/// <param name="Depth">Which ResNet.</param>
/// <param name="OutputStride">Input size / high-level feature size: 8 or 16. The last stage(s) trade
/// their stride for dilation (torchvision's <c>replace_stride_with_dilation</c>).</param>
/// <param name="WidthMultiplier">Scales the base widths 64/128/256/512 (rounded, at least 8), for small CPU models.
/// 1.0 keeps torchvision's layout, so its pretrained weights load.</param>
/// <param name="InChannels">Channels of the input images.</param>
/// <param name="Stem">The stem (see <see cref="EncoderStem"/>): torchvision's ImageNet stem by default.</param>
public sealed record EncoderOptions(ResNetDepth Depth, int OutputStride = 16, double WidthMultiplier = 1.0, int InChannels = 3, EncoderStem Stem = EncoderStem.ImageNet)
{
    /// <summary>The output strides the encoder can produce with the ImageNet stem.</summary>
    public static IReadOnlyList<int> SupportedOutputStrides { get; } = new[] { 8, 16 };

    /// <summary>The output strides the encoder can produce with <paramref name="stem"/>.</summary>
    public static IReadOnlyList<int> SupportedOutputStridesFor(EncoderStem stem) => stem == EncoderStem.Small ? new[] { 8 } : SupportedOutputStrides;

    /// <summary>
    /// The smallest height and width the encoder reads: its output stride, so that the last stage keeps at least one
    /// pixel. The decoder adds no limit (it reads a stage of stride 4 or less); TTA scales are clamped to it.
    /// </summary>
    /// <remarks>A method, not a property: the options are serialised into weight-file names and run identities.</remarks>
    public int MinInputSize() => OutputStride;

    /// <summary>Stride of layer1's output: 4 after the ImageNet stem, 1 after the small stem.</summary>
    public int StemStride => Stem == EncoderStem.Small ? 1 : 4;

    /// <summary>Throws <see cref="ArgumentException"/> naming the offending field and the allowed values.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Depth))
            throw new ArgumentException($"EncoderOptions.Depth = {(int)Depth} is not supported; use one of 18, 34, 50, 101.", nameof(Depth));
        if (!Enum.IsDefined(Stem))
            throw new ArgumentException($"EncoderOptions.Stem = {(int)Stem} is not supported; use ImageNet or Small.", nameof(Stem));
        var strides = SupportedOutputStridesFor(Stem);
        if (!strides.Contains(OutputStride))
            throw new ArgumentException($"EncoderOptions.OutputStride = {OutputStride} is not supported with the {Stem} stem; allowed values are {string.Join(" and ", strides)}.", nameof(OutputStride));
        if (!(WidthMultiplier > 0) || double.IsInfinity(WidthMultiplier))
            throw new ArgumentException($"EncoderOptions.WidthMultiplier = {WidthMultiplier} must be a positive finite number (1.0 = torchvision widths).", nameof(WidthMultiplier));
        if (InChannels < 1)
            throw new ArgumentException($"EncoderOptions.InChannels = {InChannels} must be at least 1.", nameof(InChannels));
    }

    /// <summary>A base width (64, 128, 256 or 512) scaled by <see cref="WidthMultiplier"/>, rounded, at least 8.</summary>
    public int Scale(int baseWidth) => Math.Max(8, (int)Math.Round(baseWidth * WidthMultiplier, MidpointRounding.AwayFromZero));
}
