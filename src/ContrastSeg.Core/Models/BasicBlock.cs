using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>
/// ResNet-18/34 residual block: two 3x3 convolutions (torchvision's <c>BasicBlock</c>), extended with
/// dilation so it can serve at output stride 8/16. Submodule names match torchvision.
/// </summary>
public sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    /// <summary>Output channels = <c>planes * Expansion</c>.</summary>
    public const int Expansion = 1;

    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Sequential? downsample;

    /// <summary>Creates the block.</summary>
    /// <param name="inplanes">Input channels.</param>
    /// <param name="planes">Channels of both 3x3 convolutions (and the output).</param>
    /// <param name="stride">Stride of the first 3x3 convolution.</param>
    /// <param name="dilation">Dilation (and padding) of both 3x3 convolutions.</param>
    /// <param name="downsample">Projection of the identity path when the shape changes, or null.</param>
    public BasicBlock(long inplanes, long planes, long stride = 1, long dilation = 1, Sequential? downsample = null)
        : base(nameof(BasicBlock))
    {
        conv1 = nn.Conv2d(inplanes, planes, 3, stride: stride, padding: dilation, dilation: dilation, bias: false);
        bn1 = new BatchNorm2d(planes);
        relu = nn.ReLU();
        conv2 = nn.Conv2d(planes, planes, 3, stride: 1, padding: dilation, dilation: dilation, bias: false);
        bn2 = new BatchNorm2d(planes);
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = downsample is null ? x : downsample.call(x);
        var y = relu.call(bn1.call(conv1.call(x)));
        y = bn2.call(conv2.call(y));
        return relu.call(y.add_(identity, Scalars.One)).MoveToOuterDisposeScope(); // held alpha: see Runtime.Scalars
    }
}
