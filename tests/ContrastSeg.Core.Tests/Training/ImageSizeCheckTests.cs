using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Tests.Data;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using TorchSharp;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// Issue 29, case 9: an image smaller than the model reads (its output stride, after Data.Resize) stops a run before
/// its first step, and evaluate and predict before they start, naming the file, its sizes and the minimum.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class ImageSizeCheckTests : IDisposable
{
    private readonly TempDir _runs = new();

    public ImageSizeCheckTests() => TorchFixture.Init();

    public void Dispose() => _runs.Dispose();

    private TrainConfig Config(string root, double resize = 1.0) => SyntheticBatches.Config(_runs.Path, steps: 2) with
    {
        Data = new DataSettings { Dataset = "folder", Root = root, Crop = 16, Workers = 1, Resize = resize },
        Optimizer = SyntheticBatches.Config(_runs.Path).Optimizer with { Steps = 2, WarmupSteps = 0 },
        EvalEvery = 1,
    };

    [Theory]
    [InlineData(ResNetDepth.ResNet18, EncoderStem.Small, 8)]     // the cpu preset's model (the default)
    [InlineData(ResNetDepth.ResNet18, EncoderStem.ImageNet, 16)]
    public void The_smallest_input_a_model_reads_is_its_output_stride(ResNetDepth depth, EncoderStem stem, int outputStride)
    {
        var settings = new ModelSettings { Depth = depth, Stem = stem, OutputStride = outputStride, WidthMultiplier = 0.125, AsppChannels = 8, LowLevelChannels = 8, DecoderChannels = 8 };
        var encoder = settings.ToEncoderOptions();
        Assert.Equal(outputStride, encoder.MinInputSize());
        using var model = new DeepLabV3Plus(settings.ToOptions(3));
        model.eval();
        using var noGrad = torch.no_grad();
        foreach (var (h, w) in new[] { (outputStride, outputStride), (outputStride, 3 * outputStride + 1) })
        {
            using var images = torch.zeros(1, 3, h, w);
            using var logits = model.forward(images);
            Assert.Equal(new long[] { 1, 3, h, w }, logits.shape);
        }
        using var small = torch.zeros(1, 3, outputStride - 1, 40);
        Assert.Throws<ArgumentException>(() => model.forward(small));
        Assert.Equal(8, new TrainConfig().Model.ToEncoderOptions().MinInputSize());
    }

    [Theory]
    [InlineData("val")]   // the issue's case: found at the first validation, every rerun lost EvalEvery steps
    [InlineData("train")] // also read whole by pseudo-labelling and evaluation of the training split
    public void A_5x5_image_stops_the_run_before_its_first_step_naming_the_file_and_the_minimum(string split)
    {
        using var data = new TempFolderDataset(["a", "b", "c"], ["v1", "v2"]);
        data.AddGood("tiny", 5, 5);
        if (split == "val") data.WriteSplit("val", "v1", "tiny", "v2");
        else data.WriteSplit("train", "a", "tiny", "b", "c");
        var config = Config(data.Root);

        var e = Assert.Throws<DatasetException>(() => Runs.Train(config, TextWriter.Null));

        Assert.Equal(data.Image("tiny"), e.Path);
        Assert.Contains("image is 5x5 pixels, 5x5 after Data.Resize = 1: smaller than 8x8", e.Message);
        Assert.Contains("Model.OutputStride = 8", e.Message);
        Assert.False(Directory.Exists(config.RunDirectory), "no step was run, no run folder written");
    }

    [Fact]
    public void Data_Resize_is_applied_before_the_check()
    {
        using var data = new TempFolderDataset(["a", "b"], ["v1"]); // 24x20 images
        var e = Assert.Throws<DatasetException>(() => Runs.Train(Config(data.Root, resize: 0.3), TextWriter.Null));
        Assert.Contains("image is 24x20 pixels, 7x6 after Data.Resize = 0.3: smaller than 8x8", e.Message);
        Assert.Contains("raise Data.Resize", e.Message);
    }

    [Theory]
    [InlineData("folder", 0.001)] // the issue's value
    [InlineData("folder", 0)]
    [InlineData("fashion-mnist-scenes", 0.1)] // 64x64 scenes become 6x6: generated, so checked here
    public void Absurd_resize_factors_are_refused_at_config_validation(string dataset, double resize)
    {
        using var data = new TempFolderDataset(["a"], ["v1"]);
        var config = Config(data.Root, resize) with { Data = Config(data.Root, resize).Data with { Dataset = dataset, Root = dataset == "folder" ? data.Root : null } };
        var e = Assert.Throws<ConfigException>(() => config.Validate());
        Assert.Equal("Data.Resize", e.Field);
    }

    [Fact]
    public void Evaluate_and_predict_refuse_a_too_small_image_before_they_start()
    {
        using var data = new TempFolderDataset(["a", "b", "c"], ["v1", "v2"]);
        var config = Config(data.Root) with { EvalEvery = 0, Optimizer = Config(data.Root).Optimizer with { Steps = 1 } };
        var run = Runs.Train(config, TextWriter.Null).RunDirectory;
        data.AddGood("tiny", 5, 5);
        data.WriteSplit("val", "v1", "tiny", "v2");
        var output = Path.Combine(_runs.Path, "predictions");

        var e = Assert.Throws<DatasetException>(() => Runs.Evaluate(run, config));
        Assert.Equal(data.Image("tiny"), e.Path);
        e = Assert.Throws<DatasetException>(() => Runs.Predict(run, config, output));
        Assert.Equal(data.Image("tiny"), e.Path);
        Assert.Contains("smaller than 8x8", e.Message);
        Assert.False(Directory.Exists(output), "nothing predicted");
    }

    [Fact]
    public void A_session_checks_its_data_again_for_a_model_that_needs_larger_images()
    {
        using var data = new TempFolderDataset(["a", "b"], ["v1"], width: 12, height: 12);
        var session = RunSession.Open(Config(data.Root));
        var missing = Path.Combine(_runs.Path, "no-such-run");
        var stride16 = Config(data.Root).Model with { Stem = EncoderStem.ImageNet, OutputStride = 16 };

        // 12x12 suits the default model: the data passes and the missing run is what fails.
        var first = Record.Exception(() => session.Evaluate(missing, Config(data.Root).Model));
        Assert.NotNull(first);
        Assert.IsNotType<DatasetException>(first);
        var e = Assert.Throws<DatasetException>(() => session.Evaluate(missing, stride16));
        Assert.Contains("smaller than 16x16", e.Message);
    }

    [Fact]
    public void The_validator_reports_images_smaller_than_the_model_reads()
    {
        using var data = new TempFolderDataset(["a", "b"]);
        data.AddGood("tiny", 5, 5);
        data.WriteSplit("train", "a", "tiny", "b");

        // validate-data: the default model's minimum unless told another (e.g. a voc preset's model, or the run's resize).
        var issue = Assert.Single(DatasetRegistry.Get("folder").Validate!(data.Root, "train").Issues);
        Assert.Equal((data.Image("tiny"), DatasetProblem.ImageTooSmall), (issue.File, issue.Problem));
        Assert.Contains("5x5", issue.Message);
        var atStride16 = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }, minimum: MinimumImageSize.OfModel(16, resize: 0.5));
        Assert.Equal(3, atStride16.OfKind(DatasetProblem.ImageTooSmall).Count); // 24x20 -> 12x10 at half size
        Assert.Contains("images at least 16x16 pixels after Data.Resize = 0.5", atStride16.ToString());

        // With the pixel limit (validate-data --max-image-pixels) as well: an image refused unread has no size to check.
        var both = DatasetRegistry.Get("folder").Validate!(data.Root, "train", 479, MinimumImageSize.OfModel(8));
        Assert.Equal(4, both.OfKind(DatasetProblem.TooManyPixels).Count); // a and b, image and mask, 24x20 = 480 pixels
        Assert.Equal(data.Image("tiny"), Assert.Single(both.OfKind(DatasetProblem.ImageTooSmall)).File);
        Assert.Equal(5, both.Issues.Count);
    }
}
