using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>
/// The DeepLabV3+ decoder: reduces the low-level (stride-4) features with a 1x1 conv + BN + ReLU
/// (<c>project_low</c>), upsamples the ASPP output bilinearly to their size, concatenates both and refines
/// with two 3x3 conv + BN + ReLU (<c>fuse</c>). The result is the per-pixel feature map at 1/4 resolution that
/// both the classifier and the contrastive projection head read.
/// </summary>
public sealed class DeepLabV3PlusDecoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Sequential project_low;
    private readonly Sequential fuse;

    /// <summary>Builds the decoder.</summary>
    /// <param name="lowLevelInChannels">Channels of the encoder's low-level features.</param>
    /// <param name="asppChannels">Channels of the ASPP output.</param>
    /// <param name="lowLevelChannels">Channels the low-level features are reduced to (48 in the paper).</param>
    /// <param name="channels">Channels of the two 3x3 convolutions, i.e. of the output features.</param>
    /// <exception cref="ArgumentException">A channel count is below 1.</exception>
    public DeepLabV3PlusDecoder(int lowLevelInChannels, int asppChannels, int lowLevelChannels = 48, int channels = 256)
        : base(nameof(DeepLabV3PlusDecoder))
    {
        TorchRuntime.EnsureInitialized();
        foreach (var (value, name) in new[] { (lowLevelInChannels, nameof(lowLevelInChannels)), (asppChannels, nameof(asppChannels)), (lowLevelChannels, nameof(lowLevelChannels)), (channels, nameof(channels)) })
            if (value < 1) throw new ArgumentException($"Decoder {name} = {value} must be at least 1.", name);
        Channels = channels;
        project_low = nn.Sequential(
            nn.Conv2d(lowLevelInChannels, lowLevelChannels, 1, bias: false),
            new BatchNorm2d(lowLevelChannels),
            nn.ReLU());
        fuse = nn.Sequential(
            nn.Conv2d(asppChannels + lowLevelChannels, channels, 3, padding: 1, bias: false),
            new BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding: 1, bias: false),
            new BatchNorm2d(channels),
            nn.ReLU());
        RegisterComponents();
        ModelInit.KaimingConvUnitBatchNorm(this);
    }

    /// <summary>Channels of the output features.</summary>
    public int Channels { get; }

    /// <summary>Fuses the features; the output has the low-level features' spatial size.</summary>
    /// <param name="lowLevel">Encoder layer1 output [B, lowLevelInChannels, h, w].</param>
    /// <param name="aspp">ASPP output [B, asppChannels, h', w'] (h' &lt;= h).</param>
    public override Tensor forward(Tensor lowLevel, Tensor aspp)
    {
        using var scope = NewDisposeScope();
        var low = project_low.call(lowLevel);
        var size = new[] { lowLevel.shape[2], lowLevel.shape[3] };
        var high = nn.functional.interpolate(aspp, size, mode: InterpolationMode.Bilinear, align_corners: false);
        return fuse.call(cat(new[] { high, low }, dim: 1)).MoveToOuterDisposeScope();
    }
}
