using ContrastSeg.Evaluation;
using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Evaluation;

public class ConfusionMatrixTests
{
    public ConfusionMatrixTests() => TorchFixture.Init();

    [Fact]
    public void Counts_and_metrics_equal_a_hand_computed_example()
    {
        using var scope = NewDisposeScope();
        // truth:      0 0 1 1 | 2 255      prediction: 0 1 1 1 | 0 2
        var truth = tensor(new long[] { 0, 0, 1, 1, 2, 255 }).reshape(1, 2, 3);
        var pred = tensor(new long[] { 0, 1, 1, 1, 0, 2 }).reshape(1, 2, 3);
        var cm = new ConfusionMatrix(4);
        cm.Add(pred, truth);
        Assert.Equal(1, cm[0, 0]);
        Assert.Equal(1, cm[0, 1]);
        Assert.Equal(2, cm[1, 1]);
        Assert.Equal(1, cm[2, 0]);
        Assert.Equal(0, cm[2, 2]); // the ignored pixel predicted 2 is not counted
        var m = cm.Metrics();
        // IoU0 = 1/(2+2-1) = 1/3, IoU1 = 2/(2+3-2) = 2/3, IoU2 = 0/(1+0-0) = 0, class 3 absent -> NaN, excluded.
        Assert.Equal(1.0 / 3, m.ClassIoU[0], 10);
        Assert.Equal(2.0 / 3, m.ClassIoU[1], 10);
        Assert.Equal(0.0, m.ClassIoU[2], 10);
        Assert.True(double.IsNaN(m.ClassIoU[3]));
        Assert.Equal((1.0 / 3 + 2.0 / 3 + 0) / 3, m.MeanIoU, 10);
        Assert.Equal(3.0 / 5, m.PixelAccuracy, 10);
        Assert.Equal(5, m.Pixels);
    }

    [Fact]
    public void Accumulates_over_batches_and_round_trips_through_arrays()
    {
        using var scope = NewDisposeScope();
        var a = new ConfusionMatrix(3);
        var whole = new ConfusionMatrix(3);
        var truth = randint(0, 3, new long[] { 4, 5, 5 });
        var pred = randint(0, 3, new long[] { 4, 5, 5 });
        a.Add(pred[..2], truth[..2]);
        a.Add(pred[2..], truth[2..]);
        whole.Add(pred, truth);
        Assert.Equal(whole.ToArray(), a.ToArray());
        Assert.Equal(whole.ToArray(), ConfusionMatrix.FromArray(whole.ToArray()).ToArray());
        Assert.Equal(100, a.ToArray().Sum(r => r.Sum()));
    }

    [Fact]
    public void Out_of_range_labels_are_named()
    {
        using var scope = NewDisposeScope();
        var cm = new ConfusionMatrix(21);
        var ex = Assert.Throws<ArgumentException>(() => cm.Add(zeros(new long[] { 1, 2, 2 }, ScalarType.Int64), full(new long[] { 1, 2, 2 }, 37L, ScalarType.Int64)));
        Assert.Contains("37", ex.Message);
    }

    [Fact]
    public void Flip_and_multiscale_inference_give_probabilities_at_input_size()
    {
        using var scope = NewDisposeScope();
        using var model = new DeepLabV3Plus(SegmentationModelOptions.CpuSmall(5));
        var images = randn(2, 3, 40, 36);
        var p = Inference.Probabilities(model, images, new InferenceOptions(Flip: true, Scales: new[] { 0.75, 1.0, 1.25 }));
        Assert.Equal(new long[] { 2, 5, 40, 36 }, p.shape);
        TensorAssert.Close(ones(2, 40, 36), p.sum(1), 1e-5, "probabilities sum to 1");
        var plain = Inference.Probabilities(model, images);
        var flipped = Inference.Probabilities(model, images.flip(3)).flip(3);
        var flipOnly = Inference.Probabilities(model, images, new InferenceOptions(Flip: true));
        TensorAssert.Close((plain + flipped) / 2, flipOnly, 1e-5, "flip TTA = mean of the two views");
        Assert.Equal(new long[] { 2, 40, 36 }, Inference.Predict(model, images).shape);
    }
}
