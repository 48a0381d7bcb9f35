using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

public class PseudoLabelTests
{
    public PseudoLabelTests() => TorchFixture.Init();

    [Fact]
    public void Background_needs_0_97_and_objects_0_8()
    {
        using var scope = NewDisposeScope();
        // 4 pixels, 3 classes (0 = background): confident bg, unsure bg, confident object, unsure object.
        var p = tensor(new float[]
        {
            0.98f, 0.95f, 0.05f, 0.10f,  // class 0
            0.01f, 0.04f, 0.85f, 0.75f,  // class 1
            0.01f, 0.01f, 0.10f, 0.15f,  // class 2
        }).reshape(1, 3, 1, 4);
        var labels = PseudoLabels.Select(p, new PseudoLabelOptions());
        Assert.Equal(new long[] { 0, 255, 1, 255 }, labels.flatten().data<long>().ToArray());
        Assert.Equal(0.5, PseudoLabels.Coverage(labels), 10);
    }

    [Fact]
    public void Per_class_thresholds_override_and_invalid_ones_are_named()
    {
        using var scope = NewDisposeScope();
        // class 0 = {0.1, 0.7}, class 1 = {0.9, 0.3}: pixel 0 is class 1 (0.9), pixel 1 class 0 (0.7).
        var p = tensor(new float[] { 0.1f, 0.7f, 0.9f, 0.3f }).reshape(1, 2, 1, 2);
        var none = new PseudoLabelOptions(BackgroundThreshold: null, PerClass: new Dictionary<int, double> { [0] = 0.6 });
        Assert.Equal(new long[] { 1, 0 }, PseudoLabels.Select(p, none with { ObjectThreshold = 0.6 }).flatten().data<long>().ToArray());
        var ex = Assert.Throws<ArgumentException>(() => new PseudoLabelOptions(PerClass: new Dictionary<int, double> { [5] = 0.5 }).Thresholds(3));
        Assert.Contains("class 5", ex.Message);
    }

    [Theory]
    [InlineData(1.5, null, "ObjectThreshold")]
    [InlineData(-0.1, null, "ObjectThreshold")]
    [InlineData(double.NaN, null, "ObjectThreshold")]
    [InlineData(0.8, 1.0, "BackgroundThreshold")]
    public void Thresholds_outside_0_to_1_are_refused_when_the_options_are_made(double objects, double? background, string field)
    {
        // 46f90c8 accepted them and failed with an ArgumentException at the first batch (a stack trace from pseudolabel).
        var ex = Assert.Throws<ConfigException>(() => new PseudoLabelOptions(objects, background ?? 0.97));
        Assert.Equal(field, ex.Field);
        Assert.Contains("[0, 1)", ex.Message);
        var o = new PseudoLabelOptions(0.5, BackgroundThreshold: null);
        Assert.Equal(0.5, o.ObjectThreshold);
        Assert.Null(o.BackgroundThreshold);
    }
}
