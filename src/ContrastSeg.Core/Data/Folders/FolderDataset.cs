namespace ContrastSeg.Data;

/// <summary>Options of <see cref="FolderDataset"/>.</summary>
public sealed record FolderOptions
{
    /// <summary>Split name: reads <c>splits/&lt;Split&gt;.txt</c>; null (default) takes every image in <c>images/</c>.</summary>
    public string? Split { get; init; }

    /// <summary>
    /// True: an image without a mask is an unlabelled sample. False (default): it is an error naming the
    /// image, the expected mask and any near-miss file, unless the split file declares itself with the line
    /// <c>#unlabelled</c> (see <see cref="FolderDataset.UnlabelledDirective"/>).
    /// </summary>
    public bool AllowUnlabelled { get; init; }

    /// <summary>False: masks are ignored and every sample is unlabelled.</summary>
    public bool WithLabels { get; init; } = true;

    /// <summary>The most pixels an image or mask may have; a larger one is refused before decoding (<see cref="PixelLimit"/>).</summary>
    public int MaxImagePixels { get; init; } = PixelLimit.Default;
}

/// <summary>
/// A custom dataset in plain folders: <c>images/&lt;stem&gt;.jpg|.jpeg|.png</c>, index masks
/// <c>masks/&lt;stem&gt;.png</c> (8-bit palette or grayscale), <c>classes.txt</c> (one class name per
/// line, optionally followed by an R G B colour: the display colour, which a palette mask must show the class in,
/// see <see cref="MaskPalettes"/>) and optional split lists
/// <c>splits/&lt;name&gt;.txt</c> (one id per line, spaces included, or a pair of image and mask paths; see
/// <see cref="IdLists"/>). Ids and file names are compared in NFC. Every image needs its mask, named exactly <c>masks/&lt;id&gt;.png</c>;
/// only a split whose list file holds the line <c>#unlabelled</c> (or <see cref="FolderOptions.AllowUnlabelled"/>)
/// may have images without one, which are then unlabelled samples (Labels null) and are used only
/// where no label is needed (pseudo-labelling, prediction). Mask values must be class indices or 255 (ignore).
/// </summary>
public sealed class FolderDataset : FileDataset
{
    private static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png"];

    /// <summary>The line that declares a split file's images without a mask as unlabelled (also "# unlabelled", "#unlabeled"; any case).</summary>
    public const string UnlabelledDirective = "#unlabelled";


    /// <summary>Opens the dataset at <paramref name="root"/>.</summary>
    /// <exception cref="DatasetException">Missing root/classes/split/files, a bad class table, an empty split, duplicate ids,
    /// or an image without its mask in a split not declared unlabelled.</exception>
    public FolderDataset(string root, FolderOptions? options = null)
    {
        var issues = new IssueList();
        var resolved = Resolve(root, options ?? new FolderOptions(), issues);
        issues.ThrowIfAny();
        (Root, SplitFile, AllowsUnlabelled, Source) = resolved!.Value;
    }

    /// <summary>The dataset root folder.</summary>
    public string Root { get; }

    /// <summary>The split's list file, or null when the dataset is every image in <c>images/</c>.</summary>
    public string? SplitFile { get; }

    /// <summary>True when images without a mask are unlabelled samples (the split is declared unlabelled, or the options say so).</summary>
    public bool AllowsUnlabelled { get; }

    /// <summary>True when sample <paramref name="index"/> has a mask.</summary>
    public bool IsLabelled(int index) => Source.MaskPath(index) is not null;

    /// <summary>The indices of the samples that have a mask, ascending.</summary>
    public IReadOnlyList<int> LabelledIndices => Enumerable.Range(0, Ids.Count).Where(IsLabelled).ToArray();

    /// <summary>True when <paramref name="line"/> is the <see cref="UnlabelledDirective"/>.</summary>
    public static bool IsUnlabelledDirective(string line)
    {
        var t = line.Trim();
        if (t.Length == 0 || t[0] != '#') return false;
        t = t[1..].Trim();
        return t.Equals("unlabelled", StringComparison.OrdinalIgnoreCase) || t.Equals("unlabeled", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Reads a class table: one class per line, "name" or "name R G B" (the name may contain
    /// spaces); blank lines and '#' comments are skipped. Classes without a colour get the VOC
    /// palette colour of their index. 2 to 255 classes (255 is the ignore label); see <see cref="ClassTable"/>
    /// for what is refused.
    /// </summary>
    /// <exception cref="DatasetException">Missing file, fewer than 2 or more than 255 classes, a bad colour, a name or colour given twice (with its line).</exception>
    public static DatasetInfo ReadClassTable(string path, string? datasetName = null)
    {
        var issues = new IssueList();
        var table = ClassTable.Read(path, datasetName ?? Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path))) ?? "folder", issues);
        issues.ThrowIfAny();
        return table!.Value.Info;
    }

    /// <summary>Resolves classes, images, masks and the split; reports every problem found.</summary>
    internal static (string Root, string? SplitFile, bool AllowsUnlabelled, SampleSource Source)? Resolve(string rootPath, FolderOptions options, IssueList issues)
    {
        var root = Path.GetFullPath(rootPath);
        if (!Directory.Exists(root))
        {
            issues.Add(root, DatasetProblem.MissingRoot, "dataset root not found (expected a folder with images/, masks/ and classes.txt)");
            return null;
        }
        var table = ClassTable.Read(Path.Combine(root, "classes.txt"), Path.GetFileName(root), issues);
        var info = table?.Info;
        var imagesDir = Path.Combine(root, "images");
        if (!Directory.Exists(imagesDir))
        {
            issues.Add(imagesDir, DatasetProblem.MissingRoot, "no images/ folder in the dataset root");
            return null;
        }

        // Every image by stem (in NFC, as list ids are); two images with the same stem are ambiguous.
        var byStem = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(imagesDir).Order(StringComparer.Ordinal))
        {
            if (!ImageExtensions.Contains(Path.GetExtension(file).ToLowerInvariant())) continue;
            var stem = UnicodeNames.Nfc(Path.GetFileNameWithoutExtension(file));
            if (byStem.TryGetValue(stem, out var other))
                issues.Add(file, DatasetProblem.DuplicateId, $"id '{stem}' has two images: {Path.GetFileName(other)} and {Path.GetFileName(file)}");
            else byStem[stem] = file;
        }

        List<(string Id, string Origin, string? Text)> wanted;
        string? listFile = null;
        var allowUnlabelled = options.AllowUnlabelled;
        if (options.Split is not null)
        {
            listFile = Path.Combine(root, "splits", options.Split + ".txt");
            var listName = Path.GetFileName(listFile);
            var entries = IdLists.ReadEntries(listFile, issues, IdLists.IdFromToken);
            if (entries is null) return null;
            wanted = entries.Select(e => (e.Id, $"line {e.Line} of {listName}" + (e.Text == e.Id ? "" : $": '{e.Text}'"), (string?)e.Text)).ToList();
            allowUnlabelled |= File.ReadLines(listFile).Any(IsUnlabelledDirective);
        }
        else
        {
            wanted = byStem.Keys.Order(StringComparer.Ordinal).Select(id => (id, "in images/", (string?)null)).ToList();
            if (wanted.Count == 0) issues.Add(imagesDir, DatasetProblem.EmptySplit, "empty dataset: no .jpg/.jpeg/.png files in images/");
        }

        var masksDir = Path.Combine(root, "masks");
        var masks = options.WithLabels ? new MaskFinder(masksDir, byStem.Keys) : null;
        var ids = new List<string>();
        var images = new List<string>();
        var maskPaths = new List<string?>();
        var missing = new List<(string Id, string Origin, string Image)>();
        foreach (var (id, origin, text) in wanted)
        {
            if (!byStem.TryGetValue(id, out var image))
            {
                issues.Add(Path.Combine(imagesDir, id + ".jpg"), DatasetProblem.MissingFile,
                    $"id '{id}' ({origin}) has no image (.jpg/.jpeg/.png) in images/{CutLineHint(text, byStem)}");
                continue;
            }
            var mask = masks?.Exact(id);
            if (masks is not null && mask is null && !allowUnlabelled) missing.Add((id, origin, image));
            ids.Add(id);
            images.Add(image);
            maskPaths.Add(mask);
        }
        if (missing.Count > 0) ReportMissingMasks(root, listFile, masks!, missing, issues);
        // Without a usable class table the files are still checked (decoding, sizes); only the label range is unknown.
        info ??= new DatasetInfo(Path.GetFileName(root), Enumerable.Range(0, 255).Select(i => $"class{i}").ToArray(), Palettes.Voc.Take(255).ToArray());
        return (root, listFile, allowUnlabelled, new SampleSource(info, [.. ids], [.. images], [.. maskPaths], maxPixels: options.MaxImagePixels, declaredColours: table?.Declared));
    }

    /// <summary>
    /// For a list line with spaces whose whole text names no image: the image its first word names, if there is one.
    /// Lines used to be cut at the first space; now the whole line is the id, so say why that image is not taken.
    /// </summary>
    private static string CutLineHint(string? text, Dictionary<string, string> byStem)
    {
        if (text is null || !text.Any(char.IsWhiteSpace)) return "";
        var first = UnicodeNames.Nfc(IdLists.IdFromToken(text.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries)[0]));
        return byStem.TryGetValue(first, out var image)
            ? $"; images/{Path.GetFileName(image)} exists, but a line is one id as a whole, spaces included (or a pair of image and mask paths): " +
              $"to use that image, write just '{first}'"
            : "";
    }

    /// <summary>
    /// Reports images without their mask in a split that is not declared unlabelled: one issue for a missing
    /// <c>masks/</c> folder, else one per image, naming the image, the expected mask and any near-miss file.
    /// The first issue says how to declare unlabelled images.
    /// </summary>
    private static void ReportMissingMasks(string root, string? listFile, MaskFinder masks, List<(string Id, string Origin, string Image)> missing, IssueList issues)
    {
        var declare = listFile is null
            ? "If these images are meant to be unlabelled, list them in a split file (splits/<name>.txt) that holds the line " +
              $"'{UnlabelledDirective}'; they are then used only where no label is needed (pseudo-labelling, prediction)."
            : $"If the images of {Path.GetFileName(listFile)} are meant to be unlabelled, add the line '{UnlabelledDirective}' to {listFile}; " +
              "images without a mask are then used only where no label is needed (pseudo-labelling, prediction), and training and scoring use the others.";
        var first = missing[0];
        if (!masks.FolderExists)
        {
            var others = Directory.GetDirectories(root).Select(Path.GetFileName)
                .Where(n => n is not ("images" or "splits")).Order(StringComparer.Ordinal).ToArray();
            issues.Add(masks.Folder, DatasetProblem.MissingRoot,
                $"no masks/ folder: {missing.Count} image{(missing.Count == 1 ? "" : "s")} ({first.Origin}: {first.Image}, and the rest) have no mask; " +
                $"expected {Path.Combine(masks.Folder, first.Id + ".png")}" +
                (others.Length > 0 ? $"; other folders in the dataset root: {string.Join(", ", others.Select(o => o + "/"))} (the masks folder must be named exactly masks)" : "") +
                ". " + declare);
            return;
        }
        for (var k = 0; k < missing.Count; k++)
        {
            var (id, origin, image) = missing[k];
            var near = masks.NearMisses(id);
            var found = near.Count == 0 ? ""
                : $"; found {string.Join(", ", near.Take(3).Select(n => "masks/" + n))}{(near.Count > 3 ? $" and {near.Count - 3} more" : "")}" +
                  " (a mask must be named exactly <id>.png, with the image's id and a lower-case .png)";
            issues.Add(Path.Combine(masks.Folder, id + ".png"), DatasetProblem.MissingFile,
                $"image {image} ({origin}) has no mask: expected masks/{id}.png{found}" + (k == 0 ? ". " + declare : ""));
        }
    }

    /// <summary>The files of <c>masks/</c>: the exact mask of an id, and near misses (same id with another suffix, extension or case).</summary>
    private sealed class MaskFinder
    {
        private readonly HashSet<string> _imageIds;
        private (string Lower, string Name)[]? _sorted; // built on the first near-miss lookup

        public MaskFinder(string folder, IEnumerable<string> imageIds)
        {
            Folder = folder;
            FolderExists = Directory.Exists(folder);
            _imageIds = new HashSet<string>(imageIds, StringComparer.Ordinal);
        }

        public string Folder { get; }

        public bool FolderExists { get; }

        /// <summary><c>masks/&lt;id&gt;.png</c> when it exists (named in NFC or NFD), else null.</summary>
        public string? Exact(string id) => FolderExists ? UnicodeNames.Existing(Folder, id + ".png") : null;

        /// <summary>
        /// Files named like <paramref name="id"/>'s mask but not exactly: the id in any case followed by an
        /// extension or a suffix after '_', '-', '.' or ' ' (e.g. id_L.png, id.PNG, id.jpg, ID.png); the exact
        /// mask of another image's id is not one.
        /// </summary>
        public IReadOnlyList<string> NearMisses(string id)
        {
            _sorted ??= (FolderExists ? Directory.GetFiles(Folder) : []).Select(f => UnicodeNames.Nfc(Path.GetFileName(f))).Select(n => (n.ToLowerInvariant(), n))
                .OrderBy(x => x.Item1, StringComparer.Ordinal).ToArray();
            var key = id.ToLowerInvariant();
            var lo = 0;
            var hi = _sorted.Length;
            while (lo < hi) // first entry >= key
            {
                var mid = (lo + hi) / 2;
                if (string.CompareOrdinal(_sorted[mid].Lower, key) < 0) lo = mid + 1;
                else hi = mid;
            }
            var found = new List<string>();
            for (var i = lo; i < _sorted.Length && _sorted[i].Lower.StartsWith(key, StringComparison.Ordinal); i++)
            {
                var (lower, name) = _sorted[i];
                if (lower.Length == key.Length || lower[key.Length] is not ('.' or '_' or '-' or ' ')) continue;
                if (name == id + ".png") continue;
                var stem = Path.GetFileNameWithoutExtension(name);
                if (stem != id && _imageIds.Contains(stem) && name == stem + ".png") continue; // another image's own mask
                found.Add(name);
            }
            return found;
        }
    }
}
