using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>
/// Atrous Spatial Pyramid Pooling (DeepLabV3): a 1x1 branch, three 3x3 atrous branches and an image-pooling
/// branch, concatenated and projected to <see cref="Channels"/> channels (1x1 conv + BN + ReLU + Dropout).
/// Layout and names follow torchvision's <c>ASPP</c> (<c>convs.0</c>..<c>convs.4</c>, <c>project</c>).
/// </summary>
public sealed class Aspp : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<nn.Module<Tensor, Tensor>> convs;
    private readonly Sequential project;

    /// <summary>Builds the ASPP.</summary>
    /// <param name="inChannels">Channels of the encoder's high-level features.</param>
    /// <param name="outputStride">The encoder's output stride (8 or 16); selects the atrous rates (see <see cref="RatesFor"/>).</param>
    /// <param name="channels">Channels of every branch and of the output.</param>
    /// <param name="dropout">Dropout probability after the projection, in [0, 1).</param>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public Aspp(int inChannels, int outputStride, int channels = 256, double dropout = 0.1) : base(nameof(Aspp))
    {
        TorchRuntime.EnsureInitialized();
        if (inChannels < 1) throw new ArgumentException($"ASPP inChannels = {inChannels} must be at least 1.", nameof(inChannels));
        if (channels < 1) throw new ArgumentException($"ASPP channels = {channels} must be at least 1.", nameof(channels));
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentException($"ASPP dropout = {dropout} must be in [0, 1).", nameof(dropout));
        Rates = RatesFor(outputStride);
        Channels = channels;

        var branches = new List<nn.Module<Tensor, Tensor>>
        {
            nn.Sequential(nn.Conv2d(inChannels, channels, 1, bias: false), new BatchNorm2d(channels), nn.ReLU()),
        };
        foreach (var rate in Rates)
        {
            branches.Add(nn.Sequential(
                nn.Conv2d(inChannels, channels, 3, padding: rate, dilation: rate, bias: false),
                new BatchNorm2d(channels),
                nn.ReLU()));
        }
        branches.Add(new AsppPooling(inChannels, channels));
        convs = nn.ModuleList(branches.ToArray());
        project = nn.Sequential(
            nn.Conv2d(5L * channels, channels, 1, bias: false),
            new BatchNorm2d(channels),
            nn.ReLU(),
            nn.Dropout(dropout));
        RegisterComponents();
        ModelInit.KaimingConvUnitBatchNorm(this);
    }

    /// <summary>The dilation rates of the three atrous branches.</summary>
    public IReadOnlyList<int> Rates { get; }

    /// <summary>Output channels.</summary>
    public int Channels { get; }

    /// <summary>DeepLab's atrous rates: 6/12/18 at output stride 16, doubled (12/24/36) at output stride 8.</summary>
    /// <exception cref="ArgumentException">The output stride is not 8 or 16.</exception>
    public static IReadOnlyList<int> RatesFor(int outputStride) => outputStride switch
    {
        16 => new[] { 6, 12, 18 },
        8 => new[] { 12, 24, 36 },
        _ => throw new ArgumentException($"ASPP output stride {outputStride} is not supported; allowed values are 8 and 16.", nameof(outputStride)),
    };

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var branches = new List<Tensor>(5);
        foreach (var branch in convs) branches.Add(branch.call(x));
        return project.call(cat(branches, dim: 1)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The image-pooling branch of <see cref="Aspp"/>: global average pool, 1x1 conv with bias, ReLU, then
/// bilinear upsampling back to the input's spatial size.
/// </summary>
/// <remarks>
/// Unlike torchvision's ASPPPooling this branch has no BatchNorm: after the global pool each sample
/// contributes one value per channel, so in training mode with batch size 1 BatchNorm sees a single value
/// per channel and fails ("Expected more than 1 value per channel when training"); with tiny batches its
/// statistics would be meaningless anyway. The conv's bias takes BatchNorm's shift role.
/// </remarks>
public sealed class AsppPooling : nn.Module<Tensor, Tensor>
{
    private readonly AdaptiveAvgPool2d pool;
    private readonly Conv2d conv;
    private readonly ReLU relu;

    /// <summary>Builds the branch.</summary>
    public AsppPooling(int inChannels, int channels) : base(nameof(AsppPooling))
    {
        TorchRuntime.EnsureInitialized();
        pool = nn.AdaptiveAvgPool2d(1);
        conv = nn.Conv2d(inChannels, channels, 1, bias: true);
        relu = nn.ReLU();
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = relu.call(conv.call(pool.call(x)));
        var size = new[] { x.shape[2], x.shape[3] };
        return nn.functional.interpolate(y, size, mode: InterpolationMode.Bilinear, align_corners: false).MoveToOuterDisposeScope();
    }
}
