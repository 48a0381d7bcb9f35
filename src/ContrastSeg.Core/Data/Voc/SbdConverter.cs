namespace ContrastSeg.Data;

/// <summary>What <see cref="SbdConverter.Convert"/> did.</summary>
/// <param name="Written">PNG masks written.</param>
/// <param name="Skipped">Ids whose PNG already existed (not overwritten).</param>
/// <param name="OutputFolder">The <c>SegmentationClassAug</c> folder.</param>
public sealed record SbdConversionResult(int Written, int Skipped, string OutputFolder);

/// <summary>
/// Turns the Semantic Boundaries Dataset (SBD, Hariharan et al. 2011) into VOC's
/// "SegmentationClassAug" layout: each <c>cls/&lt;id&gt;.mat</c> (MATLAB v5, struct <c>GTcls</c>,
/// field <c>Segmentation</c>: an H x W class-index matrix, column-major) becomes an 8-bit
/// grayscale PNG, and the 10,582-id train_aug list = (SBD train ∪ SBD val ∪ VOC train) − VOC val.
/// </summary>
public static class SbdConverter
{
    /// <summary>Ids in train_aug when built from the four official lists.</summary>
    public const int OfficialTrainAugCount = 10582;

    /// <summary>Ids in SBD's train.txt.</summary>
    public const int OfficialSbdTrainCount = 8498;

    /// <summary>Ids in SBD's val.txt.</summary>
    public const int OfficialSbdValCount = 2857;

    /// <summary>Ids in VOC 2012's ImageSets/Segmentation/train.txt.</summary>
    public const int OfficialVocTrainCount = 1464;

    /// <summary>Ids in VOC 2012's ImageSets/Segmentation/val.txt.</summary>
    public const int OfficialVocValCount = 1449;

    /// <summary>Reads <c>GTcls.Segmentation</c> of an SBD <c>cls/&lt;id&gt;.mat</c> file as a row-major label map.</summary>
    /// <exception cref="DatasetException">Not a v5 MAT file, no GTcls.Segmentation, non-integer or out-of-range values.</exception>
    public static LabelMap ReadSegmentation(string matPath) => ReadSegmentation(ImageCodec.ReadFile(matPath), matPath);

    /// <summary>Reads <c>GTcls.Segmentation</c> from MAT-file bytes; <paramref name="name"/> is used in errors.</summary>
    public static LabelMap ReadSegmentation(byte[] data, string name)
    {
        var vars = MatFile.Read(data, name);
        var gt = vars.OfType<MatStruct>().FirstOrDefault(v => v.Name == "GTcls")
                 ?? throw Problems.Fail(DatasetProblem.CorruptFile,
                     $"no struct variable 'GTcls' (variables: {string.Join(", ", vars.Select(v => $"{v.Name} ({v.GetType().Name[3..]})"))})", name);
        if (gt.Get("Segmentation") is not MatNumeric seg)
            throw Problems.Fail(DatasetProblem.CorruptFile, $"GTcls has no numeric field 'Segmentation' (fields: {string.Join(", ", gt.Fields)})", name);
        if (seg.Dims.Length != 2 || seg.Dims[0] < 1 || seg.Dims[1] < 1)
            throw Problems.Fail(DatasetProblem.CorruptFile, $"GTcls.Segmentation must be a non-empty 2-D matrix, got {string.Join("x", seg.Dims)}", name);

        int height = seg.Dims[0], width = seg.Dims[1];
        var labels = new byte[width * height];
        for (var col = 0; col < width; col++)
        for (var row = 0; row < height; row++)
        {
            var v = seg.Real[row + col * height]; // column-major
            if (v == Math.Floor(v) && (v is >= 0 and <= 20 || v == LabelMap.Ignore))
            {
                labels[row * width + col] = (byte)v;
                continue;
            }
            throw Problems.Fail(DatasetProblem.LabelOutOfRange,
                $"GTcls.Segmentation value {v} at pixel (x={col}, y={row}) is not a VOC class 0..20 or 255", name);
        }
        return new LabelMap(width, height, labels);
    }

    /// <summary>
    /// Converts SBD masks to <c>&lt;vocRoot&gt;/SegmentationClassAug/&lt;id&gt;.png</c> (8-bit grayscale).
    /// <paramref name="sbdFolder"/> holds <c>cls/</c> (SBD's <c>benchmark_RELEASE/dataset</c>);
    /// <paramref name="ids"/> defaults to every <c>cls/*.mat</c>. Files are written atomically.
    /// </summary>
    /// <exception cref="DatasetException">A missing or unreadable .mat file (conversion stops there).</exception>
    public static SbdConversionResult Convert(string sbdFolder, string vocRoot, IEnumerable<string>? ids = null, bool overwrite = false)
    {
        var clsDir = Path.Combine(Path.GetFullPath(sbdFolder), "cls");
        if (!Directory.Exists(clsDir))
            throw Problems.Fail(DatasetProblem.MissingRoot, "no cls/ folder (expected SBD's benchmark_RELEASE/dataset folder)", Path.GetFullPath(sbdFolder));
        var outDir = Path.Combine(VocDataset.FindRoot(vocRoot), "SegmentationClassAug");
        var list = ids?.ToList() ?? Directory.GetFiles(clsDir, "*.mat").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal).ToList()!;
        int written = 0, skipped = 0;
        foreach (var id in list)
        {
            var target = Path.Combine(outDir, id + ".png");
            if (!overwrite && File.Exists(target))
            {
                skipped++;
                continue;
            }
            ImageCodec.WriteGrayscalePng(target, ReadSegmentation(Path.Combine(clsDir, id + ".mat")));
            written++;
        }
        return new SbdConversionResult(written, skipped, outDir);
    }

    /// <summary>
    /// train_aug = (SBD train ∪ SBD val ∪ VOC train) − VOC val, deduplicated and sorted (ordinal).
    /// When the four lists have the official sizes (8,498 / 2,857 / 1,464 / 1,449 distinct ids)
    /// the result must have exactly 10,582 ids; otherwise this throws, as the lists are then not the official ones.
    /// </summary>
    /// <exception cref="DatasetException">Official-sized lists that do not give 10,582 ids.</exception>
    public static IReadOnlyList<string> BuildTrainAugList(IEnumerable<string> sbdTrain, IEnumerable<string> sbdVal, IEnumerable<string> vocTrain, IEnumerable<string> vocVal)
    {
        var st = sbdTrain.ToHashSet(StringComparer.Ordinal);
        var sv = sbdVal.ToHashSet(StringComparer.Ordinal);
        var vt = vocTrain.ToHashSet(StringComparer.Ordinal);
        var vv = vocVal.ToHashSet(StringComparer.Ordinal);
        var result = st.Union(sv).Union(vt).Where(id => !vv.Contains(id)).Order(StringComparer.Ordinal).ToArray();
        var official = st.Count == OfficialSbdTrainCount && sv.Count == OfficialSbdValCount
                       && vt.Count == OfficialVocTrainCount && vv.Count == OfficialVocValCount;
        if (official && result.Length != OfficialTrainAugCount)
            throw Problems.Fail(DatasetProblem.Other,
                $"train_aug built from official-sized lists (SBD train {st.Count}, SBD val {sv.Count}, VOC train {vt.Count}, VOC val {vv.Count}) " +
                $"has {result.Length} ids, expected {OfficialTrainAugCount}: a list is not the official one", null);
        return result;
    }

    /// <summary>
    /// Builds train_aug from SBD's <c>train.txt</c>/<c>val.txt</c> and VOC's <c>train.txt</c>/<c>val.txt</c>
    /// and writes it (default <c>ImageSets/Segmentation/train_aug.txt</c> of the VOC root) atomically.
    /// </summary>
    public static IReadOnlyList<string> WriteTrainAugList(string sbdFolder, string vocRoot, string? outputPath = null)
    {
        var sbd = Path.GetFullPath(sbdFolder);
        var voc = VocDataset.FindRoot(vocRoot);
        var seg = Path.Combine(voc, "ImageSets", "Segmentation");
        var ids = BuildTrainAugList(
            IdLists.Read(Path.Combine(sbd, "train.txt")), IdLists.Read(Path.Combine(sbd, "val.txt")),
            IdLists.Read(Path.Combine(seg, "train.txt")), IdLists.Read(Path.Combine(seg, "val.txt")));
        IdLists.Write(outputPath ?? Path.Combine(seg, "train_aug.txt"), ids);
        return ids;
    }
}
