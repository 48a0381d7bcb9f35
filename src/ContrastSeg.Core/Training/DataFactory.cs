using ContrastSeg.Data;

namespace ContrastSeg.Training;

/// <summary>The datasets of a run, opened from its <see cref="DataSettings"/>.</summary>
/// <param name="Train">The whole training split.</param>
/// <param name="Val">The validation split.</param>
/// <param name="Labelled">Indices into <paramref name="Train"/> of the labelled images used for training.</param>
/// <param name="Unlabelled">Indices of the remaining training images.</param>
/// <param name="SubsetFile">The list file of the labelled subset (null when all images are labelled).</param>
/// <param name="Source">Where the data came from (recorded with results).</param>
public sealed record RunData(ISegmentationDataset Train, ISegmentationDataset Val, IReadOnlyList<int> Labelled, IReadOnlyList<int> Unlabelled, string? SubsetFile, string Source)
{
    /// <summary>Classes, palette, ignore label.</summary>
    public DatasetInfo Info => Train.Info;
}

/// <summary>Opens datasets by name: <c>fashion-mnist-scenes</c>, <c>voc</c>, <c>cityscapes</c>, <c>folder</c>.</summary>
public static class DataFactory
{
    /// <summary>Opens the training and validation splits and draws (or re-reads) the labelled subset.</summary>
    public static RunData Open(DataSettings d, string outputRoot)
    {
        var (train, val, source) = d.Dataset switch
        {
            "fashion-mnist-scenes" => Scenes(d),
            "voc" => (Voc(d, d.TrainSplit), Voc(d, d.ValSplit), $"voc:{Path.GetFullPath(d.Root!)}"),
            "cityscapes" => ((ISegmentationDataset)new CityscapesDataset(d.Root!, SplitOf<CityscapesOptions>(d.TrainSplit, (s, f) => new CityscapesOptions { Split = s, ListFile = f })),
                             (ISegmentationDataset)new CityscapesDataset(d.Root!, SplitOf<CityscapesOptions>(d.ValSplit, (s, f) => new CityscapesOptions { Split = s, ListFile = f })),
                             $"cityscapes:{Path.GetFullPath(d.Root!)}"),
            "folder" => (new FolderDataset(d.Root!, new FolderOptions { Split = d.TrainSplit }), new FolderDataset(d.Root!, new FolderOptions { Split = d.ValSplit }), $"folder:{Path.GetFullPath(d.Root!)}"),
            _ => throw new ConfigException($"Data.Dataset = '{d.Dataset}' is not a known dataset", "Data.Dataset"),
        };
        if (d.Resize != 1.0)
        {
            (train, val) = (new ResizedDataset(train, d.Resize), new ResizedDataset(val, d.Resize));
            source += $"@resize{d.Resize.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        }
        var all = Enumerable.Range(0, train.Ids.Count).ToArray();
        if (d.Labelled is not { } n) return new RunData(train, val, all, Array.Empty<int>(), null, source);
        if (n > train.Ids.Count)
            throw new ConfigException($"Data.Labelled = {n} but the training split has only {train.Ids.Count} images", "Data.Labelled");
        var file = d.LabelledList ?? Path.Combine(outputRoot, "subsets", $"{d.Dataset}-{Path.GetFileNameWithoutExtension(d.TrainSplit)}-n{n}-seed{d.DataSeed}.txt");
        var subset = LabelSubsets.Choose(train.Ids, n, d.DataSeed, file);
        IReadOnlyList<int> labelled = subset.LabelledIndices;
        if (d.PseudoLabels is not null)
        {
            var pseudo = new PseudoLabelledDataset(train, d.PseudoLabels);
            return new RunData(pseudo, val, labelled.Concat(subset.UnlabelledIndices.Where(pseudo.HasPseudoLabels)).ToArray(),
                subset.UnlabelledIndices, subset.ListFile, source + $"+pseudo:{Path.GetFullPath(d.PseudoLabels)}");
        }
        return new RunData(train, val, labelled, subset.UnlabelledIndices, subset.ListFile, source);
    }

    private static (ISegmentationDataset, ISegmentationDataset, string) Scenes(DataSettings d)
    {
        var source = FashionMnistSource.Open(d.Root);
        FashionMnistSceneOptions Options(SceneSplit split) => new()
        {
            Split = split, Width = d.SceneSize, Height = d.SceneSize, TrainScenes = d.TrainScenes, ValScenes = d.ValScenes, Seed = d.DataSeed,
        };
        var val = d.ValSplit.Equals("test", StringComparison.OrdinalIgnoreCase) ? SceneSplit.Test : SceneSplit.Val;
        return (new FashionMnistScenes(Options(SceneSplit.Train), source), new FashionMnistScenes(Options(val), source), $"fashion-mnist-scenes:{source.Description}");
    }

    private static ISegmentationDataset Voc(DataSettings d, string split) =>
        new VocDataset(d.Root!, SplitOf<VocOptions>(split, (s, f) => new VocOptions { Split = s, ListFile = f }));

    /// <summary>A split is a name, or a path to an id-list file.</summary>
    private static T SplitOf<T>(string split, Func<string, string?, T> make) =>
        File.Exists(split) ? make(Path.GetFileNameWithoutExtension(split), split) : make(split, null);
}

/// <summary>A training split whose unlabelled images take their labels from pseudo-label PNGs.</summary>
public sealed class PseudoLabelledDataset : ISegmentationDataset
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

    private string PathOf(int index) => Path.Combine(_folder, _inner.Ids[index] + ".png");

    /// <inheritdoc/>
    public SegmentationSample Load(int index)
    {
        var sample = _inner.Load(index);
        if (!HasPseudoLabels(index)) return sample;
        var labels = ImageCodec.DecodeIndexPng(PathOf(index));
        if (labels.Width != sample.Image.Width || labels.Height != sample.Image.Height)
            throw new DatasetException($"pseudo-labels are {labels.Width}x{labels.Height} but the image is {sample.Image.Width}x{sample.Image.Height}", PathOf(index));
        return sample with { Labels = labels };
    }
}
