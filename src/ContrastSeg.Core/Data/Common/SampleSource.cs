using SkiaSharp;

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
    private readonly int _maxPixels;
    private readonly DeclaredColours? _declaredColours;

    /// <summary>
    /// Creates the source; <paramref name="labelLut"/> (256 entries) maps raw mask values before checking, and an image or
    /// mask of more than <paramref name="maxPixels"/> pixels is refused (<see cref="PixelLimit"/>). A palette mask's colours are
    /// checked against <paramref name="declaredColours"/>, the colours a class table declares (see <see cref="MaskPalettes"/>).
    /// </summary>
    public SampleSource(DatasetInfo info, string[] ids, string[] images, string?[] masks, byte[]? labelLut = null, int maxPixels = PixelLimit.Default,
                        DeclaredColours? declaredColours = null)
    {
        if (maxPixels is < 1 or > PixelLimit.Max) throw new ArgumentOutOfRangeException(nameof(maxPixels), maxPixels, $"A pixel limit is between 1 and {PixelLimit.Max}.");
        if (ids.Length != images.Length || ids.Length != masks.Length) throw new ArgumentException("ids, images and masks differ in length");
        if (labelLut is not null && labelLut.Length != 256) throw new ArgumentException("a label lookup table has 256 entries");
        Info = info;
        _ids = ids;
        _images = images;
        _masks = masks;
        _labelLut = labelLut;
        _maxPixels = maxPixels;
        _declaredColours = declaredColours;
    }

    public DatasetInfo Info { get; }

    public IReadOnlyList<string> Ids => _ids;

    public string ImagePath(int index) => _images[index];

    public string? MaskPath(int index) => _masks[index];

    public SegmentationSample Load(int index)
    {
        if ((uint)index >= (uint)_ids.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"The dataset has {_ids.Length} samples.");
        var (image, orientation) = ImageCodec.Decode(_images[index], _maxPixels);
        var mask = _masks[index];
        if (mask is null) return new SegmentationSample(_ids[index], image, null);
        var labels = ReadLabels(mask);
        CheckSize(image.Width, image.Height, orientation, _images[index], labels, mask);
        return new SegmentationSample(_ids[index], image, labels);
    }

    /// <summary>Decodes a mask, maps it through the lookup table and checks every value is a class or the ignore label, and its palette.</summary>
    public LabelMap ReadLabels(string maskPath)
    {
        var png = ImageCodec.ReadIndexPng(maskPath, _maxPixels);
        var labels = Map(new LabelMap(png.Width, png.Height, png.Indices));
        CheckRange(labels, maskPath, Info);
        CheckPalette(png, maskPath);
        return labels;
    }

    /// <summary>Throws when a palette mask shows a class in another colour than the class table declares for it.</summary>
    private void CheckPalette(PngIndexImage png, string maskPath)
    {
        if (_declaredColours is not null) MaskPalettes.Check(png, _declaredColours, Info, maskPath);
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

    /// <summary>
    /// Throws when a mask and its image as displayed (<paramref name="width"/> x <paramref name="height"/>, after the
    /// EXIF <paramref name="orientation"/>) differ in size, naming both files and sizes, and the orientation when the
    /// mask has the size of the stored, unturned pixels.
    /// </summary>
    private static void CheckSize(int width, int height, SKEncodedOrigin orientation, string imagePath, LabelMap labels, string maskPath)
    {
        if (width == labels.Width && height == labels.Height) return;
        var turned = ExifOrientation.SwapsAxes(orientation) && (labels.Width, labels.Height) == (height, width)
            ? $" as displayed: it carries {ExifOrientation.Describe(orientation)} from its stored {height}x{width} pixels, and the kit loads " +
              "images as viewers show them. This mask fits the stored pixels, but masks are never turned: draw it on the displayed image, " +
              "or save the image with its pixels turned and no orientation tag"
            : "";
        throw Problems.Fail(DatasetProblem.SizeMismatch,
            $"mask is {labels.Width}x{labels.Height} but its image {imagePath} is {width}x{height}{turned}", maskPath);
    }

    /// <summary>
    /// Decodes sample <paramref name="index"/> fully and adds every problem found to <paramref name="sink"/> (never throws a
    /// <see cref="DatasetException"/>); returns what the check learnt (the image's size, the labelled pixels, the orientation).
    /// </summary>
    public QuickCheckResult Check(int index, List<DatasetIssue> sink) => Check(index, sink, quick: false);

    /// <summary>
    /// Checks sample <paramref name="index"/> as a run will read it, fast enough to run before every run:
    /// the image's header and completeness (<see cref="ImageCodec.ProbeImage"/>, no pixel decode), the mask
    /// decoded in full (index PNG, size against the image, label range). Adds every problem found to
    /// <paramref name="sink"/> (never throws a <see cref="DatasetException"/>) and returns the mask's labelled
    /// (non-ignore) pixels, with the image's size (each null when it is unknown, or when there is no mask).
    /// </summary>
    public QuickCheckResult CheckQuick(int index, List<DatasetIssue> sink) => Check(index, sink, quick: true);

    private QuickCheckResult Check(int index, List<DatasetIssue> sink, bool quick)
    {
        var imagePath = _images[index];
        (int Width, int Height)? size = null;
        var orientation = SKEncodedOrigin.TopLeft;
        try
        {
            if (quick)
            {
                var (w, h, o) = ImageCodec.Probe(imagePath, _maxPixels);
                (size, orientation) = ((w, h), o);
            }
            else
            {
                var (image, o) = ImageCodec.Decode(imagePath, _maxPixels);
                (size, orientation) = ((image.Width, image.Height), o);
            }
        }
        catch (DatasetException e) { sink.Add(Problems.ToIssue(e, imagePath)); }

        var mask = _masks[index];
        if (mask is null) return new QuickCheckResult(imagePath, size, null, orientation);
        PngIndexImage? png = null;
        try { png = ImageCodec.ReadIndexPng(mask, _maxPixels); }
        catch (DatasetException e) { sink.Add(Problems.ToIssue(e, mask)); }
        if (png is null) return new QuickCheckResult(imagePath, size, 0, orientation);
        var labels = new LabelMap(png.Width, png.Height, png.Indices);
        if (size is { } s)
        {
            try { CheckSize(s.Width, s.Height, orientation, imagePath, labels, mask); }
            catch (DatasetException e) { sink.Add(Problems.ToIssue(e, mask)); }
        }
        var mapped = Map(labels);
        try { CheckRange(mapped, mask, Info); }
        catch (DatasetException e) { sink.Add(Problems.ToIssue(e, mask)); }
        try { CheckPalette(png, mask); }
        catch (DatasetException e) { sink.Add(Problems.ToIssue(e, mask)); }
        long labelled = 0;
        foreach (var v in mapped.Labels) if (v != Info.IgnoreLabel) labelled++;
        return new QuickCheckResult(imagePath, size, labelled, orientation);
    }
}

/// <summary>What a quick check of one sample learnt besides its problems.</summary>
/// <param name="Image">The image file.</param>
/// <param name="ImageSize">The image's size as loaded (null when it cannot be read).</param>
/// <param name="LabelledPixels">Pixels of its labels that are not the ignore label (0 when the mask cannot be read); null for an unlabelled sample.</param>
/// <param name="Orientation">The EXIF orientation applied to the image as loaded (<see cref="SKEncodedOrigin.TopLeft"/>: none, or unknown).</param>
/// <param name="StoredSize">The image's size (as displayed) before it is loaded at another size (<see cref="ResizedDataset"/>); null when it is loaded at that size.</param>
internal readonly record struct QuickCheckResult(string Image, (int Width, int Height)? ImageSize, long? LabelledPixels,
                                                 SKEncodedOrigin Orientation = SKEncodedOrigin.TopLeft, (int Width, int Height)? StoredSize = null);

/// <summary>A dataset whose samples are files that can be checked, fast, before a run reads them (see <see cref="DatasetValidator.CheckBeforeRun"/>).</summary>
internal interface IQuickCheckable
{
    /// <summary>
    /// Adds the problems of sample <paramref name="index"/> to <paramref name="sink"/> (never throws a
    /// <see cref="DatasetException"/>); null when the sample is not read from files (nothing to check).
    /// </summary>
    QuickCheckResult? CheckQuick(int index, List<DatasetIssue> sink);
}
