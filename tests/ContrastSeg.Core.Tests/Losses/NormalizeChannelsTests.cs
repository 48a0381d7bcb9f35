using ContrastSeg.Losses;
using ContrastSeg.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

public class NormalizeChannelsTests
{
    public NormalizeChannelsTests() => TorchFixture.Init();

    [Fact]
    public void Matches_libtorch_normalize_in_value_and_gradient_including_zero_vectors()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(0, CPU);
        gen.manual_seed(5);
        var raw = randn(new long[] { 2, 6, 4, 5 }, generator: gen);
        raw[0, .., 1, 2] = zeros(6); // below eps: y = x / eps, gradient g / eps
        var upstream = randn(new long[] { 2, 6, 4, 5 }, generator: gen);

        (Tensor y, Tensor grad) Run(Func<Tensor, Tensor> normalize)
        {
            var x = raw.clone().requires_grad_(true);
            var y = normalize(x);
            (y * upstream).sum().backward();
            return (y.detach(), x.grad!.clone());
        }

        var reference = Run(x => nn.functional.normalize(x, p: 2, dim: 1, eps: 1e-12));
        var lean = Run(x => ContrastiveKernel.NormalizeChannels(x, eps: 1e-12));
        TensorAssert.Close(reference.y, lean.y, 1e-6, "normalised values");
        TensorAssert.Close(reference.grad, lean.grad, 1e-5, "gradient");
    }
}
