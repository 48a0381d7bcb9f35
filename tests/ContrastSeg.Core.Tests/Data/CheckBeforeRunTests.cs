using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>The fast check of a run's data before its first step: image headers and completeness, masks in full.</summary>
public class CheckBeforeRunTests
{
    private static ValidationReport Check(FolderDataset ds, bool needsLabels = true) =>
        DatasetValidator.CheckBeforeRun([new DataPart("validation split 'val'", ds, Enumerable.Range(0, ds.Ids.Count).ToArray(), needsLabels)], maxParallelism: 2);

    [Fact]
    public void The_size_of_an_image_comes_from_its_header_and_a_truncated_file_is_still_found()
    {
        using var data = new TempFolderDataset(["a"]);
        Assert.Equal((24, 20), ImageCodec.ProbeImage(data.Image("a")));
        var png = data.File("images", "p.png");
        ImageCodec.WriteRgbPng(png, TestFiles.Pattern(7, 5));
        Assert.Equal((7, 5), ImageCodec.ProbeImage(png));

        // Bytes after the end-of-image marker (some cameras append data) are no defect: the full decode that follows says so.
        var jpeg = File.ReadAllBytes(data.Image("a"));
        File.WriteAllBytes(data.Image("a"), [.. jpeg, 1, 2, 3, 4]);
        Assert.Equal((24, 20), ImageCodec.ProbeImage(data.Image("a")));

        File.WriteAllBytes(data.Image("a"), jpeg[..(jpeg.Length * 2 / 3)]);
        var e = Assert.Throws<DatasetException>(() => ImageCodec.ProbeImage(data.Image("a")));
        Assert.Equal(data.Image("a"), e.Path);
        Assert.Contains("truncated JPEG", e.Message);
    }

    public static TheoryData<string, string, DatasetProblem> Defects => new()
    {
        { "text", "image", DatasetProblem.CorruptFile },
        { "truncated", "image", DatasetProblem.CorruptFile },
        { "missing", "image", DatasetProblem.MissingFile },
        { "size", "mask", DatasetProblem.SizeMismatch },
        { "range", "mask", DatasetProblem.LabelOutOfRange },
        { "rgb", "mask", DatasetProblem.NotIndexMask },
        { "truncated", "mask", DatasetProblem.CorruptFile },
    };

    [Theory]
    [MemberData(nameof(Defects))]
    public void Every_defect_the_validator_finds_is_found_and_names_the_file(string defect, string file, DatasetProblem kind)
    {
        using var data = new TempFolderDataset(["a", "b"]);
        var path = file == "image" ? data.Image("b") : data.Mask("b");
        var ds = new FolderDataset(data.Root, new FolderOptions { Split = "train" });
        switch (defect)
        {
            case "text": File.WriteAllText(path, "not an image"); break;
            case "truncated": var bytes = File.ReadAllBytes(path); File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]); break;
            case "missing": File.Delete(path); break;
            case "size": ImageCodec.WriteGrayscalePng(path, TestFiles.Labels(24, 19, 3)); break;
            case "range": var l = TestFiles.Labels(24, 20, 3); l.Labels[30] = 7; ImageCodec.WriteGrayscalePng(path, l); break;
            case "rgb": TestFiles.WriteSkiaPng(path, 24, 20); break;
        }
        var report = Check(ds);
        var issue = Assert.Single(report.Issues);
        Assert.Equal((path, kind), (issue.File, issue.Problem));
        var e = Assert.Throws<DatasetException>(report.ThrowIfInvalid);
        Assert.StartsWith(path + ": ", e.Message);
        // The validator's full check finds the same.
        Assert.Equal([(path, kind)], DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }).Issues.Select(i => (i.File, i.Problem)));
    }

    [Fact]
    public void A_split_whose_masks_are_all_ignore_is_an_error_naming_the_split_where_labels_are_needed()
    {
        using var data = new TempFolderDataset(["a", "b"]);
        foreach (var id in new[] { "a", "b" }) ImageCodec.WriteGrayscalePng(data.Mask(id), new LabelMap(24, 20, Enumerable.Repeat(LabelMap.Ignore, 24 * 20).ToArray()));
        var ds = new FolderDataset(data.Root, new FolderOptions { Split = "train" });
        var issue = Assert.Single(Check(ds).Issues);
        Assert.Equal(("validation split 'val'", DatasetProblem.EmptySplit), (issue.File, issue.Problem));
        Assert.Contains("no labelled pixel in the 2 masks", issue.Message);
        Assert.True(Check(ds, needsLabels: false).IsValid); // prediction reads the images only
    }

    [Fact]
    public void Images_without_a_mask_in_a_part_that_needs_labels_are_errors()
    {
        using var data = new TempFolderDataset(["a", "b"]);
        File.Delete(data.Mask("b"));
        data.WriteSplit("train", "#unlabelled", "a", "b");
        var ds = new FolderDataset(data.Root, new FolderOptions { Split = "train" });
        var issue = Assert.Single(Check(ds).Issues);
        Assert.Equal(data.Image("b"), issue.File);
        Assert.Contains("has no mask", issue.Message);
        var ok = Check(ds, needsLabels: false);
        Assert.True(ok.IsValid, ok.ToString());
        Assert.Equal(2, ok.SamplesChecked);
    }
}
