using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class FolderDatasetTests
{
    private static TempDir Layout()
    {
        var tmp = new TempDir();
        File.WriteAllLines(tmp.File("classes.txt"), ["# name [R G B]", "background 0 0 0", "traffic light 250 170 30", "crack"]);
        TestFiles.WriteJpeg(tmp.File("images", "b.jpg"), 10, 6);
        ImageCodec.WriteRgbPng(tmp.File("images", "a.png"), TestFiles.Pattern(10, 6));
        TestFiles.WriteJpeg(tmp.File("images", "c.JPEG"), 10, 6);
        File.WriteAllText(tmp.File("images", "notes.txt"), "not an image");
        ImageCodec.WriteGrayscalePng(tmp.File("masks", "a.png"), TestFiles.Labels(10, 6, 3));
        // A palette mask shows each class in the colour classes.txt gives it (MaskPaletteTests).
        ImageCodec.WriteIndexPng(tmp.File("masks", "c.png"), TestFiles.Labels(10, 6, 2), [new Rgb(0, 0, 0), new Rgb(250, 170, 30)]);
        File.WriteAllLines(tmp.File("splits", "train.txt"), ["c", "b"]);
        return tmp;
    }

    [Fact]
    public void Reads_classes_images_masks_and_unlabelled_images()
    {
        using var tmp = Layout();
        var ds = new FolderDataset(tmp.Path, new FolderOptions { AllowUnlabelled = true });
        Assert.Equal(["background", "traffic light", "crack"], ds.Info.ClassNames);
        Assert.Equal(new Rgb(250, 170, 30), ds.Info.Palette[1]);
        Assert.Equal(Palettes.VocColor(2), ds.Info.Palette[2]); // no colour given
        Assert.Equal(["a", "b", "c"], ds.Ids);
        Assert.True(ds.IsLabelled(0));
        Assert.False(ds.IsLabelled(1));
        Assert.Equal(TestFiles.Labels(10, 6, 3).Labels, ds.Load(0).Labels!.Labels);
        var unlabelled = ds.Load(1);
        Assert.Null(unlabelled.Labels);
        Assert.Equal((10, 6), (unlabelled.Image.Width, unlabelled.Image.Height));

        var train = new FolderDataset(tmp.Path, new FolderOptions { Split = "train", AllowUnlabelled = true });
        Assert.Equal(["c", "b"], train.Ids);
        Assert.Equal(TestFiles.Labels(10, 6, 2).Labels, train.Load(0).Labels!.Labels);

        // Without AllowUnlabelled (or a split file's #unlabelled line) an image without its mask is an error.
        var e = Assert.Throws<DatasetException>(() => new FolderDataset(tmp.Path));
        Assert.Contains(tmp.File("images", "b.jpg"), e.Message);
        Assert.Contains("has no mask", e.Message);
    }

    [Fact]
    public void Bad_class_tables_are_reported()
    {
        using var tmp = Layout();
        File.WriteAllLines(tmp.File("classes.txt"), ["sky 70 130 999"]);
        var e = Assert.Throws<DatasetException>(() => new FolderDataset(tmp.Path));
        Assert.Contains("classes.txt", e.Message);
        Assert.Contains("0..255", e.Message);
        File.Delete(tmp.File("classes.txt"));
        Assert.Contains("classes.txt not found", Assert.Throws<DatasetException>(() => new FolderDataset(tmp.Path)).Message);
    }

    [Fact]
    public void Two_images_with_one_stem_are_ambiguous()
    {
        using var tmp = Layout();
        TestFiles.WriteJpeg(tmp.File("images", "a.jpg"), 10, 6);
        var e = Assert.Throws<DatasetException>(() => new FolderDataset(tmp.Path, new FolderOptions { AllowUnlabelled = true }));
        Assert.Contains("id 'a' has two images", e.Message);
    }

    [Fact]
    public void Missing_root_or_layout_is_reported()
    {
        var missing = Path.Combine(Path.GetTempPath(), "contrastseg-no-such-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<DatasetException>(() => new FolderDataset(missing));
        Assert.Equal(missing, e.Path);
        Assert.Contains("dataset root not found", e.Message);
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("classes.txt"), "background\n");
        Assert.Contains("no images", Assert.Throws<DatasetException>(() => new FolderDataset(tmp.Path)).Message);
    }
}
