namespace ContrastSeg.Data;

/// <summary>Options of <see cref="CityscapesDataset"/>.</summary>
public sealed record CityscapesOptions
{
    /// <summary>Split folder under <c>leftImg8bit/</c> and <c>gtFine/</c>: "train", "val" or "test". Default "train".</summary>
    public string Split { get; init; } = "train";

    /// <summary>
    /// Optional id-list file instead of folder discovery. A line is a frame id
    /// ("frankfurt_000000_000294") or a path pair as in UniMatch lists
    /// ("leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png gtFine/..."), whose split folder is then used.
    /// </summary>
    public string? ListFile { get; init; }

    /// <summary>
    /// True: read the pre-generated <c>_gtFine_labelTrainIds.png</c> (cityscapesScripts output, not in
    /// the official download). False (default): read <c>_gtFine_labelIds.png</c> and map it with
    /// <see cref="CityscapesDataset.LabelIdToTrainId"/>.
    /// </summary>
    public bool UseTrainIdFiles { get; init; }

    /// <summary>False: samples carry no labels and masks are not required.</summary>
    public bool WithLabels { get; init; } = true;

    /// <summary>The most pixels an image or mask may have; a larger one is refused before decoding (<see cref="PixelLimit"/>).</summary>
    public int MaxImagePixels { get; init; } = PixelLimit.Default;
}

/// <summary>
/// Cityscapes fine annotations: <c>leftImg8bit/&lt;split&gt;/&lt;city&gt;/&lt;city&gt;_&lt;seq&gt;_&lt;frame&gt;_leftImg8bit.png</c>
/// with <c>gtFine/&lt;split&gt;/&lt;city&gt;/..._gtFine_labelIds.png</c> mapped to the 19 trainIds (everything else 255).
/// Cities come from the folders (sorted), frames sorted within a city; ids are frame names.
/// </summary>
public sealed class CityscapesDataset : FileDataset
{
    private const string ImageSuffix = "_leftImg8bit.png";

    /// <summary>Opens the dataset; <paramref name="root"/> holds <c>leftImg8bit/</c> and <c>gtFine/</c>.</summary>
    /// <exception cref="DatasetException">Missing root/split/list/files, an empty split or duplicate ids.</exception>
    public CityscapesDataset(string root, CityscapesOptions? options = null)
    {
        var issues = new IssueList();
        var resolved = Resolve(root, options ?? new CityscapesOptions(), issues);
        issues.ThrowIfAny();
        (Root, Cities, Source) = resolved!.Value;
    }

    /// <summary>The dataset root folder.</summary>
    public string Root { get; }

    /// <summary>Cities of the listed frames, sorted (ordinal).</summary>
    public IReadOnlyList<string> Cities { get; }

    /// <summary>The official labelId -> trainId table as a 256-entry lookup (unlisted ids, incl. license plate, -> 255).</summary>
    public static IReadOnlyList<byte> LabelIdToTrainId => Lut;

    private static readonly byte[] Lut = BuildLut();

    private static byte[] BuildLut()
    {
        var lut = Enumerable.Repeat(LabelMap.Ignore, 256).ToArray();
        int[] labelIds = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33];
        for (var trainId = 0; trainId < labelIds.Length; trainId++) lut[labelIds[trainId]] = (byte)trainId;
        return lut;
    }

    /// <summary>Maps a labelIds map to trainIds (0..18, 255 elsewhere).</summary>
    public static LabelMap MapLabelIds(LabelMap labelIds)
    {
        ArgumentNullException.ThrowIfNull(labelIds);
        var mapped = new byte[labelIds.Labels.Length];
        for (var i = 0; i < mapped.Length; i++) mapped[i] = Lut[labelIds.Labels[i]];
        return new LabelMap(labelIds.Width, labelIds.Height, mapped);
    }

    /// <summary>The city of a frame id "&lt;city&gt;_&lt;seq&gt;_&lt;frame&gt;" (city names have no underscore, but be safe).</summary>
    internal static string? CityOf(string id)
    {
        var parts = id.Split('_');
        return parts.Length >= 3 ? string.Join('_', parts[..^2]) : null;
    }

    private static string IdFromToken(string token)
    {
        var name = token.Replace('\\', '/');
        name = name[(name.LastIndexOf('/') + 1)..];
        if (name.EndsWith(ImageSuffix, StringComparison.Ordinal)) return name[..^ImageSuffix.Length];
        return name.EndsWith(".png", StringComparison.OrdinalIgnoreCase) ? name[..^4] : name;
    }

    /// <summary>Resolves the frames and files; reports every problem found and returns the usable samples.</summary>
    internal static (string Root, IReadOnlyList<string> Cities, SampleSource Source)? Resolve(string rootPath, CityscapesOptions options, IssueList issues)
    {
        var root = Path.GetFullPath(rootPath);
        if (!Directory.Exists(root))
        {
            issues.Add(root, DatasetProblem.MissingRoot, "dataset root not found (expected the folder holding leftImg8bit/ and gtFine/)");
            return null;
        }
        var imagesRoot = Path.Combine(root, "leftImg8bit");
        if (!Directory.Exists(imagesRoot))
        {
            issues.Add(root, DatasetProblem.MissingRoot, "no leftImg8bit folder in the dataset root");
            return null;
        }

        // (id, split, city, origin for messages)
        var frames = new List<(string Id, string Split, string City, string Origin)>();
        if (options.ListFile is not null)
        {
            var listFile = Path.GetFullPath(options.ListFile);
            var entries = IdLists.ReadEntries(listFile, issues, IdFromToken);
            if (entries is null) return null;
            foreach (var e in entries)
            {
                var split = options.Split;
                var parts = e.Text.Replace('\\', '/').Split('/');
                if (parts.Length >= 4 && parts[^4] == "leftImg8bit") split = parts[^3];
                var city = CityOf(e.Id);
                if (city is null)
                {
                    issues.Add(listFile, DatasetProblem.Other, $"line {e.Line}: '{e.Text}' is not a Cityscapes frame (<city>_<seq>_<frame>)");
                    continue;
                }
                frames.Add((e.Id, split, city, $"line {e.Line} of {Path.GetFileName(listFile)}"));
            }
        }
        else
        {
            var splitDir = Path.Combine(imagesRoot, options.Split);
            if (!Directory.Exists(splitDir))
            {
                var have = Directory.GetDirectories(imagesRoot).Select(Path.GetFileName).Order(StringComparer.Ordinal);
                issues.Add(splitDir, DatasetProblem.MissingSplitFile, $"split folder '{options.Split}' not found (available: {string.Join(", ", have)})");
                return null;
            }
            foreach (var cityDir in Directory.GetDirectories(splitDir).Order(StringComparer.Ordinal))
            {
                var city = Path.GetFileName(cityDir);
                foreach (var file in Directory.GetFiles(cityDir, "*" + ImageSuffix).Order(StringComparer.Ordinal))
                    frames.Add((Path.GetFileName(file)[..^ImageSuffix.Length], options.Split, city, $"found in {options.Split}/{city}"));
            }
            if (frames.Count == 0)
                issues.Add(splitDir, DatasetProblem.EmptySplit, $"empty split: no *{ImageSuffix} files in any city folder");
        }

        var ids = new List<string>();
        var images = new List<string>();
        var masks = new List<string?>();
        var maskSuffix = options.UseTrainIdFiles ? "_gtFine_labelTrainIds.png" : "_gtFine_labelIds.png";
        foreach (var (id, split, city, origin) in frames)
        {
            var image = Path.Combine(imagesRoot, split, city, id + ImageSuffix);
            var imageOk = File.Exists(image);
            if (!imageOk) issues.Add(image, DatasetProblem.MissingFile, $"frame '{id}' ({origin}) has no image file");
            string? mask = null;
            if (options.WithLabels)
            {
                mask = Path.Combine(root, "gtFine", split, city, id + maskSuffix);
                if (!File.Exists(mask))
                {
                    var hint = options.UseTrainIdFiles ? " (labelTrainIds files are generated by cityscapesScripts; set UseTrainIdFiles = false to map labelIds)" : "";
                    issues.Add(mask, DatasetProblem.MissingFile, $"frame '{id}' ({origin}) has no mask file{hint}");
                    mask = null;
                }
            }
            if (!imageOk) continue;
            ids.Add(id);
            images.Add(image);
            masks.Add(mask);
        }
        var cities = frames.Select(f => f.City).Distinct().Order(StringComparer.Ordinal).ToArray();
        var source = new SampleSource(Palettes.CityscapesInfo, [.. ids], [.. images], [.. masks], options.UseTrainIdFiles ? null : Lut, options.MaxImagePixels);
        return (root, cities, source);
    }
}
