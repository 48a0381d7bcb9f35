using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// A folder split's image without <c>masks/&lt;id&gt;.png</c> is an error (reader and validator), not a silently
/// unlabelled sample, unless the split file declares itself unlabelled.
/// </summary>
public class FolderMaskTests
{
    [Theory]
    [InlineData("{0}_L.png")] // CamVid's convention
    [InlineData("{0}.PNG")]
    [InlineData("{0}.jpg")]
    [InlineData("B.png")]     // the id in another case
    public void A_mask_named_otherwise_is_an_error_naming_the_image_the_expected_mask_and_the_near_miss(string pattern)
    {
        using var data = new TempFolderDataset(["a", "b", "b_1"]);
        var nearMiss = string.Format(pattern, "b");
        File.Move(data.Mask("b"), data.File("masks", nearMiss));

        var e = Assert.Throws<DatasetException>(() => new FolderDataset(data.Root, new FolderOptions { Split = "train" }));
        Assert.Equal(data.Mask("b"), e.Path); // the expected mask
        Assert.Contains(data.Image("b"), e.Message);
        Assert.Contains("line 2 of train.txt", e.Message);
        Assert.Contains("expected masks/b.png", e.Message);
        Assert.Contains("found masks/" + nearMiss, e.Message);
        Assert.DoesNotContain("b_1.png", e.Message); // another image's own mask is no near miss
        Assert.Contains("#unlabelled", e.Message);   // how to declare unlabelled images instead
        Assert.Contains(data.Split("train"), e.Message);

        var report = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" });
        Assert.False(report.IsValid, report.ToString());
        var issue = Assert.Single(report.Issues);
        Assert.Equal(DatasetProblem.MissingFile, issue.Problem);
        Assert.Equal(data.Mask("b"), issue.File);
        Assert.Contains("found masks/" + nearMiss, issue.Message);
    }

    [Fact]
    public void Every_image_without_a_mask_is_reported_and_the_hint_is_given_once()
    {
        using var data = new TempFolderDataset(["a", "b", "c"]);
        File.Delete(data.Mask("a"));
        File.Delete(data.Mask("c"));
        var report = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" });
        Assert.Equal([data.Mask("a"), data.Mask("c")], report.Issues.Select(i => i.File));
        Assert.All(report.Issues, i => Assert.Contains("has no mask", i.Message));
        Assert.Equal(1, report.Issues.Count(i => i.Message.Contains("#unlabelled")));
        Assert.DoesNotContain("declared unlabelled", report.ToString().Split('\n')[0]);
        var e = Assert.Throws<DatasetException>(() => new FolderDataset(data.Root, new FolderOptions { Split = "train" }));
        Assert.Contains("and 1 more problem", e.Message);
    }

    [Fact]
    public void A_missing_masks_folder_is_one_error_naming_an_image_its_expected_mask_and_the_other_folders()
    {
        using var data = new TempFolderDataset(["a", "b"]);
        Directory.Move(Path.Combine(data.Root, "masks"), Path.Combine(data.Root, "labels"));

        var e = Assert.Throws<DatasetException>(() => new FolderDataset(data.Root, new FolderOptions { Split = "train" }));
        Assert.Equal(Path.Combine(data.Root, "masks"), e.Path);
        Assert.Contains("no masks/ folder", e.Message);
        Assert.Contains("2 images", e.Message);
        Assert.Contains(data.Image("a"), e.Message);
        Assert.Contains(Path.Combine(data.Root, "masks", "a.png"), e.Message);
        Assert.Contains("labels/", e.Message);
        Assert.Contains("#unlabelled", e.Message);

        var report = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" });
        Assert.Equal(DatasetProblem.MissingRoot, Assert.Single(report.Issues).Problem);
    }

    [Theory]
    [InlineData("#unlabelled")]
    [InlineData("# Unlabeled")]
    public void A_split_declared_unlabelled_may_hold_images_without_a_mask(string directive)
    {
        using var data = new TempFolderDataset(["a", "b"]);
        File.Delete(data.Mask("b"));
        data.WriteSplit("train", directive, "a", "b");

        var ds = new FolderDataset(data.Root, new FolderOptions { Split = "train" });
        Assert.True(ds.AllowsUnlabelled);
        Assert.Equal(["a", "b"], ds.Ids);
        Assert.Equal([0], ds.LabelledIndices);
        Assert.Null(ds.Load(1).Labels);
        Assert.NotNull(ds.Load(0).Labels);

        var report = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" });
        Assert.True(report.IsValid, report.ToString());
        Assert.Contains("1 image without a mask, declared unlabelled", report.ToString());
    }

    [Fact]
    public void A_comment_that_only_mentions_unlabelled_images_declares_nothing()
    {
        using var data = new TempFolderDataset(["a", "b"]);
        File.Delete(data.Mask("b"));
        data.WriteSplit("train", "# unlabelled images come later", "a", "b");
        Assert.Throws<DatasetException>(() => new FolderDataset(data.Root, new FolderOptions { Split = "train" }));
    }
}
