using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Support;

/// <summary>Tensor comparisons with messages that show the worst element.</summary>
public static class TensorAssert
{
    public static void Close(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var e = expected.to_type(ScalarType.Float64);
        var a = actual.to_type(ScalarType.Float64);
        Assert.True(a.isfinite().all().item<bool>(), $"{what}: non-finite values");
        var diff = (e - a).abs().max().item<double>();
        var scale = Math.Max(1.0, e.abs().max().item<double>());
        Assert.True(diff <= tolerance * scale, $"{what}: max |difference| {diff:E3} > {tolerance:E1} (scale {scale:G4})");
    }

    public static void Finite(Tensor t, string what)
    {
        using var scope = NewDisposeScope();
        Assert.True(t.isfinite().all().item<bool>(), $"{what} has NaN or infinite values");
    }
}
