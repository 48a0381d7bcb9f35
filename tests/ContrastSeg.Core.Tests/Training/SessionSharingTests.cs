using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>Which stages share a run session follows from the data settings themselves (<see cref="ShapesBatchesOnlyAttribute"/>).</summary>
public class SessionSharingTests
{
    // The data settings that decide what a session opens. A new DataSettings field must be added here or be marked
    // [ShapesBatchesOnly]: this test fails until it is classified, so a new field cannot silently change which stages share data.
    private static readonly string[] Opening =
        ["Dataset", "Root", "TrainSplit", "ValSplit", "Labelled", "LabelledList", "Resize", "Workers", "Scenes", "DataSeed", "MaxImagePixels"];

    private static readonly string[] BatchShaping = ["Crop", "ScaleMin", "ScaleMax", "ContrastiveDistortion", "DistortionStrength", "PseudoLabels"];

    [Fact]
    public void Every_data_setting_is_classified_as_opening_or_batch_shaping()
    {
        var marked = typeof(DataSettings).GetProperties().Where(p => p.IsDefined(typeof(ShapesBatchesOnlyAttribute), false)).Select(p => p.Name).Order();
        Assert.Equal(BatchShaping.Order(), marked);
        var all = typeof(DataSettings).GetProperties().Select(p => p.Name).Order();
        Assert.Equal(Opening.Concat(BatchShaping).Order(), all);
    }

    [Fact]
    public void Stages_that_differ_in_batch_shaping_settings_only_share_the_opening()
    {
        var d = new DataSettings { Labelled = 10 };
        var shaped = d with { Crop = 32, ScaleMin = 0.75, ScaleMax = 1.25, ContrastiveDistortion = false, DistortionStrength = 1, PseudoLabels = "p" };
        Assert.Equal(RunSession.OpeningOf(d), RunSession.OpeningOf(shaped));
        Assert.NotEqual(RunSession.OpeningOf(d), RunSession.OpeningOf(d with { Labelled = 20 }));
        Assert.NotEqual(RunSession.OpeningOf(d), RunSession.OpeningOf(d with { Resize = 0.5 }));
        Assert.Equal(10, d.Labelled); // OpeningOf leaves its argument as it was
        Assert.Equal("p", shaped.PseudoLabels);
    }
}
