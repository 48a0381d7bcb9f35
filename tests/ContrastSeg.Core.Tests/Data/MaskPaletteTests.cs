using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// A palette mask is read by its indices (index i is class i), so its palette must show class i in the colour classes.txt
/// declares for class i. Before, masks saved with the palette in reversed order looked right in every viewer, passed the
/// validator and trained to mIoU 0.09 %.
/// </summary>
public class MaskPaletteTests
{
    private static readonly Rgb Black = new(0, 0, 0), Red = new(200, 0, 0), Green = new(0, 200, 0);

    private static void WriteClasses(TempFolderDataset data, params string[] lines) => File.WriteAllLines(data.File("classes.txt"), lines);

    /// <summary>The good labels of a 24x20 mask, stored with index <c>order[class]</c> for each class and <paramref name="palette"/>.</summary>
    private static void WritePaletteMask(string path, int[] order, params Rgb[] palette)
    {
        var labels = TestFiles.Labels(24, 20, TempFolderDataset.Classes);
        var stored = labels.Labels.Select(l => l == LabelMap.Ignore ? l : (byte)order[l]).ToArray();
        ImageCodec.WriteIndexPng(path, new LabelMap(24, 20, stored), palette);
    }

    [Fact]
    public void A_mask_whose_palette_is_in_reversed_order_is_refused_naming_the_mask_the_index_and_both_colours()
    {
        using var data = new TempFolderDataset(["a", "b"]);
        WriteClasses(data, "background 0 0 0", "thing 200 0 0", "other 0 200 0");
        WritePaletteMask(data.Mask("a"), [0, 1, 2], Black, Red, Green);
        // What a viewer shows is right (each class in its colour), but class 0 is stored as index 2, class 2 as index 0.
        WritePaletteMask(data.Mask("b"), [2, 1, 0], Green, Red, Black);
        var options = new FolderOptions { Split = "train" };

        var report = DatasetValidator.ValidateFolder(data.Root, options, maxParallelism: 2);
        var issue = Assert.Single(report.Issues);
        Assert.Equal(DatasetProblem.PaletteMismatch, issue.Problem);
        Assert.Equal(data.Mask("b"), issue.File);
        Assert.Contains($"palette index 0 (", issue.Message);
        Assert.Contains($"has colour 0 200 0, but {data.File("classes.txt")} declares class 0 'background' as 0 0 0", issue.Message);
        Assert.Contains("although they show the colour of class 2 'other'", issue.Message);
        Assert.Contains("1 more used index differs: 2", issue.Message);
        Assert.Contains("another order than", issue.Message);

        var ds = new FolderDataset(data.Root, options);
        var e = Assert.Throws<DatasetException>(() => ds.Load(1));
        Assert.Equal(data.Mask("b"), e.Path);
        Assert.Contains("palette index 0", e.Message);
        Assert.NotNull(ds.Load(0).Labels);
        var check = DatasetValidator.CheckBeforeRun([new DataPart("training split 'train'", ds, [0, 1], NeedsLabels: true)], maxParallelism: 2);
        Assert.Equal(DatasetProblem.PaletteMismatch, Assert.Single(check.Issues).Problem);
    }

    [Fact]
    public void The_colours_compared_are_those_classes_txt_gives_names_with_spaces_or_a_trailing_number()
    {
        // classes.txt is read by ClassTable (issue 29, case 4): "traffic light 200 0 0" is a colour of a name with a space,
        // "lane 2 0 200 0" one of a name ending in a number; these colours are the ones a palette mask must show.
        using var data = new TempFolderDataset(["a", "b"]);
        WriteClasses(data, "background 0 0 0", "traffic light 200 0 0", "lane 2 0 200 0");
        WritePaletteMask(data.Mask("a"), [0, 1, 2], Black, Red, Green);
        WritePaletteMask(data.Mask("b"), [0, 1, 2], Black, Green, Red);
        var report = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }, maxParallelism: 2);
        var issue = Assert.Single(report.Issues);
        Assert.Equal((data.Mask("b"), DatasetProblem.PaletteMismatch), (issue.File, issue.Problem));
        Assert.Contains("declares class 1 'traffic light' as 200 0 0", issue.Message);
        Assert.Contains("colour of class 2 'lane 2'", issue.Message);

        // A table ClassTable refuses (a colour given twice) is a BadClassTable problem, and the masks are still read.
        WriteClasses(data, "background 0 0 0", "traffic light 200 0 0", "lane 2 200 0 0");
        var refused = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }, maxParallelism: 2);
        Assert.Equal(DatasetProblem.BadClassTable, Assert.Single(refused.Issues).Problem);
    }

    [Fact]
    public void Only_the_used_indices_and_the_declared_colours_are_compared()
    {
        using var data = new TempFolderDataset(["a", "b", "c"]);
        WriteClasses(data, "background 0 0 0", "thing 200 0 0", "other 0 200 0");
        // Entries no pixel uses may be anything (here index 3, and 255, the ignore label, padded black).
        WritePaletteMask(data.Mask("a"), [0, 1, 2], Black, Red, Green, new Rgb(1, 2, 3));
        // A grayscale mask has no colours to compare (mask "c" as the fixture wrote it).
        Assert.Null(ImageCodec.ReadPalette(data.Mask("c")));
        // Index 0 has another colour than classes.txt's, but no pixel of mask b uses it.
        var onlyOne = TestFiles.Labels(24, 20, 3).Labels.Select(l => l == 0 ? (byte)1 : l).ToArray();
        ImageCodec.WriteIndexPng(data.Mask("b"), new LabelMap(24, 20, onlyOne), [Green, Red, Green]);
        Assert.True(DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }).IsValid);

        // A class without a colour in classes.txt has none to compare: names only, any palette passes.
        WriteClasses(data, "background", "thing 200 0 0", "other");
        WritePaletteMask(data.Mask("a"), [2, 1, 0], Green, Red, Black);
        var report = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" });
        Assert.True(report.IsValid, report.ToString());
        WriteClasses(data, "background", "thing", "other");
        WritePaletteMask(data.Mask("a"), [0, 1, 2], Palettes.VocColor(5), Palettes.VocColor(9), Palettes.VocColor(1));
        Assert.True(DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }).IsValid);
    }
}
