using ContrastSeg.Losses;
using ContrastSeg.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

public class SegmentationCrossEntropyTests
{
    public SegmentationCrossEntropyTests() => TorchFixture.Init();

    [Fact]
    public void Equals_hand_computed_mean_over_non_ignored_pixels()
    {
        using var scope = NewDisposeScope();
        // One image, 2 classes, 1x3 pixels; the third pixel is ignored.
        // logits[0, c, 0, x]: class 0 -> {2, 0, 1}, class 1 -> {0, 0, 3}; scores per pixel (2,0), (0,0), (1,3).
        var logits = tensor(new float[] { 2, 0, 1, 0, 0, 3 }).reshape(1, 2, 1, 3);
        var labels = tensor(new long[] { 0, 1, 255 }).reshape(1, 1, 3);
        var expected = (-(Math.Log(Math.Exp(2) / (Math.Exp(2) + Math.Exp(0)))) - Math.Log(Math.Exp(0) / (Math.Exp(0) + Math.Exp(0)))) / 2;
        var loss = SegmentationCrossEntropy.Compute(logits, labels).item<float>();
        Assert.Equal(expected, loss, 5);
    }

    [Fact]
    public void Logits_are_upsampled_to_the_label_size()
    {
        using var scope = NewDisposeScope();
        var logits = randn(2, 5, 4, 4, requires_grad: true);
        var labels = randint(0, 5, new long[] { 2, 16, 16 });
        var loss = SegmentationCrossEntropy.Compute(logits, labels);
        var up = nn.functional.interpolate(logits, new long[] { 16, 16 }, mode: InterpolationMode.Bilinear, align_corners: false);
        var reference = nn.functional.cross_entropy(up, labels);
        Assert.Equal(reference.item<float>(), loss.item<float>(), 5);
        loss.backward();
        TensorAssert.Finite(logits.grad!, "gradient");
    }

    [Fact]
    public void All_ignored_pixels_give_zero_not_nan()
    {
        using var scope = NewDisposeScope();
        var logits = randn(1, 3, 4, 4, requires_grad: true);
        var loss = SegmentationCrossEntropy.Compute(logits, full(new long[] { 1, 4, 4 }, 255L, ScalarType.Int64));
        loss.backward();
        Assert.Equal(0f, loss.item<float>());
        TensorAssert.Finite(logits.grad!, "gradient");
    }

    [Fact]
    public void A_label_outside_the_class_range_is_named()
    {
        using var scope = NewDisposeScope();
        var labels = zeros(new long[] { 1, 4, 4 }, ScalarType.Int64);
        labels[0, 1, 2] = tensor(37L);
        var ex = Assert.Throws<ArgumentException>(() => SegmentationCrossEntropy.Compute(randn(1, 21, 4, 4), labels));
        Assert.Contains("37", ex.Message);
        Assert.Contains("0..20", ex.Message);
    }
}
