namespace ContrastSeg.Data;

/// <summary>Which VOC mask folder to read.</summary>
public enum VocMaskSource
{
    /// <summary><c>SegmentationClass/&lt;id&gt;.png</c> when it exists, else <c>SegmentationClassAug/&lt;id&gt;.png</c> (SBD-augmented ids).</summary>
    Auto,
    /// <summary>Only <c>SegmentationClass</c> (the official 8-bit palette PNGs).</summary>
    SegmentationClass,
    /// <summary>Only <c>SegmentationClassAug</c> (8-bit grayscale PNGs, e.g. written by <c>SbdConverter</c>).</summary>
    SegmentationClassAug,
}

/// <summary>Options of <see cref="VocDataset"/>.</summary>
public sealed record VocOptions
{
    /// <summary>Split name: reads <c>ImageSets/Segmentation/&lt;Split&gt;.txt</c>. Default "train".</summary>
    public string Split { get; init; } = "train";

    /// <summary>An explicit id-list file (absolute, or relative to the working folder); overrides <see cref="Split"/>.</summary>
    public string? ListFile { get; init; }

    /// <summary>Where masks come from. Default <see cref="VocMaskSource.Auto"/>.</summary>
    public VocMaskSource Masks { get; init; } = VocMaskSource.Auto;

    /// <summary>False: samples carry no labels (unlabelled images for semi-supervised use) and masks are not required.</summary>
    public bool WithLabels { get; init; } = true;

    /// <summary>The most pixels an image or mask may have; a larger one is refused before decoding (<see cref="PixelLimit"/>).</summary>
    public int MaxImagePixels { get; init; } = PixelLimit.Default;
}

/// <summary>
/// PASCAL VOC 2012 segmentation: <c>JPEGImages/&lt;id&gt;.jpg</c> with index masks from
/// <c>SegmentationClass</c> (palette PNG) or <c>SegmentationClassAug</c> (grayscale PNG), ids from
/// <c>ImageSets/Segmentation/&lt;split&gt;.txt</c> or a list file; 21 classes, 255 = void.
/// The constructor checks the list and that every file exists; <see cref="FileDataset.Load"/> checks mask size
/// and label values. Use <c>DatasetValidator.ValidateVoc</c> to see every problem at once.
/// </summary>
public sealed class VocDataset : FileDataset
{

    /// <summary>Opens the dataset; <paramref name="root"/> is the VOC2012 folder, the VOCdevkit folder, or the folder holding VOCdevkit.</summary>
    /// <exception cref="DatasetException">Missing root/list/files, an empty list or duplicate ids.</exception>
    public VocDataset(string root, VocOptions? options = null)
    {
        var issues = new IssueList();
        var resolved = Resolve(root, options ?? new VocOptions(), issues);
        issues.ThrowIfAny();
        (Root, ListFile, Source) = resolved!.Value;
    }

    /// <summary>The resolved VOC2012 folder (the one holding JPEGImages).</summary>
    public string Root { get; }

    /// <summary>The id-list file that was read.</summary>
    public string ListFile { get; }

    /// <summary>The folder holding <c>JPEGImages</c>, found at <paramref name="path"/>, <c>path/VOC2012</c> or <c>path/VOCdevkit/VOC2012</c>.</summary>
    /// <exception cref="DatasetException">The folder does not exist or holds no VOC layout.</exception>
    public static string FindRoot(string path)
    {
        var issues = new IssueList();
        var root = FindRoot(path, issues);
        issues.ThrowIfAny();
        return root!;
    }

    private static string? FindRoot(string path, IssueList issues)
    {
        var full = Path.GetFullPath(path);
        if (!Directory.Exists(full))
        {
            issues.Add(full, DatasetProblem.MissingRoot, "dataset root not found (expected the VOCdevkit or VOC2012 folder)");
            return null;
        }
        foreach (var candidate in new[] { full, Path.Combine(full, "VOC2012"), Path.Combine(full, "VOCdevkit", "VOC2012") })
            if (Directory.Exists(Path.Combine(candidate, "JPEGImages"))) return candidate;
        issues.Add(full, DatasetProblem.MissingRoot, "no JPEGImages folder here, in VOC2012/ or in VOCdevkit/VOC2012/ (expected the VOCdevkit or VOC2012 folder)");
        return null;
    }

    /// <summary>Resolves root, list and files; reports every problem found and returns the usable samples (null if none can be listed).</summary>
    internal static (string Root, string ListFile, SampleSource Source)? Resolve(string rootPath, VocOptions options, IssueList issues)
    {
        var root = FindRoot(rootPath, issues);
        if (root is null) return null;
        var listFile = options.ListFile is not null
            ? Path.GetFullPath(options.ListFile)
            : Path.Combine(root, "ImageSets", "Segmentation", options.Split + ".txt");
        var entries = IdLists.ReadEntries(listFile, issues, IdLists.IdFromToken);
        if (entries is null) return null;

        var listName = Path.GetFileName(listFile);
        var ids = new List<string>();
        var images = new List<string>();
        var masks = new List<string?>();
        foreach (var e in entries)
        {
            // Ids are NFC (IdLists); files are found under either Unicode spelling of their name.
            var found = UnicodeNames.Existing(Path.Combine(root, "JPEGImages"), e.Id + ".jpg");
            var image = found ?? Path.Combine(root, "JPEGImages", e.Id + ".jpg");
            var imageOk = found is not null;
            if (!imageOk)
                issues.Add(image, DatasetProblem.MissingFile, $"id '{e.Id}' (line {e.Line} of {listName}) has no image file");
            string? mask = null;
            if (options.WithLabels)
            {
                var cls = Path.Combine(root, "SegmentationClass", e.Id + ".png");
                var aug = Path.Combine(root, "SegmentationClassAug", e.Id + ".png");
                string? In(string folder) => UnicodeNames.Existing(Path.Combine(root, folder), e.Id + ".png");
                mask = options.Masks switch
                {
                    VocMaskSource.SegmentationClass => In("SegmentationClass"),
                    VocMaskSource.SegmentationClassAug => In("SegmentationClassAug"),
                    _ => In("SegmentationClass") ?? In("SegmentationClassAug"),
                };
                if (mask is null)
                {
                    var (where, expected) = options.Masks switch
                    {
                        VocMaskSource.SegmentationClass => ("SegmentationClass/", cls),
                        VocMaskSource.SegmentationClassAug => ("SegmentationClassAug/", aug),
                        _ => ("SegmentationClass/ or SegmentationClassAug/", cls),
                    };
                    issues.Add(expected, DatasetProblem.MissingFile, $"id '{e.Id}' (line {e.Line} of {listName}) has no mask in {where}");
                }
            }
            if (!imageOk) continue;
            ids.Add(e.Id);
            images.Add(image);
            masks.Add(mask);
        }
        return (root, listFile, new SampleSource(Palettes.VocInfo, [.. ids], [.. images], [.. masks], maxPixels: options.MaxImagePixels));
    }
}
