using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

/// <summary>
/// The released code's test fixture (google-research supervised_pixel_contrastive_loss): a batch of
/// two identical 4x4 label maps holding, sorted, four ignore pixels (-2, -2, -1, -1) and three classes
/// (1, 2, 3) of four pixels each; features are the labels themselves (1 channel), tau = 1.
/// </summary>
internal static class ReleasedCodeFixture
{
    public static readonly long[] IgnoreLabels = { -2, -1 };

    public const double WithinImageLoss = 2.4503216;
    public const double CrossImageLoss = 5.46027374;

    public static Tensor Labels()
    {
        var one = new long[] { -2, -2, -1, -1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 };
        return tensor(one.Concat(one).ToArray()).reshape(2, 4, 4);
    }

    /// <summary>[2, 1, 4, 4] float features equal to <paramref name="factor"/> x labels.</summary>
    public static Tensor Features(double factor = 1.0) => (Labels().to_type(ScalarType.Float32) * factor).unsqueeze(1);
}
