namespace ContrastSeg.Data;

/// <summary>
/// A dataset whose images and masks are resized by one factor as they are loaded (image bilinear, mask
/// nearest neighbour, so labels stay labels): the study's working resolution (<c>Data.Resize</c>), applied
/// to training and evaluation alike, so metrics are measured at that resolution.
/// </summary>
public sealed class ResizedDataset : ISegmentationDataset, IQuickCheckable
{
    private readonly ISegmentationDataset _inner;

    /// <summary>Wraps <paramref name="inner"/>; sizes become round(size x <paramref name="factor"/>), at least 1 pixel.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The factor is not a positive finite number.</exception>
    public ResizedDataset(ISegmentationDataset inner, double factor)
    {
        if (!(factor > 0) || double.IsInfinity(factor))
            throw new ArgumentOutOfRangeException(nameof(factor), factor, "the resize factor must be a positive finite number");
        _inner = inner;
        Factor = factor;
    }

    /// <summary>The resize factor.</summary>
    public double Factor { get; }

    /// <inheritdoc/>
    public DatasetInfo Info => _inner.Info;

    /// <inheritdoc/>
    public IReadOnlyList<string> Ids => _inner.Ids;

    /// <inheritdoc/>
    public SegmentationSample Load(int index)
    {
        var sample = _inner.Load(index);
        var (width, height) = SizeOf(sample.Image.Width, sample.Image.Height);
        return sample with
        {
            Image = Resample.Bilinear(sample.Image, width, height),
            Labels = sample.Labels is { } labels ? Resample.Nearest(labels, width, height) : null,
        };
    }

    /// <summary>The size an image of <paramref name="width"/> x <paramref name="height"/> is loaded at.</summary>
    public (int Width, int Height) SizeOf(int width, int height) => SizeOf(width, height, Factor);

    /// <summary>The size an image of <paramref name="width"/> x <paramref name="height"/> is loaded at with <paramref name="factor"/>.</summary>
    public static (int Width, int Height) SizeOf(int width, int height, double factor) =>
        (Math.Max(1, (int)Math.Round(width * factor)), Math.Max(1, (int)Math.Round(height * factor)));

    QuickCheckResult? IQuickCheckable.CheckQuick(int index, List<DatasetIssue> sink) =>
        _inner is IQuickCheckable inner && inner.CheckQuick(index, sink) is { } r
            ? r with { ImageSize = r.ImageSize is { } s ? SizeOf(s.Width, s.Height) : null, StoredSize = r.StoredSize ?? r.ImageSize }
            : null;
}
