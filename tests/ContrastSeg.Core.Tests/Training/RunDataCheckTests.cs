using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Tests.Data;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>A run checks every file it will read before its first step, and never reports a metric over no labelled pixel.</summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class RunDataCheckTests : IDisposable
{
    private readonly TempDir _runs = new();

    public RunDataCheckTests() => TorchFixture.Init();

    public void Dispose() => _runs.Dispose();

    private TrainConfig Config(string root) => SyntheticBatches.Config(_runs.Path, steps: 4) with
    {
        Data = new DataSettings { Dataset = "folder", Root = root, Crop = 16, Workers = 1 },
        CheckpointEvery = 1,
        EvalEvery = 0,
    };

    [Theory]
    [InlineData("val", "image")]  // the case: found only after training, every rerun retrains and fails again
    [InlineData("val", "mask")]
    [InlineData("train", "image")]
    public void A_bad_file_in_a_split_the_run_reads_stops_it_before_its_first_step(string split, string file)
    {
        using var data = new TempFolderDataset(["a", "b", "c", "d"], ["v1", "v2"]);
        var id = split == "val" ? "v2" : "c";
        var path = file == "image" ? data.Image(id) : data.Mask(id);
        if (file == "image")
        {
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]); // header intact, data cut
        }
        else
        {
            var labels = TestFiles.Labels(24, 20, 3);
            labels.Labels[50] = 9; // 3 classes
            ImageCodec.WriteGrayscalePng(path, labels);
        }
        var config = Config(data.Root);

        var e = Assert.Throws<DatasetException>(() => Runs.Train(config, TextWriter.Null));
        Assert.Equal(path, e.Path);
        Assert.False(Directory.Exists(config.RunDirectory), "no step was run, no run folder written");
    }

    [Fact]
    public void The_log_gives_the_counts_used_and_the_check()
    {
        using var data = new TempFolderDataset(["a", "b", "c"], ["v1", "v2", "v3"]);
        File.Delete(data.Mask("c"));
        data.WriteSplit("train", "#unlabelled", "a", "b", "c");
        var log = new StringWriter();
        var result = Runs.Train(Config(data.Root) with { Optimizer = Config(data.Root).Optimizer with { Steps = 1, WarmupSteps = 0 } }, log);
        Assert.Contains("2 training images (1 image of the training split 'train' without a mask, declared unlabelled, not trained on), 3 validation images; 5 samples checked in", log.ToString());
        Assert.NotNull(result.Validation);
        Assert.True(double.IsFinite(result.Validation!.MeanIoU));
    }

    [Fact]
    public void Scoring_images_without_a_labelled_pixel_is_an_error_not_NaN()
    {
        using var data = new TempFolderDataset(["a"], ["v1", "v2"]);
        foreach (var id in new[] { "v1", "v2" })
            ImageCodec.WriteGrayscalePng(data.Mask(id), new LabelMap(24, 20, Enumerable.Repeat(LabelMap.Ignore, 24 * 20).ToArray()));
        var val = new FolderDataset(data.Root, new FolderOptions { Split = "val" });
        var config = Config(data.Root);
        using var model = new DeepLabV3Plus(config.Model.ToOptions(val.Info.NumClasses));

        var e = Assert.Throws<DatasetException>(() => RunSession.Evaluate(model, val, config.Data, null));
        Assert.Contains("no labelled pixel", e.Message);
        e = Assert.Throws<DatasetException>(() => RunSession.Evaluate(model, val, config.Data, null, null, "validation split 'val'"));
        Assert.Contains("validation split 'val'", e.Message);
        // And a run on such a split stops before its first step.
        e = Assert.Throws<DatasetException>(() => Runs.Train(config, TextWriter.Null));
        Assert.Contains("validation split 'val'", e.Message);
        Assert.False(Directory.Exists(config.RunDirectory));
    }
}
