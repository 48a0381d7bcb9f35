using ContrastSeg.Data;

namespace ContrastSeg.Training;

/// <summary>
/// A dataset the kit trains on, by the name <see cref="DataSettings.Dataset"/> takes: how its splits open, what run
/// names call it, whether it needs a root, how it is validated. One entry per dataset in <see cref="DatasetRegistry"/>,
/// so adding a dataset is its reader plus one line there.
/// </summary>
/// <param name="Name">The value of <c>Data.Dataset</c>, e.g. <c>voc</c>.</param>
/// <param name="RunNameTag">What run names call it (short: run names are folder names).</param>
/// <param name="NeedsRoot">Whether <c>Data.Root</c> must be set (the embedded scenes need none).</param>
/// <param name="SameSizeImages">Whether every image has one size, so evaluation batches them (photos differ: one at a time).</param>
/// <param name="EvalSplit">The split studies score final models on: the scenes' own test split; <c>val</c> where test labels are not public (VOC, Cityscapes) or not known to exist (folders).</param>
/// <param name="Open">The training split, the validation split and where they came from (recorded with results).</param>
/// <param name="Validate">The full scan of a split (<c>validate-data</c>), given the root, split, pixel limit (<see cref="PixelLimit"/>) and smallest image size; null for generated data.</param>
public sealed record DatasetKind(
    string Name,
    string RunNameTag,
    bool NeedsRoot,
    bool SameSizeImages,
    string EvalSplit,
    Func<DataSettings, (ISegmentationDataset Train, ISegmentationDataset Val, string Source)> Open,
    SplitValidation? Validate);

/// <summary>
/// The full scan of a split of a dataset (<c>validate-data</c>): every file, with images and masks of more than
/// <paramref name="maxPixels"/> pixels refused (<see cref="PixelLimit"/>), and every image against
/// <paramref name="minimum"/> (null: <see cref="DatasetRegistry.DefaultMinimum"/>, images as stored).
/// </summary>
public delegate ValidationReport SplitValidation(string root, string split, int maxPixels = PixelLimit.Default, MinimumImageSize? minimum = null);

/// <summary>Every dataset the kit reads, by name: the one place a dataset name is switched on.</summary>
public static class DatasetRegistry
{
    /// <summary>The datasets, the embedded default first.</summary>
    public static IReadOnlyList<DatasetKind> All { get; } = new[]
    {
        new DatasetKind("fashion-mnist-scenes", "fmscenes", NeedsRoot: false, SameSizeImages: true, EvalSplit: "test", Scenes, Validate: null),
        new DatasetKind("folder", "folder", NeedsRoot: true, SameSizeImages: false, EvalSplit: "val",
            d => (Folder(d, d.TrainSplit), Folder(d, d.ValSplit), $"folder:{Path.GetFullPath(d.Root!)}"),
            (root, split, maxPixels, minimum) => DatasetValidator.ValidateFolder(root, new FolderOptions { Split = split, MaxImagePixels = maxPixels }, null, minimum ?? DefaultMinimum)),
        new DatasetKind("voc", "voc", NeedsRoot: true, SameSizeImages: false, EvalSplit: "val",
            d => (Voc(d, d.TrainSplit), Voc(d, d.ValSplit), $"voc:{Path.GetFullPath(d.Root!)}"),
            (root, split, maxPixels, minimum) => DatasetValidator.ValidateVoc(root, new VocOptions { Split = split, MaxImagePixels = maxPixels }, null, minimum ?? DefaultMinimum)),
        new DatasetKind("cityscapes", "cityscapes", NeedsRoot: true, SameSizeImages: false, EvalSplit: "val",
            d => (Cityscapes(d, d.TrainSplit), Cityscapes(d, d.ValSplit), $"cityscapes:{Path.GetFullPath(d.Root!)}"),
            (root, split, maxPixels, minimum) => DatasetValidator.ValidateCityscapes(root, new CityscapesOptions { Split = split, MaxImagePixels = maxPixels }, null, minimum ?? DefaultMinimum)),
    };

    /// <summary>The smallest image the default model (the <c>cpu</c> preset's) reads, images as stored: what the validator checks unless told otherwise.</summary>
    public static MinimumImageSize DefaultMinimum { get; } = DefaultModelMinimum(new ModelSettings().ToEncoderOptions().MinInputSize());

    private static MinimumImageSize DefaultModelMinimum(int side) => new(side, $"the output stride of the cpu preset's model, Model.OutputStride = {side}");

    /// <summary>The names <c>Data.Dataset</c> takes.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(k => k.Name).ToArray();

    /// <summary>The dataset called <paramref name="name"/>, or null.</summary>
    public static DatasetKind? Find(string? name) => All.FirstOrDefault(k => k.Name == name);

    /// <summary>The dataset called <paramref name="name"/>.</summary>
    /// <exception cref="ConfigException">No dataset has that name (the message lists the names).</exception>
    public static DatasetKind Get(string? name) =>
        Find(name) ?? throw new ConfigException($"Data.Dataset = '{name}' is not a known dataset: use one of {string.Join(", ", Names)}", "Data.Dataset");

    private static (ISegmentationDataset, ISegmentationDataset, string) Scenes(DataSettings d)
    {
        var source = FashionMnistSource.Open(d.Root);
        FashionMnistSceneOptions Options(SceneSplit split) => new()
        {
            Split = split, Width = d.Scenes.Size, Height = d.Scenes.Size, TrainScenes = d.Scenes.Train, ValScenes = d.Scenes.Val, Seed = d.DataSeed,
        };
        // The scenes have a test split of their own: a ValSplit of "test" scores it.
        var val = d.ValSplit.Equals("test", StringComparison.OrdinalIgnoreCase) ? SceneSplit.Test : SceneSplit.Val;
        return (new FashionMnistScenes(Options(SceneSplit.Train), source), new FashionMnistScenes(Options(val), source), $"fashion-mnist-scenes:{source.Description}");
    }

    private static ISegmentationDataset Folder(DataSettings d, string split) => new FolderDataset(d.Root!, new FolderOptions { Split = split, MaxImagePixels = d.MaxImagePixels });

    private static ISegmentationDataset Voc(DataSettings d, string split) =>
        new VocDataset(d.Root!, SplitOf(split, (s, f) => new VocOptions { Split = s, ListFile = f, MaxImagePixels = d.MaxImagePixels }));

    private static ISegmentationDataset Cityscapes(DataSettings d, string split) =>
        new CityscapesDataset(d.Root!, SplitOf(split, (s, f) => new CityscapesOptions { Split = s, ListFile = f, MaxImagePixels = d.MaxImagePixels }));

    /// <summary>A split is a name, or a path to an id-list file.</summary>
    private static T SplitOf<T>(string split, Func<string, string?, T> make) =>
        File.Exists(split) ? make(Path.GetFileNameWithoutExtension(split), split) : make(split, null);
}
