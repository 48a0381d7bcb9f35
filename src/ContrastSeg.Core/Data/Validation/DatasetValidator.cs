using System.Text;

namespace ContrastSeg.Data;

/// <summary>The outcome of <see cref="DatasetValidator"/>: every problem found in one pass.</summary>
public sealed class ValidationReport
{
    /// <summary>Creates a report.</summary>
    public ValidationReport(string dataset, int samplesChecked, IReadOnlyList<DatasetIssue> issues)
    {
        Dataset = dataset;
        SamplesChecked = samplesChecked;
        Issues = issues;
    }

    /// <summary>What was checked, e.g. "VOC 2012 at /data/VOC2012, list train.txt".</summary>
    public string Dataset { get; }

    /// <summary>Number of samples whose files were decoded and checked.</summary>
    public int SamplesChecked { get; }

    /// <summary>Every problem, structural ones (root, list, missing files) first, then per sample in list order.</summary>
    public IReadOnlyList<DatasetIssue> Issues { get; }

    /// <summary>True when no problem was found.</summary>
    public bool IsValid => Issues.Count == 0;

    /// <summary>The problems of one kind.</summary>
    public IReadOnlyList<DatasetIssue> OfKind(DatasetProblem kind) => Issues.Where(i => i.Problem == kind).ToArray();

    /// <summary>A summary line, counts by kind, then one line per problem.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Dataset).Append(": ").Append(SamplesChecked).Append(SamplesChecked == 1 ? " sample" : " samples").Append(" checked, ");
        if (IsValid) return sb.Append("no problems").ToString();
        sb.Append(Issues.Count).Append(Issues.Count == 1 ? " problem" : " problems").Append(" (");
        sb.AppendJoin(", ", Issues.GroupBy(i => i.Problem).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"));
        sb.AppendLine(")");
        foreach (var issue in Issues) sb.Append("  ").AppendLine(issue.ToString());
        return sb.ToString().TrimEnd();
    }
}

/// <summary>
/// Scans a whole dataset and reports every problem at once instead of stopping at the first:
/// missing root or split file, empty split, duplicate ids, listed ids without files, corrupt or
/// truncated images, masks that are not index PNGs (e.g. RGB renderings), mask/image size
/// mismatches and labels outside the class range. Every image and mask is decoded.
/// </summary>
public static class DatasetValidator
{
    /// <summary>Validates a PASCAL VOC layout (see <see cref="VocDataset"/>).</summary>
    public static ValidationReport ValidateVoc(string root, VocOptions? options = null, int? maxParallelism = null)
    {
        options ??= new VocOptions();
        var issues = new IssueList();
        var r = VocDataset.Resolve(root, options, issues);
        var what = $"VOC 2012 at {r?.Root ?? Path.GetFullPath(root)}, list {Path.GetFileName(r?.ListFile ?? options.ListFile ?? options.Split + ".txt")}";
        return Run(what, issues, r?.Source, maxParallelism);
    }

    /// <summary>Validates a Cityscapes layout (see <see cref="CityscapesDataset"/>).</summary>
    public static ValidationReport ValidateCityscapes(string root, CityscapesOptions? options = null, int? maxParallelism = null)
    {
        options ??= new CityscapesOptions();
        var issues = new IssueList();
        var r = CityscapesDataset.Resolve(root, options, issues);
        var what = $"Cityscapes at {Path.GetFullPath(root)}, " + (options.ListFile is null ? $"split {options.Split}" : $"list {Path.GetFileName(options.ListFile)}");
        return Run(what, issues, r?.Source, maxParallelism);
    }

    /// <summary>Validates a custom folder dataset (see <see cref="FolderDataset"/>).</summary>
    public static ValidationReport ValidateFolder(string root, FolderOptions? options = null, int? maxParallelism = null)
    {
        options ??= new FolderOptions();
        var issues = new IssueList();
        var r = FolderDataset.Resolve(root, options, issues);
        var what = $"Folder dataset at {Path.GetFullPath(root)}" + (options.Split is null ? "" : $", split {options.Split}");
        return Run(what, issues, r?.Source, maxParallelism);
    }

    private static ValidationReport Run(string what, IssueList structural, SampleSource? source, int? maxParallelism)
    {
        var all = new List<DatasetIssue>(structural.Items);
        if (source is null) return new ValidationReport(what, 0, all);
        var perSample = new List<DatasetIssue>[source.Ids.Count];
        Parallel.For(0, perSample.Length,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxParallelism ?? Environment.ProcessorCount) },
            i =>
            {
                var sink = new List<DatasetIssue>();
                source.Check(i, sink);
                perSample[i] = sink;
            });
        foreach (var list in perSample) all.AddRange(list);
        return new ValidationReport(what, perSample.Length, all);
    }
}
