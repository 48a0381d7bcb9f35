namespace ContrastSeg.Data;

/// <summary>
/// A dataset read from files, one image and an optional mask per id (VOC, Cityscapes, a folder): what every such reader
/// answers the same way, from its resolved <see cref="SampleSource"/>. Readers differ only in how they find the files.
/// </summary>
public abstract class FileDataset : ISegmentationDataset, IQuickCheckable
{
    private protected FileDataset() { }

    /// <summary>The resolved files; set once by the reader's constructor.</summary>
    private protected SampleSource Source { get; init; } = null!;

    /// <inheritdoc />
    public DatasetInfo Info => Source.Info;

    /// <inheritdoc />
    public IReadOnlyList<string> Ids => Source.Ids;

    /// <inheritdoc />
    public SegmentationSample Load(int index) => Source.Load(index);

    QuickCheckResult? IQuickCheckable.CheckQuick(int index, List<DatasetIssue> sink) => Source.CheckQuick(index, sink);

    /// <summary>The image file of sample <paramref name="index"/>.</summary>
    public string ImagePath(int index) => Source.ImagePath(index);

    /// <summary>The mask file of sample <paramref name="index"/>, or null for a sample without a mask (unlabelled, or loaded without labels).</summary>
    public string? MaskPath(int index) => Source.MaskPath(index);
}
