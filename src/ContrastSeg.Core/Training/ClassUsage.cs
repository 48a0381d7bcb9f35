using ContrastSeg.Data;

namespace ContrastSeg.Training;

/// <summary>
/// Which classes of a folder dataset's <c>classes.txt</c> its masks use. A class nobody labels still gets a classifier
/// output, trained only to be absent, and a class table copied from another dataset is an easy mistake: worth a warning.
/// </summary>
public static class ClassUsage
{
    /// <summary>The class indices of <c>classes.txt</c> that no mask of the training or validation split uses (folder datasets; empty for others).</summary>
    public static IReadOnlyList<int> UnusedFolderClasses(DataSettings d, out int masks)
    {
        masks = 0;
        if (d.Dataset != "folder" || d.Root is null) return Array.Empty<int>();
        var paths = new[] { d.TrainSplit, d.ValSplit }.Distinct()
            .Select(split => new FolderDataset(d.Root, new FolderOptions { Split = split, MaxImagePixels = d.MaxImagePixels }))
            .SelectMany(ds => Enumerable.Range(0, ds.Ids.Count).Select(ds.MaskPath))
            .OfType<string>().Distinct().ToArray();
        masks = paths.Length;
        var used = new bool[256];
        Parallel.ForEach(paths, () => new bool[256], (path, _, seen) =>
        {
            foreach (var v in ImageCodec.DecodeIndexPng(path, d.MaxImagePixels).Labels) seen[v] = true;
            return seen;
        }, seen => { lock (used) for (var v = 0; v < 256; v++) used[v] |= seen[v]; });
        var classes = FolderDataset.ReadClassTable(Path.Combine(d.Root, "classes.txt")).NumClasses;
        return Enumerable.Range(0, classes).Where(c => !used[c]).ToArray();
    }

    /// <summary>A warning naming the file and the classes no mask uses, or null when every class is used (or the data is not a folder).</summary>
    public static string? Warning(DataSettings d)
    {
        var unused = UnusedFolderClasses(d, out var masks);
        if (unused.Count == 0) return null;
        var file = Path.GetFullPath(Path.Combine(d.Root!, "classes.txt"));
        var info = FolderDataset.ReadClassTable(file);
        var names = string.Join(", ", unused.Take(20).Select(c => $"{c} '{info.ClassNames[c]}'")) + (unused.Count > 20 ? ", ..." : "");
        return $"{file} lists {info.NumClasses} classes, but no mask of the {d.TrainSplit} and {d.ValSplit} splits ({masks} masks) uses " +
               $"{unused.Count} of them: {names}. The model still gets an output for each, trained only to be absent (a pixel predicted as one scores an IoU of 0 in mIoU); " +
               "if they do not belong to this data, remove them from classes.txt (mask values are class indices: removing a class renumbers the ones after it)";
    }
}
