namespace ContrastSeg.Data;

/// <summary>
/// The resolved files of a dataset (one image and an optional mask per id) and the shared
/// loading and checking logic of the file-based readers. Immutable, so safe across threads.
/// </summary>
internal sealed class SampleSource
{
    private readonly string[] _ids;
    private readonly string[] _images;
    private readonly string?[] _masks;
    private readonly byte[]? _labelLut;

    /// <summary>Creates the source; <paramref name="labelLut"/> (256 entries) maps raw mask values before checking.</summary>
    public SampleSource(DatasetInfo info, string[] ids, string[] images, string?[] masks, byte[]? labelLut = null)
    {
        if (ids.Length != images.Length || ids.Length != masks.Length) throw new ArgumentException("ids, images and masks differ in length");
        if (labelLut is not null && labelLut.Length != 256) throw new ArgumentException("a label lookup table has 256 entries");
        Info = info;
        _ids = ids;
        _images = images;
        _masks = masks;
        _labelLut = labelLut;
    }

    public DatasetInfo Info { get; }

    public IReadOnlyList<string> Ids => _ids;

    public string ImagePath(int index) => _images[index];

    public string? MaskPath(int index) => _masks[index];

    public SegmentationSample Load(int index)
    {
        if ((uint)index >= (uint)_ids.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"The dataset has {_ids.Length} samples.");
        var image = ImageCodec.DecodeImage(_images[index]);
        var mask = _masks[index];
        if (mask is null) return new SegmentationSample(_ids[index], image, null);
        var labels = ReadLabels(mask);
        CheckSize(image, _images[index], labels, mask);
        return new SegmentationSample(_ids[index], image, labels);
    }

    /// <summary>Decodes a mask, maps it through the lookup table and checks every value is a class or the ignore label.</summary>
    public LabelMap ReadLabels(string maskPath)
    {
        var labels = Map(ImageCodec.DecodeIndexPng(maskPath));
        CheckRange(labels, maskPath, Info);
        return labels;
    }

    /// <summary>Applies the lookup table (if any) to raw mask values.</summary>
    private LabelMap Map(LabelMap raw)
    {
        if (_labelLut is null) return raw;
        var mapped = new byte[raw.Labels.Length];
        for (var i = 0; i < mapped.Length; i++) mapped[i] = _labelLut[raw.Labels[i]];
        return new LabelMap(raw.Width, raw.Height, mapped);
    }

    /// <summary>Throws when a label is neither a class index nor the ignore label, naming value, file and first pixel.</summary>
    public static void CheckRange(LabelMap labels, string maskPath, DatasetInfo info)
    {
        var n = info.NumClasses;
        var ignore = info.IgnoreLabel;
        var first = -1;
        var count = 0;
        var bad = new SortedSet<int>();
        var data = labels.Labels;
        for (var i = 0; i < data.Length; i++)
        {
            var v = data[i];
            if (v < n || v == ignore) continue;
            if (first < 0) first = i;
            count++;
            bad.Add(v);
        }
        if (first < 0) return;
        var (x, y) = (first % labels.Width, first / labels.Width);
        var values = string.Join(", ", bad.Take(10)) + (bad.Count > 10 ? ", ..." : "");
        throw Problems.Fail(DatasetProblem.LabelOutOfRange,
            $"label value {data[first]} at pixel (x={x}, y={y}) is outside the class range 0..{n - 1} and is not the ignore label {ignore} " +
            $"({count} such pixel{(count == 1 ? "" : "s")}; values: {values})", maskPath);
    }

    /// <summary>Throws when mask and image differ in size, naming both files and sizes.</summary>
    public static void CheckSize(RgbImage image, string imagePath, LabelMap labels, string maskPath)
    {
        if (image.Width == labels.Width && image.Height == labels.Height) return;
        throw Problems.Fail(DatasetProblem.SizeMismatch,
            $"mask is {labels.Width}x{labels.Height} but its image {imagePath} is {image.Width}x{image.Height}", maskPath);
    }

    /// <summary>Decodes sample <paramref name="index"/> fully and adds every problem found to <paramref name="sink"/> (never throws a <see cref="DatasetException"/>).</summary>
    public void Check(int index, List<DatasetIssue> sink)
    {
        RgbImage? image = null;
        try { image = ImageCodec.DecodeImage(_images[index]); }
        catch (DatasetException e) { sink.Add(Problems.ToIssue(e, _images[index])); }

        var mask = _masks[index];
        if (mask is null) return;
        LabelMap? labels = null;
        try { labels = ImageCodec.DecodeIndexPng(mask); }
        catch (DatasetException e) { sink.Add(Problems.ToIssue(e, mask)); }
        if (labels is null) return;
        if (image is not null)
        {
            try { CheckSize(image, _images[index], labels, mask); }
            catch (DatasetException e) { sink.Add(Problems.ToIssue(e, mask)); }
        }
        try { CheckRange(Map(labels), mask, Info); }
        catch (DatasetException e) { sink.Add(Problems.ToIssue(e, mask)); }
    }
}
