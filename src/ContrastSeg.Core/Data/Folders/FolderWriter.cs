using System.Globalization;

namespace ContrastSeg.Data;

/// <summary>
/// Writes samples of any dataset in the kit's folder format (<c>images/&lt;id&gt;.png</c>, palette masks
/// <c>masks/&lt;id&gt;.png</c>, <c>classes.txt</c> with colours, <c>splits/&lt;split&gt;.txt</c>): a worked
/// example of "your own data" that needs no download (the embedded scenes as a folder), and a way to hand
/// a subset of another dataset to the folder tools.
/// </summary>
public static class FolderWriter
{
    /// <summary>
    /// Writes <paramref name="count"/> samples of <paramref name="dataset"/> (the first ones) as split
    /// <paramref name="split"/> under <paramref name="root"/>; classes.txt is written (or checked to be the same).
    /// Returns the ids written.
    /// </summary>
    /// <exception cref="DatasetException">An existing classes.txt lists other classes.</exception>
    public static IReadOnlyList<string> WriteSplit(ISegmentationDataset dataset, string root, string split, int count)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (count < 1 || count > dataset.Ids.Count)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"must be between 1 and the {dataset.Ids.Count} samples of the dataset");
        foreach (var d in new[] { "images", "masks", "splits" }) Directory.CreateDirectory(Path.Combine(root, d));
        var classes = Path.Combine(root, "classes.txt");
        var table = dataset.Info.ClassNames.Select((name, i) =>
            string.Create(CultureInfo.InvariantCulture, $"{name} {dataset.Info.Palette[i].R} {dataset.Info.Palette[i].G} {dataset.Info.Palette[i].B}")).ToArray();
        if (File.Exists(classes) && !File.ReadAllLines(classes).SequenceEqual(table))
            throw new DatasetException($"lists other classes than {dataset.Info.Name}; write into an empty folder", classes);
        File.WriteAllLines(classes, table);
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var sample = dataset.Load(i);
            // Ids carry the split so the splits of a dataset whose ids restart per split never collide.
            var id = sample.Id.StartsWith(split + "-", StringComparison.Ordinal) ? sample.Id : $"{split}-{sample.Id}";
            ImageCodec.WriteRgbPng(Path.Combine(root, "images", id + ".png"), sample.Image);
            if (sample.Labels is { } labels) ImageCodec.WriteIndexPng(Path.Combine(root, "masks", id + ".png"), labels, dataset.Info.Palette);
            ids.Add(id);
        }
        File.WriteAllLines(Path.Combine(root, "splits", split + ".txt"), ids);
        return ids;
    }
}
