using ContrastSeg.Data;

namespace ContrastSeg.Training;

/// <summary>The parts of a run's data a command reads (see <see cref="RunData.CheckBeforeRun"/>).</summary>
[Flags]
public enum RunParts
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>The training images (<see cref="RunData.Labelled"/>), with their labels.</summary>
    Training = 1,
    /// <summary>The validation images that are scored (<see cref="RunData.ValScored"/>), with their labels.</summary>
    Scoring = 2,
    /// <summary>Every image of the validation split, labels where there are (prediction).</summary>
    ValImages = 4,
    /// <summary>The unlabelled training images (<see cref="RunData.Unlabelled"/>; pseudo-labelling).</summary>
    UnlabelledImages = 8,
}

/// <summary>The datasets of a run, opened from its <see cref="DataSettings"/>.</summary>
/// <param name="Train">The whole training split.</param>
/// <param name="Val">The validation split.</param>
/// <param name="Labelled">Indices into <paramref name="Train"/> of the images trained on: the labelled subset, and pseudo-labelled images when there are.</param>
/// <param name="Unlabelled">Indices of the other training images: outside the labelled subset, or without a mask in a split declared unlabelled.</param>
/// <param name="SubsetFile">The list file of the labelled subset (null when all images are labelled).</param>
/// <param name="Source">Where the data came from (recorded with results).</param>
public sealed record RunData(ISegmentationDataset Train, ISegmentationDataset Val, IReadOnlyList<int> Labelled, IReadOnlyList<int> Unlabelled, string? SubsetFile, string Source)
{
    private readonly IReadOnlyList<int>? _valScored;

    /// <summary>Classes, palette, ignore label.</summary>
    public DatasetInfo Info => Train.Info;

    /// <summary>Indices into <see cref="Val"/> of the images validation and evaluation score: those with a mask (all, unless the split is declared unlabelled).</summary>
    public IReadOnlyList<int> ValScored
    {
        get => _valScored ?? Enumerable.Range(0, Val.Ids.Count).ToArray();
        init => _valScored = value;
    }

    /// <summary>The training split in messages, e.g. "training split 'train'".</summary>
    public string TrainName { get; init; } = "training split";

    /// <summary>The validation split in messages, e.g. "validation split 'val'".</summary>
    public string ValName { get; init; } = "validation split";

    /// <summary>Training images without a mask (in a split declared unlabelled); part of <see cref="Unlabelled"/>.</summary>
    public int TrainWithoutMask { get; init; }

    /// <summary>Of <see cref="Labelled"/>, the images whose labels are pseudo-labels.</summary>
    public int PseudoLabelled { get; init; }

    /// <summary>
    /// Checks every file of <paramref name="parts"/> before the command's first step (header-level image checks,
    /// masks in full; see <see cref="DatasetValidator.CheckBeforeRun"/>), so that a bad file stops the run at once
    /// instead of after hours of training; returns what was checked.
    /// </summary>
    /// <param name="parts">What the command reads.</param>
    /// <param name="minimum">The smallest image the command's model reads (with the data's <c>Data.Resize</c>); null: sizes are not checked.</param>
    /// <exception cref="DatasetException">The first problem, naming its file, and how many more there are.</exception>
    public ValidationReport CheckBeforeRun(RunParts parts, MinimumImageSize? minimum = null)
    {
        var list = new List<DataPart>();
        if (parts.HasFlag(RunParts.Training)) list.Add(new DataPart(TrainName, Train, Labelled, NeedsLabels: true));
        if (parts.HasFlag(RunParts.UnlabelledImages)) list.Add(new DataPart(TrainName, Train, Unlabelled, NeedsLabels: false));
        if (parts.HasFlag(RunParts.ValImages)) list.Add(new DataPart(ValName, Val, Enumerable.Range(0, Val.Ids.Count).ToArray(), NeedsLabels: false));
        else if (parts.HasFlag(RunParts.Scoring)) list.Add(new DataPart(ValName, Val, ValScored, NeedsLabels: true));
        var report = DatasetValidator.CheckBeforeRun(list, minimum: minimum);
        report.ThrowIfInvalid();
        return report;
    }

    /// <summary>The image counts a run uses, for its log: "N training images ..., M validation images ...".</summary>
    public string Describe(bool withValidation)
    {
        var text = $"{Labelled.Count} training image{(Labelled.Count == 1 ? "" : "s")}";
        var notes = new List<string>();
        if (PseudoLabelled > 0) notes.Add($"{Labelled.Count - PseudoLabelled} labelled + {PseudoLabelled} pseudo-labelled");
        if (SubsetFile is not null) notes.Add($"subset {SubsetFile}");
        if (TrainWithoutMask > 0) notes.Add($"{TrainWithoutMask} image{(TrainWithoutMask == 1 ? "" : "s")} of the {TrainName} without a mask, declared unlabelled, not trained on");
        if (notes.Count > 0) text += $" ({string.Join("; ", notes)})";
        if (!withValidation) return text;
        var unscored = Val.Ids.Count - ValScored.Count;
        return text + $", {ValScored.Count} validation image{(ValScored.Count == 1 ? "" : "s")}" +
               (unscored > 0 ? $" ({unscored} of the {ValName} without a mask, declared unlabelled, not scored)" : "");
    }
}

/// <summary>Opens a run's datasets (by name, through <see cref="DatasetRegistry"/>) and draws its labelled subset.</summary>
public static class DataFactory
{
    /// <summary>
    /// Opens the training and validation splits and draws (or re-reads) the labelled subset. Only images
    /// with a mask are trained on and scored; images without one exist only in a folder split declared
    /// unlabelled (<see cref="FolderDataset.UnlabelledDirective"/>) and join <see cref="RunData.Unlabelled"/>.
    /// </summary>
    public static RunData Open(DataSettings d, string outputRoot)
    {
        var (train, val, source) = DatasetRegistry.Get(d.Dataset).Open(d);
        // Taken before resizing wraps the datasets: only a folder split declared unlabelled has images without a mask.
        var withMask = LabelledOf(train);
        var valScored = LabelledOf(val);
        if (d.Resize != 1.0)
        {
            (train, val) = (new ResizedDataset(train, d.Resize), new ResizedDataset(val, d.Resize));
            source += $"@resize{d.Resize.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        }
        var names = (Train: $"training split '{d.TrainSplit}'", Val: $"validation split '{d.ValSplit}'");
        var withoutMask = train.Ids.Count - withMask.Count;

        IReadOnlyList<int> labelled = withMask;
        string? subsetFile = null;
        if (d.Labelled is { } n)
        {
            if (n > withMask.Count)
                throw new ConfigException($"Data.Labelled = {n} but the {names.Train} has only {withMask.Count} labelled images" +
                                          (withoutMask > 0 ? $" (and {withoutMask} without a mask, declared unlabelled)" : ""), "Data.Labelled");
            var file = d.LabelledList ?? Path.Combine(outputRoot, "subsets", $"{d.Dataset}-{Path.GetFileNameWithoutExtension(d.TrainSplit)}-n{n}-seed{d.DataSeed}.txt");
            // The subset is drawn from the images with a mask (every image, unless the split is declared unlabelled).
            var subset = LabelSubsets.Choose(withMask.Select(i => train.Ids[i]).ToArray(), n, d.DataSeed, file);
            labelled = subset.LabelledIndices.Select(k => withMask[k]).ToArray();
            subsetFile = subset.ListFile;
        }
        var inSubset = new bool[train.Ids.Count];
        foreach (var i in labelled) inSubset[i] = true;
        IReadOnlyList<int> unlabelled = Enumerable.Range(0, train.Ids.Count).Where(i => !inSubset[i]).ToArray();

        var data = new RunData(train, val, labelled, unlabelled, subsetFile, source)
        {
            ValScored = valScored, TrainName = names.Train, ValName = names.Val, TrainWithoutMask = withoutMask,
        };
        return d.PseudoLabels is null ? data : WithPseudoLabels(data, d.PseudoLabels);
    }

    /// <summary>
    /// <paramref name="data"/> with the unlabelled training images that have a pseudo-label PNG in <paramref name="folder"/>
    /// added to the images trained on (<see cref="RunData.Labelled"/>), with those labels.
    /// </summary>
    /// <exception cref="ConfigException">Every training image is trained on with its own labels: no image could take a pseudo-label.</exception>
    public static RunData WithPseudoLabels(RunData data, string folder)
    {
        if (data.Unlabelled.Count == 0)
            throw new ConfigException($"Data.PseudoLabels = {folder} but every image of the {data.TrainName} is trained on with its own labels: " +
                                      "set Data.Labelled below the training split size", "Data.PseudoLabels");
        var pseudo = new PseudoLabelledDataset(data.Train, folder);
        var withPseudo = data.Unlabelled.Where(pseudo.HasPseudoLabels).ToArray();
        return data with
        {
            Train = pseudo, Labelled = data.Labelled.Concat(withPseudo).ToArray(), PseudoLabelled = withPseudo.Length,
            Source = data.Source + $"+pseudo:{Path.GetFullPath(folder)}",
        };
    }

    /// <summary>The indices of <paramref name="split"/>'s images that have labels: a folder split's images with a mask, every image of the others.</summary>
    private static IReadOnlyList<int> LabelledOf(ISegmentationDataset split) =>
        split is FolderDataset folder ? folder.LabelledIndices : Enumerable.Range(0, split.Ids.Count).ToArray();
}

/// <summary>A training split whose unlabelled images take their labels from pseudo-label PNGs.</summary>
public sealed class PseudoLabelledDataset : ISegmentationDataset, IQuickCheckable
{
    private readonly ISegmentationDataset _inner;
    private readonly string _folder;

    /// <summary>Wraps <paramref name="inner"/>; pseudo-labels are read from <paramref name="folder"/>/&lt;id&gt;.png.</summary>
    public PseudoLabelledDataset(ISegmentationDataset inner, string folder)
    {
        if (!Directory.Exists(folder)) throw new DatasetException("pseudo-label folder does not exist", folder);
        _inner = inner;
        _folder = folder;
    }

    /// <inheritdoc/>
    public DatasetInfo Info => _inner.Info;

    /// <inheritdoc/>
    public IReadOnlyList<string> Ids => _inner.Ids;

    /// <summary>Whether image <paramref name="index"/> has a pseudo-label file.</summary>
    public bool HasPseudoLabels(int index) => File.Exists(PathOf(index));

    private string PathOf(int index) => UnicodeNames.Existing(_folder, _inner.Ids[index] + ".png") ?? Path.Combine(_folder, _inner.Ids[index] + ".png");

    /// <inheritdoc/>
    public SegmentationSample Load(int index)
    {
        var sample = _inner.Load(index);
        if (!HasPseudoLabels(index)) return sample;
        var labels = ImageCodec.DecodeIndexPng(PathOf(index), PixelLimitFor(sample.Image.Width, sample.Image.Height));
        if (labels.Width != sample.Image.Width || labels.Height != sample.Image.Height)
            throw new DatasetException($"pseudo-labels are {labels.Width}x{labels.Height} but the image is {sample.Image.Width}x{sample.Image.Height}", PathOf(index));
        return sample with { Labels = labels };
    }

    // Pseudo-labels are the kit's output at their image's size, which passed the dataset's pixel limit: more is an error.
    private static int PixelLimitFor(int width, int height) => Math.Max(PixelLimit.Default, width * height);

    QuickCheckResult? IQuickCheckable.CheckQuick(int index, List<DatasetIssue> sink)
    {
        var inner = (_inner as IQuickCheckable)?.CheckQuick(index, sink);
        if (!HasPseudoLabels(index)) return inner;
        var path = PathOf(index);
        var image = inner?.Image ?? _inner.Ids[index];
        // The image's findings (sizes, orientation) stay; the labelled pixels are the pseudo-labels'.
        QuickCheckResult With(long labelled) => inner is { } r ? r with { LabelledPixels = labelled } : new QuickCheckResult(image, null, labelled);
        try
        {
            var labels = ImageCodec.DecodeIndexPng(path, inner?.ImageSize is { } s ? PixelLimitFor(s.Width, s.Height) : PixelLimit.Default);
            if (inner?.ImageSize is { } size && (size.Width, size.Height) != (labels.Width, labels.Height))
            {
                sink.Add(new DatasetIssue(path, DatasetProblem.SizeMismatch, $"pseudo-labels are {labels.Width}x{labels.Height} but the image {image} is {size.Width}x{size.Height}"));
                return With(0);
            }
            SampleSource.CheckRange(labels, path, Info);
            return With(labels.Labels.LongCount(v => v != Info.IgnoreLabel));
        }
        catch (DatasetException e)
        {
            sink.Add(Problems.ToIssue(e, path));
            return With(0);
        }
    }
}
