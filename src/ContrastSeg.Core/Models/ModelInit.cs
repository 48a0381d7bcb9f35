using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>Weight initialisation and message helpers shared by the model parts.</summary>
internal static class ModelInit
{
    /// <summary>
    /// torchvision's ResNet init, also used for the ASPP and decoder: kaiming_normal_(fan_out, relu) for
    /// every convolution (zero bias), weight 1 and bias 0 for every BatchNorm.
    /// </summary>
    public static void KaimingConvUnitBatchNorm(nn.Module root)
    {
        // In place on the existing Parameter objects (created outside this scope), so the scope only
        // frees the wrappers the init functions return.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (_, module) in root.named_modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    if (conv.bias is { } b) nn.init.zeros_(b);
                    break;
                case BatchNorm2d bn:
                    if (bn.weight is { } w) nn.init.ones_(w);
                    if (bn.bias is { } bias) nn.init.zeros_(bias);
                    break;
            }
        }
    }

    /// <summary>
    /// PyTorch's default Conv2d init, applied in place: kaiming_uniform_(a = sqrt 5) for the weight,
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias. In place, so optimisers holding the parameters stay valid.
    /// </summary>
    public static void PyTorchDefaultConv(Conv2d conv)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weight = conv.weight!;
        nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
        if (conv.bias is { } bias)
        {
            long fanIn = weight.shape[1];
            for (var d = 2; d < weight.dim(); d++) fanIn *= weight.shape[d];
            var bound = fanIn > 0 ? 1.0 / Math.Sqrt(fanIn) : 0.0;
            nn.init.uniform_(bias, -bound, bound);
        }
    }

    /// <summary>A shape as PyTorch prints it in messages: <c>[2, 3, 64, 64]</c>.</summary>
    public static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    /// <summary>A dtype in PyTorch's spelling: <c>float32</c>, <c>int64</c>.</summary>
    public static string DType(ScalarType type) => type.ToString().ToLowerInvariant();
}
