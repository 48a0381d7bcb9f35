using ContrastSeg.Data;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>The registry is the one place a dataset name is switched on: validation, run names and opening follow it.</summary>
public class DatasetRegistryTests
{
    [Fact]
    public void Every_dataset_has_one_name_and_one_run_name_tag()
    {
        Assert.Equal(new[] { "fashion-mnist-scenes", "folder", "voc", "cityscapes" }, DatasetRegistry.Names);
        Assert.Equal(DatasetRegistry.All.Count, DatasetRegistry.All.Select(k => k.RunNameTag).Distinct().Count());
        Assert.Equal("fmscenes", DatasetRegistry.Get("fashion-mnist-scenes").RunNameTag);
        // Studies score final models on the registry's split: the scenes have a test split of their own, VOC and
        // Cityscapes keep their test labels private, a folder is not known to have one.
        Assert.Equal(new[] { "test", "val", "val", "val" }, DatasetRegistry.All.Select(k => k.EvalSplit));
    }

    [Fact]
    public void An_unknown_name_is_refused_with_the_names_there_are()
    {
        var ex = Assert.Throws<ConfigException>(() => DatasetRegistry.Get("imagenet"));
        Assert.Equal("Data.Dataset", ex.Field);
        Assert.Contains("'imagenet'", ex.Message);
        foreach (var name in DatasetRegistry.Names) Assert.Contains(name, ex.Message);
        Assert.Null(DatasetRegistry.Find("imagenet"));
    }

    [Fact]
    public void The_config_requires_a_root_exactly_for_the_datasets_that_need_one()
    {
        foreach (var kind in DatasetRegistry.All)
        {
            var c = new TrainConfig { Data = new DataSettings { Dataset = kind.Name } };
            if (kind.NeedsRoot) Assert.Equal("Data.Root", Assert.Throws<ConfigException>(() => c.Validate()).Field);
            else c.Validate();
        }
    }

    [Fact]
    public void The_scenes_open_their_test_split_when_asked_and_batch_in_evaluation()
    {
        var kind = DatasetRegistry.Get("fashion-mnist-scenes");
        Assert.True(kind.SameSizeImages);
        Assert.Null(kind.Validate); // generated: no files to scan
        var settings = new DataSettings { Scenes = new SceneSettings { Train = 4, Val = 3 } };
        var (train, val, source) = kind.Open(settings);
        var (_, test, _) = kind.Open(settings with { ValSplit = "test" });
        Assert.Equal(4, train.Ids.Count);
        Assert.Equal(3, val.Ids.Count);
        Assert.NotEqual(val.Ids, test.Ids);
        Assert.StartsWith("fashion-mnist-scenes:", source);
    }

    [Fact]
    public void A_folder_dataset_opens_both_splits_through_its_entry()
    {
        var root = Directory.CreateTempSubdirectory("contrastseg-registry-").FullName;
        try
        {
            var scenes = new FashionMnistScenes(new FashionMnistSceneOptions { Split = SceneSplit.Train, TrainScenes = 3 }, FashionMnistSource.Open());
            FolderWriter.WriteSplit(scenes, root, "train", 3);
            FolderWriter.WriteSplit(scenes, root, "val", 3);
            var kind = DatasetRegistry.Get("folder");
            Assert.False(kind.SameSizeImages);
            var (train, val, source) = kind.Open(new DataSettings { Dataset = "folder", Root = root, TrainSplit = "train", ValSplit = "val" });
            Assert.Equal(3, train.Ids.Count);
            Assert.Equal(3, val.Ids.Count);
            Assert.Equal($"folder:{Path.GetFullPath(root)}", source);
            Assert.True(kind.Validate!(root, "train", PixelLimit.Default).IsValid);
        }
        finally { Directory.Delete(root, true); }
    }
}
