using ContrastSeg.Models;
using ContrastSeg.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Models;

[Collection(ModelsCollection.Name)]
public sealed class OneDnnGuardTests
{
    /// <summary>
    /// oneDNN's brgemm convolution crashes the process (SIGFPE, exit 136) in the backward of ResNet-50's strided
    /// 1x1 downsample convolutions on VMs without CPU cache topology; <see cref="TorchRuntime"/> switches oneDNN off
    /// there. If this test kills the test host, the guard is broken. Real size: width 1.0, batch 2, 224x224.
    /// </summary>
    [Fact]
    public void OneDnn_guard_full_size_ResNet50_forward_backward_does_not_crash()
    {
        var status = TorchRuntime.EnsureInitialized();
        using var encoder = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet50, OutputStride: 16));
        encoder.train();
        using var scope = NewDisposeScope();
        var output = encoder.call(randn(2, 3, 224, 224));
        Assert.Equal(new long[] { 2, 2048, 14, 14 }, output.HighLevel.shape);
        var loss = output.HighLevel.mean() + output.LowLevel.mean();
        loss.backward();

        // The conv that crashed: layer3.0.downsample.0 = Conv2d(512, 1024, 1, stride 2) on [2, 512, 28, 28].
        var downsample = encoder.named_parameters().Single(p => p.name == "layer3.0.downsample.0.weight").parameter;
        Assert.Equal(new long[] { 1024, 512, 1, 1 }, downsample.shape);
        Assert.NotNull(downsample.grad);
        Assert.True(downsample.grad!.isfinite().all().item<bool>(), status.MkldnnReason);
    }
}
