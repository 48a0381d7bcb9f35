using System.Globalization;

namespace ContrastSeg.Data;

/// <summary>Options of <see cref="FolderDataset"/>.</summary>
public sealed record FolderOptions
{
    /// <summary>Split name: reads <c>splits/&lt;Split&gt;.txt</c>; null (default) takes every image in <c>images/</c>.</summary>
    public string? Split { get; init; }

    /// <summary>True: an image without a mask is an error instead of an unlabelled sample.</summary>
    public bool RequireMasks { get; init; }

    /// <summary>False: masks are ignored and every sample is unlabelled.</summary>
    public bool WithLabels { get; init; } = true;
}

/// <summary>
/// A custom dataset in plain folders: <c>images/&lt;stem&gt;.jpg|.jpeg|.png</c>, index masks
/// <c>masks/&lt;stem&gt;.png</c> (8-bit palette or grayscale), <c>classes.txt</c> (one class name per
/// line, optionally followed by an R G B display colour) and optional split lists
/// <c>splits/&lt;name&gt;.txt</c>. Images without a mask are unlabelled samples (Labels null).
/// Mask values must be class indices or 255 (ignore).
/// </summary>
public sealed class FolderDataset : ISegmentationDataset
{
    private static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png"];
    private readonly SampleSource _source;

    /// <summary>Opens the dataset at <paramref name="root"/>.</summary>
    /// <exception cref="DatasetException">Missing root/classes/split/files, a bad class table, an empty split or duplicate ids.</exception>
    public FolderDataset(string root, FolderOptions? options = null)
    {
        var issues = new IssueList();
        var resolved = Resolve(root, options ?? new FolderOptions(), issues);
        issues.ThrowIfAny();
        (Root, _source) = resolved!.Value;
    }

    /// <summary>The dataset root folder.</summary>
    public string Root { get; }

    /// <inheritdoc />
    public DatasetInfo Info => _source.Info;

    /// <inheritdoc />
    public IReadOnlyList<string> Ids => _source.Ids;

    /// <inheritdoc />
    public SegmentationSample Load(int index) => _source.Load(index);

    /// <summary>The image file of sample <paramref name="index"/>.</summary>
    public string ImagePath(int index) => _source.ImagePath(index);

    /// <summary>The mask file of sample <paramref name="index"/>, or null for an unlabelled sample.</summary>
    public string? MaskPath(int index) => _source.MaskPath(index);

    /// <summary>True when sample <paramref name="index"/> has a mask.</summary>
    public bool IsLabelled(int index) => _source.MaskPath(index) is not null;

    /// <summary>
    /// Reads a class table: one class per line, "name" or "name R G B" (the name may contain
    /// spaces); blank lines and '#' comments are skipped. Classes without a colour get the VOC
    /// palette colour of their index. At most 255 classes (255 is the ignore label).
    /// </summary>
    /// <exception cref="DatasetException">Missing file, no classes, too many classes, bad colour values.</exception>
    public static DatasetInfo ReadClassTable(string path, string? datasetName = null)
    {
        var issues = new IssueList();
        var info = ReadClassTable(path, datasetName ?? Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path))) ?? "folder", issues);
        issues.ThrowIfAny();
        return info!;
    }

    private static DatasetInfo? ReadClassTable(string path, string name, IssueList issues)
    {
        if (!File.Exists(path))
        {
            issues.Add(path, DatasetProblem.BadClassTable, "classes.txt not found (one class name per line, optionally 'name R G B')");
            return null;
        }
        var names = new List<string>();
        var colours = new List<Rgb>();
        var ok = true;
        var lines = File.ReadAllLines(path);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var tokens = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var colour = Palettes.VocColor(Math.Min(names.Count, 255));
            var className = line;
            if (tokens.Length >= 4 && tokens[^3..].All(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)))
            {
                var v = tokens[^3..].Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
                if (v.Any(c => c is < 0 or > 255))
                {
                    issues.Add(path, DatasetProblem.BadClassTable, $"line {i + 1}: colour values must be 0..255, got {string.Join(' ', v)}");
                    ok = false;
                }
                else colour = new Rgb((byte)v[0], (byte)v[1], (byte)v[2]);
                className = string.Join(' ', tokens[..^3]);
            }
            names.Add(className);
            colours.Add(colour);
        }
        if (names.Count == 0)
        {
            issues.Add(path, DatasetProblem.BadClassTable, "classes.txt lists no classes");
            return null;
        }
        if (names.Count > 255)
        {
            issues.Add(path, DatasetProblem.BadClassTable, $"{names.Count} classes; at most 255 fit an 8-bit mask with 255 as the ignore label");
            return null;
        }
        return ok ? new DatasetInfo(name, names, colours) : null;
    }

    /// <summary>Resolves classes, images, masks and the split; reports every problem found.</summary>
    internal static (string Root, SampleSource Source)? Resolve(string rootPath, FolderOptions options, IssueList issues)
    {
        var root = Path.GetFullPath(rootPath);
        if (!Directory.Exists(root))
        {
            issues.Add(root, DatasetProblem.MissingRoot, "dataset root not found (expected a folder with images/, masks/ and classes.txt)");
            return null;
        }
        var info = ReadClassTable(Path.Combine(root, "classes.txt"), Path.GetFileName(root), issues);
        var imagesDir = Path.Combine(root, "images");
        if (!Directory.Exists(imagesDir))
        {
            issues.Add(imagesDir, DatasetProblem.MissingRoot, "no images/ folder in the dataset root");
            return null;
        }

        // Every image by stem; two images with the same stem are ambiguous.
        var byStem = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(imagesDir).Order(StringComparer.Ordinal))
        {
            if (!ImageExtensions.Contains(Path.GetExtension(file).ToLowerInvariant())) continue;
            var stem = Path.GetFileNameWithoutExtension(file);
            if (byStem.TryGetValue(stem, out var other))
                issues.Add(file, DatasetProblem.DuplicateId, $"id '{stem}' has two images: {Path.GetFileName(other)} and {Path.GetFileName(file)}");
            else byStem[stem] = file;
        }

        List<(string Id, string Origin)> wanted;
        string? listName = null;
        if (options.Split is not null)
        {
            var listFile = Path.Combine(root, "splits", options.Split + ".txt");
            listName = Path.GetFileName(listFile);
            var entries = IdLists.ReadEntries(listFile, issues, IdLists.IdFromToken);
            if (entries is null) return null;
            wanted = entries.Select(e => (e.Id, $"line {e.Line} of {listName}")).ToList();
        }
        else
        {
            wanted = byStem.Keys.Order(StringComparer.Ordinal).Select(id => (id, "in images/")).ToList();
            if (wanted.Count == 0) issues.Add(imagesDir, DatasetProblem.EmptySplit, "empty dataset: no .jpg/.jpeg/.png files in images/");
        }

        var ids = new List<string>();
        var images = new List<string>();
        var masks = new List<string?>();
        foreach (var (id, origin) in wanted)
        {
            if (!byStem.TryGetValue(id, out var image))
            {
                issues.Add(Path.Combine(imagesDir, id + ".jpg"), DatasetProblem.MissingFile, $"id '{id}' ({origin}) has no image (.jpg/.jpeg/.png) in images/");
                continue;
            }
            string? mask = null;
            if (options.WithLabels)
            {
                mask = Path.Combine(root, "masks", id + ".png");
                if (!File.Exists(mask))
                {
                    if (options.RequireMasks) issues.Add(mask, DatasetProblem.MissingFile, $"id '{id}' ({origin}) has no mask");
                    mask = null;
                }
            }
            ids.Add(id);
            images.Add(image);
            masks.Add(mask);
        }
        // Without a usable class table the files are still checked (decoding, sizes); only the label range is unknown.
        info ??= new DatasetInfo(Path.GetFileName(root), Enumerable.Range(0, 255).Select(i => $"class{i}").ToArray(), Palettes.Voc.Take(255).ToArray());
        return (root, new SampleSource(info, [.. ids], [.. images], [.. masks]));
    }
}
