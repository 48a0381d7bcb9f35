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

/// <summary>Configuration of a <see cref="ResNetEncoder"/>.</summary>
/// <param name="Depth">Which ResNet.</param>
/// <param name="OutputStride">Input size / high-level feature size: 8 or 16. The last stage(s) trade
/// their stride for dilation (torchvision's <c>replace_stride_with_dilation</c>).</param>
/// <param name="WidthMultiplier">Scales the base widths 64/128/256/512 (rounded, at least 8), for small CPU models.
/// 1.0 keeps torchvision's layout, so its pretrained weights load.</param>
/// <param name="InChannels">Channels of the input images.</param>
public sealed record EncoderOptions(ResNetDepth Depth, int OutputStride = 16, double WidthMultiplier = 1.0, int InChannels = 3)
{
    /// <summary>The output strides the encoder can produce.</summary>
    public static IReadOnlyList<int> SupportedOutputStrides { get; } = new[] { 8, 16 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the offending field and the allowed values.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Depth))
            throw new ArgumentException($"EncoderOptions.Depth = {(int)Depth} is not supported; use one of 18, 34, 50, 101.", nameof(Depth));
        if (!SupportedOutputStrides.Contains(OutputStride))
            throw new ArgumentException($"EncoderOptions.OutputStride = {OutputStride} is not supported; allowed values are 8 and 16.", nameof(OutputStride));
        if (!(WidthMultiplier > 0) || double.IsInfinity(WidthMultiplier))
            throw new ArgumentException($"EncoderOptions.WidthMultiplier = {WidthMultiplier} must be a positive finite number (1.0 = torchvision widths).", nameof(WidthMultiplier));
        if (InChannels < 1)
            throw new ArgumentException($"EncoderOptions.InChannels = {InChannels} must be at least 1.", nameof(InChannels));
    }

    /// <summary>A base width (64, 128, 256 or 512) scaled by <see cref="WidthMultiplier"/>, rounded, at least 8.</summary>
    public int Scale(int baseWidth) => Math.Max(8, (int)Math.Round(baseWidth * WidthMultiplier, MidpointRounding.AwayFromZero));
}
