using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>The two feature maps the DeepLabV3+ decoder needs. Disposing it disposes both tensors.</summary>
/// <param name="LowLevel">layer1 output at stride 4: [B, <see cref="ResNetEncoder.LowLevelChannels"/>, ceil(H/4), ceil(W/4)].</param>
/// <param name="HighLevel">layer4 output at the output stride: [B, <see cref="ResNetEncoder.HighLevelChannels"/>, ceil(H/OS), ceil(W/OS)].</param>
public sealed record EncoderOutput(Tensor LowLevel, Tensor HighLevel) : IDisposable
{
    /// <summary>Disposes both feature maps.</summary>
    public void Dispose()
    {
        LowLevel.Dispose();
        HighLevel.Dispose();
    }
}

/// <summary>
/// ResNet-18/34/50/101 backbone without the classification head (no avgpool, no fc), laid out exactly like
/// torchvision's <c>resnet*</c> (v1.5) so a torchvision state dict minus <c>fc.*</c> loads with strict key
/// matching. Output stride 16 dilates layer4, output stride 8 dilates layer3 and layer4.
/// </summary>
public sealed class ResNetEncoder : nn.Module<Tensor, EncoderOutput>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly nn.Module<Tensor, Tensor> maxpool; // Identity after the small stem (no parameters either way)
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;

    /// <summary>Builds the encoder with torchvision's initialisation (kaiming_normal_ fan_out for convolutions, BatchNorm 1/0).</summary>
    /// <exception cref="ArgumentException">An option is out of range (e.g. an output stride other than 8 or 16).</exception>
    public ResNetEncoder(EncoderOptions options) : base(Prepare(options))
    {
        Options = options;
        var (blockCounts, bottleneck) = options.Depth switch
        {
            ResNetDepth.ResNet18 => (new[] { 2, 2, 2, 2 }, false),
            ResNetDepth.ResNet34 => (new[] { 3, 4, 6, 3 }, false),
            ResNetDepth.ResNet50 => (new[] { 3, 4, 6, 3 }, true),
            ResNetDepth.ResNet101 => (new[] { 3, 4, 23, 3 }, true),
            _ => throw new ArgumentException($"Unsupported depth {options.Depth}.", nameof(options)),
        };
        var expansion = bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion;
        // torchvision's replace_stride_with_dilation for layer2, layer3, layer4: the last stages trade their
        // stride for dilation until layer4 sits at the output stride (layer4's natural stride is 8 x the stem's).
        var dilated = (int)Math.Round(Math.Log2(options.StemStride * 8.0 / options.OutputStride));
        var dilate = new[] { dilated >= 3, dilated >= 2, dilated >= 1 };

        var builder = new StageBuilder(options.Scale(64), bottleneck, expansion);
        var small = options.Stem == EncoderStem.Small;
        conv1 = small
            ? nn.Conv2d(options.InChannels, builder.Inplanes, 3, stride: 1, padding: 1, bias: false)
            : nn.Conv2d(options.InChannels, builder.Inplanes, 7, stride: 2, padding: 3, bias: false);
        bn1 = new BatchNorm2d(builder.Inplanes);
        relu = nn.ReLU();
        maxpool = small ? nn.Identity() : nn.MaxPool2d(3, stride: 2, padding: 1);
        // The decoder's low-level features: the stage at stride 4 (layer1 after the ImageNet stem, layer3 after the small one).
        LowLevelStage = small ? 3 : 1;
        layer1 = builder.Stage(options.Scale(64), blockCounts[0], 1, false);
        if (LowLevelStage == 1) LowLevelChannels = builder.Inplanes;
        layer2 = builder.Stage(options.Scale(128), blockCounts[1], 2, dilate[0]);
        layer3 = builder.Stage(options.Scale(256), blockCounts[2], 2, dilate[1]);
        if (LowLevelStage == 3) LowLevelChannels = builder.Inplanes;
        layer4 = builder.Stage(options.Scale(512), blockCounts[3], 2, dilate[2]);
        HighLevelChannels = builder.Inplanes;
        RegisterComponents();
        ModelInit.KaimingConvUnitBatchNorm(this);
    }

    /// <summary>The options the encoder was built with.</summary>
    public EncoderOptions Options { get; }

    /// <summary>The stage (1-4) whose output is <see cref="EncoderOutput.LowLevel"/>: the one at stride 4.</summary>
    public int LowLevelStage { get; }

    /// <summary>Channels of <see cref="EncoderOutput.LowLevel"/>: layer1 after the ImageNet stem, 64 (ResNet-18/34) or 256 (ResNet-50/101) at width 1; layer3 after the small stem.</summary>
    public int LowLevelChannels { get; }

    /// <summary>Channels of <see cref="EncoderOutput.HighLevel"/> (layer4): 512 (ResNet-18/34) or 2048 (ResNet-50/101) at width 1.</summary>
    public int HighLevelChannels { get; }

    /// <summary>Input size / high-level feature size (8 or 16).</summary>
    public int OutputStride => Options.OutputStride;

    /// <summary>Runs the backbone. Both outputs belong to the caller's dispose scope.</summary>
    /// <exception cref="ArgumentException">The images are not [B, InChannels, H, W] of the model's float type with H, W &gt;= the output stride.</exception>
    public override EncoderOutput forward(Tensor images)
    {
        CheckImages(images);
        using var scope = NewDisposeScope();
        var x = maxpool.call(relu.call(bn1.call(conv1.call(images))));
        var s1 = layer1.call(x);
        var s3 = layer3.call(layer2.call(s1));
        var high = layer4.call(s3);
        var low = LowLevelStage == 3 ? s3 : s1;
        var (l, h) = scope.MoveToOuter(low, high);
        return new EncoderOutput(l, h);
    }

    /// <summary>Throws <see cref="ArgumentException"/> with the expected and the actual shape unless the images fit this encoder.</summary>
    internal void CheckImages(Tensor images)
    {
        var dtype = conv1.weight!.dtype;
        var expected = $"[B, {Options.InChannels}, H, W] {ModelInit.DType(dtype)} images with H, W >= {Options.MinInputSize()} (the output stride)";
        if (images is null) throw new ArgumentNullException(nameof(images), $"Expected {expected}, got null.");
        var ok = images.dim() == 4 && images.shape[1] == Options.InChannels && images.dtype == dtype
                 && images.shape[0] >= 1 && images.shape[2] >= Options.MinInputSize() && images.shape[3] >= Options.MinInputSize();
        if (!ok)
            throw new ArgumentException($"Expected {expected}, got {ModelInit.Shape(images)} {ModelInit.DType(images.dtype)}.", nameof(images));
    }

    private static string Prepare(EncoderOptions options)
    {
        TorchRuntime.EnsureInitialized();
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return $"resnet{(int)options.Depth}";
    }

    /// <summary>torchvision's <c>_make_layer</c>: tracks the running input width and dilation across stages.</summary>
    private sealed class StageBuilder(int inplanes, bool bottleneck, int expansion)
    {
        private int _dilation = 1;

        public int Inplanes { get; private set; } = inplanes;

        public Sequential Stage(int planes, int blocks, int stride, bool dilate)
        {
            var previousDilation = _dilation;
            if (dilate)
            {
                _dilation *= stride;
                stride = 1;
            }
            Sequential? downsample = null;
            if (stride != 1 || Inplanes != planes * expansion)
            {
                downsample = nn.Sequential(
                    nn.Conv2d(Inplanes, planes * expansion, 1, stride: stride, bias: false),
                    new BatchNorm2d(planes * expansion));
            }
            var modules = new List<nn.Module<Tensor, Tensor>> { Block(Inplanes, planes, stride, previousDilation, downsample) };
            Inplanes = planes * expansion;
            for (var i = 1; i < blocks; i++) modules.Add(Block(Inplanes, planes, 1, _dilation, null));
            return nn.Sequential(modules);
        }

        private nn.Module<Tensor, Tensor> Block(int inp, int planes, int stride, int dilation, Sequential? downsample) =>
            bottleneck
                ? new Bottleneck(inp, planes, stride, dilation, downsample)
                : new BasicBlock(inp, planes, stride, dilation, downsample);
    }
}
