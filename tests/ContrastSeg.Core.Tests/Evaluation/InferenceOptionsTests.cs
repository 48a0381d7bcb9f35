using ContrastSeg.Evaluation;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Evaluation;

public class InferenceOptionsTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(100.0)]
    public void Test_time_scales_outside_0_to_4_are_refused_when_the_options_are_made(double scale)
    {
        // 46f90c8 accepted --scales 0 and threw an ArgumentException at the first image (a stack trace from evaluate).
        var ex = Assert.Throws<ConfigException>(() => new InferenceOptions(Scales: new[] { 1.0, scale }));
        Assert.Equal("Scales", ex.Field);
        Assert.Contains($"scale {scale.ToString(System.Globalization.CultureInfo.InvariantCulture)} is invalid", ex.Message);
    }

    [Fact]
    public void Valid_scales_are_kept()
    {
        Assert.Equal(new[] { 0.5, 1.0, 4.0 }, new InferenceOptions(true, new[] { 0.5, 1.0, 4.0 }).ScalesOrDefault);
        Assert.Equal(new[] { 1.0 }, new InferenceOptions().ScalesOrDefault);
    }
}
