using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class CityscapesDatasetTests
{
    private const string Frame = "frankfurt_000000_000294";
    private static string Gt(string suffix) => SharedData.File("cityscapes_sample", "gtFine", "val", "frankfurt", $"{Frame}_gtFine_{suffix}.png");
    private static string Derived => SharedData.File("cityscapes_sample", "derived", $"{Frame}_gtFine_labelTrainIds_fromLabelIds.png");

    [Fact]
    public void Mapping_label_ids_equals_the_derived_train_ids_exactly()
    {
        var mapped = CityscapesDataset.MapLabelIds(ImageCodec.DecodeIndexPng(Gt("labelIds")));
        var derived = ImageCodec.DecodeIndexPng(Derived);
        Assert.Equal((derived.Width, derived.Height), (mapped.Width, mapped.Height));
        var diff = Enumerable.Range(0, mapped.Labels.Length).Count(i => mapped.Labels[i] != derived.Labels[i]);
        Assert.Equal(0, diff);

        // The shipped labelTrainIds was resampled separately upstream: 77 boundary pixels differ.
        var shipped = ImageCodec.DecodeIndexPng(Gt("labelTrainIds"));
        Assert.Equal(77, Enumerable.Range(0, mapped.Labels.Length).Count(i => mapped.Labels[i] != shipped.Labels[i]));
    }

    [Fact]
    public void Train_id_table()
    {
        var lut = CityscapesDataset.LabelIdToTrainId;
        Assert.Equal(0, lut[7]);
        Assert.Equal(11, lut[24]);
        Assert.Equal(18, lut[33]);
        Assert.Equal(255, lut[0]);
        Assert.Equal(255, lut[34]);
        Assert.Equal(255, lut[255]);
        Assert.Equal(19, lut.Count(v => v != 255));
    }

    [Fact]
    public void Loads_the_sample_frame_mapped_or_from_train_id_files()
    {
        var ds = new CityscapesDataset(SharedData.Cityscapes, new CityscapesOptions { Split = "val" });
        Assert.Equal(["frankfurt"], ds.Cities);
        Assert.Equal([Frame], ds.Ids);
        Assert.Equal(19, ds.Info.NumClasses);
        var s = ds.Load(0);
        Assert.Equal((256, 128), (s.Image.Width, s.Image.Height));
        Assert.Equal(ImageCodec.DecodeIndexPng(Derived).Labels, s.Labels!.Labels);

        var pre = new CityscapesDataset(SharedData.Cityscapes, new CityscapesOptions { Split = "val", UseTrainIdFiles = true });
        Assert.Equal(ImageCodec.DecodeIndexPng(Gt("labelTrainIds")).Labels, pre.Load(0).Labels!.Labels);
    }

    [Fact]
    public void List_file_with_unimatch_path_pairs_selects_split_from_the_path()
    {
        using var tmp = new TempDir();
        var list = tmp.File("val_list.txt");
        File.WriteAllLines(list, [$"leftImg8bit/val/frankfurt/{Frame}_leftImg8bit.png gtFine/val/frankfurt/{Frame}_gtFine_labelTrainIds.png"]);
        var ds = new CityscapesDataset(SharedData.Cityscapes, new CityscapesOptions { ListFile = list }); // Split stays "train"
        Assert.Equal([Frame], ds.Ids);
        Assert.EndsWith(Path.Combine("val", "frankfurt", Frame + "_gtFine_labelIds.png"), ds.MaskPath(0));
    }

    [Fact]
    public void Cities_are_discovered_from_folders_and_sorted()
    {
        using var tmp = new TempDir();
        var frames = new[] { ("zurich", "zurich_000001_000019"), ("aachen", "aachen_000002_000019"), ("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313") };
        var labelIds = new LabelMap(4, 2, [7, 8, 24, 26, 0, 1, 33, 3]);
        foreach (var (city, id) in frames)
        {
            ImageCodec.WriteRgbPng(tmp.File("leftImg8bit", "train", city, id + "_leftImg8bit.png"), TestFiles.Pattern(4, 2));
            ImageCodec.WriteGrayscalePng(tmp.File("gtFine", "train", city, id + "_gtFine_labelIds.png"), labelIds);
        }
        Directory.CreateDirectory(tmp.File("leftImg8bit", "train", "emptycity", "x"));
        var ds = new CityscapesDataset(tmp.Path);
        Assert.Equal(["aachen", "bochum", "zurich"], ds.Cities);
        Assert.Equal(["aachen_000000_000019", "aachen_000002_000019", "bochum_000000_000313", "zurich_000001_000019"], ds.Ids);
        Assert.Equal(new byte[] { 0, 1, 11, 13, 255, 255, 18, 255 }, ds.Load(3).Labels!.Labels);

        var e = Assert.Throws<DatasetException>(() => new CityscapesDataset(tmp.Path, new CityscapesOptions { Split = "val" }));
        Assert.Contains("split folder 'val' not found (available: train)", e.Message);
        e = Assert.Throws<DatasetException>(() => new CityscapesDataset(tmp.Path, new CityscapesOptions { UseTrainIdFiles = true }));
        Assert.Contains("_gtFine_labelTrainIds.png", e.Message);
    }

    [Fact]
    public void Missing_root_or_layout_is_reported()
    {
        var missing = Path.Combine(Path.GetTempPath(), "contrastseg-no-such-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<DatasetException>(() => new CityscapesDataset(missing));
        Assert.Equal(missing, e.Path);
        Assert.Contains("dataset root not found", e.Message);
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("classes.txt"), "background\n");
        Assert.Contains("no leftImg8bit", Assert.Throws<DatasetException>(() => new CityscapesDataset(tmp.Path)).Message);
    }
}
