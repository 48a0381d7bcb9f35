using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>
/// ResNet-50/101 residual block in torchvision's v1.5 layout: 1x1 reduce, 3x3 (carrying the stride
/// and the dilation), 1x1 expand by <see cref="Expansion"/>. Submodule names match torchvision.
/// </summary>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    /// <summary>Output channels = <c>planes * Expansion</c>.</summary>
    public const int Expansion = 4;

    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Conv2d conv3;
    private readonly BatchNorm2d bn3;
    private readonly ReLU relu;
    private readonly Sequential? downsample;

    /// <summary>Creates the block.</summary>
    /// <param name="inplanes">Input channels.</param>
    /// <param name="planes">Inner width; the output has <c>planes * 4</c> channels.</param>
    /// <param name="stride">Stride of the 3x3 convolution (v1.5: not of the first 1x1).</param>
    /// <param name="dilation">Dilation (and padding) of the 3x3 convolution.</param>
    /// <param name="downsample">Projection of the identity path when the shape changes, or null.</param>
    public Bottleneck(long inplanes, long planes, long stride = 1, long dilation = 1, Sequential? downsample = null)
        : base(nameof(Bottleneck))
    {
        conv1 = nn.Conv2d(inplanes, planes, 1, bias: false);
        bn1 = new BatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, 3, stride: stride, padding: dilation, dilation: dilation, bias: false);
        bn2 = new BatchNorm2d(planes);
        conv3 = nn.Conv2d(planes, planes * Expansion, 1, bias: false);
        bn3 = new BatchNorm2d(planes * Expansion);
        relu = nn.ReLU();
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = downsample is null ? x : downsample.call(x);
        var y = relu.call(bn1.call(conv1.call(x)));
        y = relu.call(bn2.call(conv2.call(y)));
        y = bn3.call(conv3.call(y));
        return relu.call(y.add_(identity, Scalars.One)).MoveToOuterDisposeScope(); // held alpha: see Runtime.Scalars
    }
}
