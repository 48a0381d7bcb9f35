using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class VocDatasetTests
{
    private static readonly string[] TrainIds = ["2011_000003", "2011_000006", "2011_000025"];
    private static readonly string[] ValIds = ["vainf_val_000001", "vainf_val_000023", "vainf_val_000114"];

    [Fact]
    public void Palette_masks_equal_grayscale_aug_copies_pixel_for_pixel()
    {
        foreach (var id in TrainIds.Concat(ValIds))
        {
            var palette = ImageCodec.DecodeIndexPng(Path.Combine(SharedData.Voc2012, "SegmentationClass", id + ".png"));
            var gray = ImageCodec.DecodeIndexPng(Path.Combine(SharedData.Voc2012, "SegmentationClassAug", id + ".png"));
            Assert.Equal((palette.Width, palette.Height), (gray.Width, gray.Height));
            Assert.True(palette.Labels.AsSpan().SequenceEqual(gray.Labels), $"{id}: palette indices differ from the grayscale copy");
            Assert.Contains(palette.Labels, v => v != 0 && v != 255); // not trivially all background
        }
    }

    [Fact]
    public void Loads_the_six_samples_with_matching_sizes()
    {
        // The VOCdevkit folder is accepted and VOC2012 found inside it.
        var train = new VocDataset(Path.GetDirectoryName(SharedData.Voc2012)!, new VocOptions { Split = "train" });
        var val = new VocDataset(SharedData.Voc2012, new VocOptions { Split = "val", Masks = VocMaskSource.SegmentationClass });
        Assert.Equal(Path.GetFullPath(SharedData.Voc2012), train.Root);
        Assert.Equal(TrainIds, train.Ids);
        Assert.Equal(ValIds, val.Ids);
        Assert.Equal(21, train.Info.NumClasses);
        Assert.Equal("voc2012", train.Info.Name);
        var sizes = new Dictionary<string, (int, int)>
        {
            ["2011_000003"] = (500, 338), ["2011_000006"] = (500, 375), ["2011_000025"] = (500, 375),
            ["vainf_val_000001"] = (513, 513), ["vainf_val_000023"] = (513, 513), ["vainf_val_000114"] = (513, 513),
        };
        foreach (var ds in new[] { train, val })
        for (var i = 0; i < ds.Ids.Count; i++)
        {
            var s = ds.Load(i);
            Assert.Equal(ds.Ids[i], s.Id);
            Assert.NotNull(s.Labels);
            Assert.Equal(sizes[s.Id], (s.Image.Width, s.Image.Height));
            Assert.Equal(sizes[s.Id], (s.Labels!.Width, s.Labels.Height));
            Assert.All(s.Labels.Labels, v => Assert.True(v <= 20 || v == 255));
        }
    }

    [Fact]
    public void Mask_sources_and_unlabelled_mode()
    {
        var cls = new VocDataset(SharedData.Voc2012, new VocOptions { Split = "val", Masks = VocMaskSource.SegmentationClass });
        var aug = new VocDataset(SharedData.Voc2012, new VocOptions { Split = "val", Masks = VocMaskSource.SegmentationClassAug });
        Assert.EndsWith(Path.Combine("SegmentationClass", "vainf_val_000001.png"), cls.MaskPath(0));
        Assert.EndsWith(Path.Combine("SegmentationClassAug", "vainf_val_000001.png"), aug.MaskPath(0));
        Assert.Equal(cls.Load(1).Labels!.Labels, aug.Load(1).Labels!.Labels);

        var unlabelled = new VocDataset(SharedData.Voc2012, new VocOptions { Split = "val", WithLabels = false });
        Assert.Null(unlabelled.Load(0).Labels);
        Assert.Null(unlabelled.MaskPath(0));
    }

    [Fact]
    public void Auto_mask_source_falls_back_to_aug_and_list_files_may_hold_paths()
    {
        using var tmp = new TempDir();
        var root = tmp.File("VOC2012");
        TestFiles.WriteJpeg(tmp.File("VOC2012", "JPEGImages", "a.jpg"), 12, 8);
        TestFiles.WriteJpeg(tmp.File("VOC2012", "JPEGImages", "b.jpg"), 12, 8);
        ImageCodec.WriteIndexPng(tmp.File("VOC2012", "SegmentationClass", "a.png"), TestFiles.Labels(12, 8, 21), Palettes.Voc);
        ImageCodec.WriteGrayscalePng(tmp.File("VOC2012", "SegmentationClassAug", "b.png"), TestFiles.Labels(12, 8, 5));
        var list = tmp.File("my_list.txt");
        File.WriteAllLines(list, ["# a DeepLab-style list", "JPEGImages/a.jpg SegmentationClass/a.png", "", "b"]);
        var ds = new VocDataset(root, new VocOptions { ListFile = list });
        Assert.Equal(["a", "b"], ds.Ids);
        Assert.Contains("SegmentationClass" + Path.DirectorySeparatorChar, ds.MaskPath(0));
        Assert.Contains("SegmentationClassAug", ds.MaskPath(1));
        Assert.Equal(TestFiles.Labels(12, 8, 5).Labels, ds.Load(1).Labels!.Labels);
        Assert.Throws<DatasetException>(() => new VocDataset(root, new VocOptions { ListFile = list, Masks = VocMaskSource.SegmentationClass }));
    }

    [Fact]
    public void Official_split_counts_and_train_aug_properties()
    {
        var train = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "train.txt"));
        var val = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "val.txt"));
        var trainval = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "trainval.txt"));
        var trainAug = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "train_aug.txt"));
        Assert.Equal(1464, train.Count);
        Assert.Equal(1449, val.Count);
        Assert.Equal(2913, trainval.Count);
        Assert.Equal(10582, trainAug.Count);

        var aug = trainAug.ToHashSet();
        Assert.True(aug.IsSupersetOf(train), "train_aug must contain every VOC train id");
        Assert.False(aug.Overlaps(val), "train_aug must not contain VOC val ids");
        Assert.True(trainval.ToHashSet().SetEquals(train.Concat(val)));
        Assert.Equal("2007_000033", val[0]);
    }

    [Fact]
    public void Label_efficient_subsets_have_their_sizes_and_lie_in_their_pools()
    {
        var baseDir = SharedData.File("voc_sample", "label_efficient_splits_unimatch");
        var train = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "train.txt")).ToHashSet();
        var trainAug = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "train_aug.txt")).ToHashSet();
        foreach (var n in new[] { 92, 183, 366, 732, 1464 })
        {
            var ids = IdLists.Read(Path.Combine(baseDir, n.ToString(), "labeled.txt"));
            Assert.Equal(n, ids.Count);
            Assert.True(train.IsSupersetOf(ids));
        }
        foreach (var (name, n) in new[] { ("1_16", 662), ("1_8", 1323), ("1_4", 2646) }) // ceil(10582 / k)
        {
            var ids = IdLists.Read(Path.Combine(baseDir, name, "labeled.txt"));
            Assert.Equal(n, ids.Count);
            Assert.True(trainAug.IsSupersetOf(ids));
        }
    }
}
