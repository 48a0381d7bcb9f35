using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>A small VOC-layout dataset in a temp folder, good unless a test breaks it.</summary>
internal sealed class TempVoc : IDisposable
{
    private readonly TempDir _dir = new();

    public TempVoc(params string[] ids)
    {
        foreach (var id in ids) AddGood(id);
        WriteSplit("train", ids);
    }

    public string Root => Path.Combine(_dir.Path, "VOC2012");

    public string Image(string id) => _dir.File("VOC2012", "JPEGImages", id + ".jpg");

    public string Mask(string id) => _dir.File("VOC2012", "SegmentationClass", id + ".png");

    public string Split(string name) => _dir.File("VOC2012", "ImageSets", "Segmentation", name + ".txt");

    public void AddGood(string id, int w = 16, int h = 12)
    {
        TestFiles.WriteJpeg(Image(id), w, h);
        ImageCodec.WriteIndexPng(Mask(id), TestFiles.Labels(w, h, 21), Palettes.Voc);
    }

    public void WriteSplit(string name, params string[] lines) => File.WriteAllLines(Split(name), lines);

    public void Dispose() => _dir.Dispose();
}

public class BadInputTests
{
    private static DatasetException LoadFails(TempVoc voc, int index = 0) =>
        Assert.Throws<DatasetException>(() => new VocDataset(voc.Root).Load(index));

    [Fact]
    public void Corrupt_jpeg()
    {
        using var voc = new TempVoc("a");
        var bytes = File.ReadAllBytes(voc.Image("a"));
        File.WriteAllBytes(voc.Image("a"), bytes[..(bytes.Length / 2)]);
        var e = LoadFails(voc);
        Assert.Equal(voc.Image("a"), e.Path);
        Assert.Contains("truncated JPEG", e.Message);
    }

    [Fact]
    public void Truncated_png_mask()
    {
        using var voc = new TempVoc("a");
        var noisy = new byte[16 * 12];
        new Random(3).NextBytes(noisy);
        ImageCodec.WriteIndexPng(voc.Mask("a"), new LabelMap(16, 12, noisy), Palettes.Voc);
        var bytes = File.ReadAllBytes(voc.Mask("a"));
        File.WriteAllBytes(voc.Mask("a"), bytes[..(bytes.Length - 60)]);
        var e = LoadFails(voc);
        Assert.Equal(voc.Mask("a"), e.Path);
        Assert.Contains("truncated PNG: IDAT stream ended early", e.Message);
    }

    [Fact]
    public void Rgb_mask_where_an_index_mask_is_expected()
    {
        using var voc = new TempVoc("a");
        TestFiles.WriteSkiaPng(voc.Mask("a"), 16, 12); // what an image editor saves: RGB(A), not indices
        var e = LoadFails(voc);
        Assert.Equal(voc.Mask("a"), e.Path);
        Assert.Matches("expected an 8-bit palette or grayscale index PNG, got RGBA? \\(colour type [26]\\)", e.Message);
    }

    [Fact]
    public void Mask_size_differs_from_image()
    {
        using var voc = new TempVoc("a");
        ImageCodec.WriteIndexPng(voc.Mask("a"), TestFiles.Labels(15, 12, 21), Palettes.Voc);
        var e = LoadFails(voc);
        Assert.Contains(voc.Mask("a"), e.Message);
        Assert.Contains(voc.Image("a"), e.Message);
        Assert.Contains("mask is 15x12 but its image", e.Message);
        Assert.Contains("is 16x12", e.Message);
    }

    [Fact]
    public void Label_outside_the_class_range_names_value_file_and_pixel()
    {
        using var voc = new TempVoc("a");
        var labels = TestFiles.Labels(16, 12, 21);
        labels.Labels[3 * 16 + 5] = 37;
        labels.Labels[4 * 16 + 5] = 21;
        ImageCodec.WriteIndexPng(voc.Mask("a"), labels, Palettes.Voc);
        var e = LoadFails(voc);
        Assert.Equal(voc.Mask("a"), e.Path);
        Assert.Contains("label value 37 at pixel (x=5, y=3) is outside the class range 0..20", e.Message);
        Assert.Contains("values: 21, 37", e.Message);
    }

    [Fact]
    public void Listed_id_without_file()
    {
        using var voc = new TempVoc("a");
        voc.WriteSplit("train", "a", "ghost");
        var e = Assert.Throws<DatasetException>(() => new VocDataset(voc.Root));
        Assert.Equal(voc.Image("ghost"), e.Path);
        Assert.Contains("id 'ghost' (line 2 of train.txt) has no image file", e.Message);
    }

    [Fact]
    public void Empty_split()
    {
        using var voc = new TempVoc("a");
        voc.WriteSplit("train", "", "# nothing here");
        var e = Assert.Throws<DatasetException>(() => new VocDataset(voc.Root));
        Assert.Equal(voc.Split("train"), e.Path);
        Assert.Contains("empty split", e.Message);
    }

    [Fact]
    public void Duplicate_ids_in_a_split()
    {
        using var voc = new TempVoc("a", "b");
        voc.WriteSplit("train", "a", "b", "a");
        var e = Assert.Throws<DatasetException>(() => new VocDataset(voc.Root));
        Assert.Equal(voc.Split("train"), e.Path);
        Assert.Contains("duplicate id 'a' on lines 1, 3", e.Message);
        Assert.Contains("duplicate id 'a'", Assert.Throws<DatasetException>(() => IdLists.Read(voc.Split("train"))).Message);
    }

    [Fact]
    public void Missing_dataset_root()
    {
        var missing = Path.Combine(Path.GetTempPath(), "contrastseg-no-such-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<DatasetException>(() => new VocDataset(missing));
        Assert.Equal(missing, e.Path);
        Assert.Contains("dataset root not found", e.Message);
        using var tmp = new TempDir(); // exists, but is not a VOC folder
        Assert.Contains("no JPEGImages folder", Assert.Throws<DatasetException>(() => new VocDataset(tmp.Path)).Message);
    }

    [Fact]
    public void Missing_split_file()
    {
        using var voc = new TempVoc("a");
        var e = Assert.Throws<DatasetException>(() => new VocDataset(voc.Root, new VocOptions { Split = "tranval" }));
        Assert.Equal(voc.Split("tranval"), e.Path);
        Assert.Contains("split file not found (lists in that folder: train)", e.Message);
    }
}
