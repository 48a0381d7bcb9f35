using System.Text;
using SkiaSharp;

namespace ContrastSeg.Data;

/// <summary>The outcome of <see cref="DatasetValidator"/>: every problem found in one pass.</summary>
public sealed class ValidationReport
{
    /// <summary>Creates a report.</summary>
    public ValidationReport(string dataset, int samplesChecked, IReadOnlyList<DatasetIssue> issues, IReadOnlyList<string>? notes = null)
    {
        Dataset = dataset;
        SamplesChecked = samplesChecked;
        Issues = issues;
        Notes = notes ?? [];
    }

    /// <summary>What was checked, e.g. "VOC 2012 at /data/VOC2012, list train.txt".</summary>
    public string Dataset { get; }

    /// <summary>Number of samples whose files were decoded and checked.</summary>
    public int SamplesChecked { get; }

    /// <summary>Every problem, structural ones (root, list, missing files) first, then per sample in list order.</summary>
    public IReadOnlyList<DatasetIssue> Issues { get; }

    /// <summary>What the readers do to the data that a user should know and that is no problem, e.g. that images with an EXIF orientation are loaded turned.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>True when no problem was found.</summary>
    public bool IsValid => Issues.Count == 0;

    /// <summary>The problems of one kind.</summary>
    public IReadOnlyList<DatasetIssue> OfKind(DatasetProblem kind) => Issues.Where(i => i.Problem == kind).ToArray();

    /// <summary>Throws the first problem as a <see cref="DatasetException"/> naming its file, and how many more there are.</summary>
    public void ThrowIfInvalid()
    {
        var list = new IssueList();
        foreach (var issue in Issues) list.Add(issue);
        list.ThrowIfAny();
    }

    /// <summary>A summary line, counts by kind, then one line per problem, then one per note.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Dataset).Append(": ").Append(SamplesChecked).Append(SamplesChecked == 1 ? " sample" : " samples").Append(" checked, ");
        if (IsValid) sb.AppendLine("no problems");
        else
        {
            sb.Append(Issues.Count).Append(Issues.Count == 1 ? " problem" : " problems").Append(" (");
            sb.AppendJoin(", ", Issues.GroupBy(i => i.Problem).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"));
            sb.AppendLine(")");
            foreach (var issue in Issues) sb.Append("  ").AppendLine(issue.ToString());
        }
        foreach (var note in Notes) sb.Append("  note: ").AppendLine(note);
        return sb.ToString().TrimEnd();
    }
}

/// <summary>Part of the data a run reads, for <see cref="DatasetValidator.CheckBeforeRun"/>.</summary>
/// <param name="Name">What it is, in messages: e.g. "training split 'train'".</param>
/// <param name="Dataset">The dataset.</param>
/// <param name="Indices">The samples of <paramref name="Dataset"/> the run reads.</param>
/// <param name="NeedsLabels">True when the run trains on or scores these samples (a mask each, some labelled pixels); false when it reads only their images (prediction, pseudo-labelling).</param>
public sealed record DataPart(string Name, ISegmentationDataset Dataset, IReadOnlyList<int> Indices, bool NeedsLabels);

/// <summary>
/// Scans a whole dataset and reports every problem at once instead of stopping at the first:
/// missing root or split file, empty split, duplicate ids, listed ids without files, corrupt or
/// truncated images, masks that are not index PNGs (e.g. RGB renderings), mask/image size
/// mismatches, labels outside the class range and, given a <see cref="MinimumImageSize"/>, images
/// smaller than the model reads. Every image and mask is decoded. Images loaded turned by
/// their EXIF orientation are no problem but a note of the report.
/// </summary>
public static class DatasetValidator
{
    /// <summary>Validates a PASCAL VOC layout (see <see cref="VocDataset"/>).</summary>
    public static ValidationReport ValidateVoc(string root, VocOptions? options = null, int? maxParallelism = null, MinimumImageSize? minimum = null)
    {
        options ??= new VocOptions();
        var issues = new IssueList();
        var r = VocDataset.Resolve(root, options, issues);
        var what = $"VOC 2012 at {r?.Root ?? Path.GetFullPath(root)}, list {Path.GetFileName(r?.ListFile ?? options.ListFile ?? options.Split + ".txt")}";
        return Run(what, issues, r?.Source, maxParallelism, minimum);
    }

    /// <summary>Validates a Cityscapes layout (see <see cref="CityscapesDataset"/>).</summary>
    public static ValidationReport ValidateCityscapes(string root, CityscapesOptions? options = null, int? maxParallelism = null, MinimumImageSize? minimum = null)
    {
        options ??= new CityscapesOptions();
        var issues = new IssueList();
        var r = CityscapesDataset.Resolve(root, options, issues);
        var what = $"Cityscapes at {Path.GetFullPath(root)}, " + (options.ListFile is null ? $"split {options.Split}" : $"list {Path.GetFileName(options.ListFile)}");
        return Run(what, issues, r?.Source, maxParallelism, minimum);
    }

    /// <summary>Validates a custom folder dataset (see <see cref="FolderDataset"/>).</summary>
    public static ValidationReport ValidateFolder(string root, FolderOptions? options = null, int? maxParallelism = null, MinimumImageSize? minimum = null)
    {
        options ??= new FolderOptions();
        var issues = new IssueList();
        var r = FolderDataset.Resolve(root, options, issues);
        var what = $"Folder dataset at {Path.GetFullPath(root)}" + (options.Split is null ? "" : $", split {options.Split}");
        var unlabelled = r is { AllowsUnlabelled: true } resolved ? Enumerable.Range(0, resolved.Source.Ids.Count).Count(i => resolved.Source.MaskPath(i) is null) : 0;
        if (unlabelled > 0) what += $" ({unlabelled} image{(unlabelled == 1 ? "" : "s")} without a mask, declared unlabelled)";
        return Run(what, issues, r?.Source, maxParallelism, minimum);
    }

    /// <summary>
    /// Checks every sample a run will read before its first step, fast: each image's header and completeness
    /// (<see cref="ImageCodec.ProbeImage"/>, no pixel decode) and each mask in full (index PNG, size against
    /// the image, label range), the same checks as the validator's otherwise. A part that
    /// <see cref="DataPart.NeedsLabels"/> must have a mask for every sample and at least one labelled
    /// (non-ignore) pixel in all. Given <paramref name="minimum"/>, every image must, as loaded, be at least that
    /// size (from its header: no decode). Samples that are not files (the embedded scenes) have nothing to check.
    /// </summary>
    /// <param name="parts">What the run reads.</param>
    /// <param name="maxParallelism">Threads (default: one per core).</param>
    /// <param name="minimum">The smallest image the run's model reads, with the resize the parts were opened with; null: no size check.</param>
    public static ValidationReport CheckBeforeRun(IReadOnlyList<DataPart> parts, int? maxParallelism = null, MinimumImageSize? minimum = null)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var all = new List<DatasetIssue>();
        var checkedSamples = 0;
        var turned = new List<QuickCheckResult>();
        foreach (var part in parts)
        {
            if (part.NeedsLabels && part.Indices.Count == 0)
            {
                all.Add(new DatasetIssue(part.Name, DatasetProblem.EmptySplit,
                    $"the {part.Name} has no images with a mask ({part.Dataset.Ids.Count} without one, declared unlabelled): nothing to train on or score"));
                continue;
            }
            if (part.Dataset is not IQuickCheckable dataset) continue;
            var results = new QuickCheckResult?[part.Indices.Count];
            var perSample = new List<DatasetIssue>[results.Length];
            Parallel.For(0, results.Length,
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxParallelism ?? Environment.ProcessorCount) },
                k =>
                {
                    var sink = new List<DatasetIssue>();
                    results[k] = dataset.CheckQuick(part.Indices[k], sink);
                    perSample[k] = sink;
                });
            if (results.Any(r => r is null)) continue; // not read from files
            checkedSamples += results.Length;
            turned.AddRange(results.Select(r => r!.Value).Where(r => r.Orientation != SKEncodedOrigin.TopLeft));
            var found = perSample.Sum(l => l.Count);
            foreach (var list in perSample) all.AddRange(list);
            foreach (var r in results)
            {
                // The size as the run loads it (after the dataset's resize) is what the model gets.
                if (minimum is null || r!.Value.ImageSize is not { } loaded) continue;
                if (minimum.Check(r.Value.Image, r.Value.StoredSize ?? loaded, loaded) is { } small) all.Add(small);
            }
            if (!part.NeedsLabels) continue;
            foreach (var r in results.Where(r => r!.Value.LabelledPixels is null))
                all.Add(new DatasetIssue(r!.Value.Image, DatasetProblem.MissingFile, $"image of the {part.Name} has no mask, but the run trains on or scores it"));
            if (found == 0 && results.All(r => r!.Value.LabelledPixels == 0))
                all.Add(new DatasetIssue(part.Name, DatasetProblem.EmptySplit,
                    $"no labelled pixel in the {results.Length} mask{(results.Length == 1 ? "" : "s")} of the {part.Name}: every pixel is the ignore label {part.Dataset.Info.IgnoreLabel}, " +
                    "so a loss over it would be 0 and its mIoU undefined"));
        }
        var what = "data of the run (" + string.Join(", ", parts.Select(p => $"{p.Name}: {p.Indices.Count} samples")) + ")" + (minimum is null ? "" : $"; {minimum}");
        return new ValidationReport(what, checkedSamples, all, OrientationNote(turned));
    }

    private static ValidationReport Run(string what, IssueList structural, SampleSource? source, int? maxParallelism, MinimumImageSize? minimum)
    {
        var all = new List<DatasetIssue>(structural.Items);
        if (minimum is not null) what += $"; {minimum}";
        if (source is null) return new ValidationReport(what, 0, all);
        var perSample = new List<DatasetIssue>[source.Ids.Count];
        var results = new QuickCheckResult[perSample.Length];
        Parallel.For(0, perSample.Length,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxParallelism ?? Environment.ProcessorCount) },
            i =>
            {
                var sink = new List<DatasetIssue>();
                var r = results[i] = source.Check(i, sink);
                if (r.ImageSize is { } size && minimum?.Check(r.Image, size.Width, size.Height) is { } small) sink.Add(small);
                perSample[i] = sink;
            });
        foreach (var list in perSample) all.AddRange(list);
        return new ValidationReport(what, perSample.Length, all, OrientationNote(results.Where(r => r.Orientation != SKEncodedOrigin.TopLeft).ToList()));
    }

    /// <summary>The note that images were loaded turned by their EXIF orientation (none when no image was).</summary>
    private static IReadOnlyList<string> OrientationNote(IReadOnlyList<QuickCheckResult> turned)
    {
        if (turned.Count == 0) return [];
        var examples = turned.DistinctBy(r => r.Image).ToList();
        var first = examples[0];
        var size = first.ImageSize is { } s ? $", loaded as {s.Width}x{s.Height}" : "";
        return [$"{examples.Count} image{(examples.Count == 1 ? "" : "s")} carr{(examples.Count == 1 ? "ies" : "y")} an EXIF orientation, applied as viewers apply it: " +
                $"loaded as displayed, not as stored (e.g. {first.Image}: {ExifOrientation.Describe(first.Orientation)}{size}). " +
                "Masks are never turned: each must match its image as displayed"];
    }
}
