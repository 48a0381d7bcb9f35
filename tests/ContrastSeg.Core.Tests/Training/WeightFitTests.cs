using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Tests.Data;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// Initial weights that do not fit (issue 12, items 2 and 7): partial encoder files, checkpoints of another
/// class count or model shape, and a class table with classes no mask uses. Runs are a step or two of a tiny model.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class WeightFitTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("contrastseg-weightfit-").FullName;

    public WeightFitTests() => TorchFixture.Init();

    public void Dispose() => Directory.Delete(_root, true);

    private static readonly string[] Tiny =
    {
        "Optimizer.Steps=1", "Optimizer.BatchSize=2", "CheckpointEvery=1", "LogEvery=1", "Data.Crop=32", "Data.Workers=1",
        "Data.ScaleMin=1", "Data.ScaleMax=1", "Model.WidthMultiplier=0.125", "Model.AsppChannels=16", "Model.DecoderChannels=16",
        "Model.LowLevelChannels=8", "Model.ProjectionChannels=16", "Data.SceneSize=32", "Data.TrainScenes=4", "Data.ValScenes=2",
        "Model.Stem=ImageNet", // the fixture's stem, not the default's (the small stem since the defaults are CpuSmall's)
    };

    private TrainConfig Config(params string[] more) =>
        ConfigOverrides.Apply(new TrainConfig(), Tiny.Append("OutputRoot=" + Path.Combine(_root, "runs")).Concat(more)).Validate();

    /// <summary>A folder dataset of 40x32 images whose masks use classes 0..2; classes.txt lists <paramref name="classes"/>.</summary>
    private string Folder(params string[] classes)
    {
        var root = Path.Combine(_root, "folder-" + classes.Length);
        foreach (var d in new[] { "images", "masks", "splits" }) Directory.CreateDirectory(Path.Combine(root, d));
        File.WriteAllLines(Path.Combine(root, "classes.txt"), classes);
        var ids = Enumerable.Range(0, 6).Select(i => $"img{i}").ToArray();
        foreach (var id in ids)
        {
            ImageCodec.WriteRgbPng(Path.Combine(root, "images", id + ".png"), TestFiles.Pattern(40, 32));
            ImageCodec.WriteGrayscalePng(Path.Combine(root, "masks", id + ".png"), TestFiles.Labels(40, 32, classes: 3));
        }
        File.WriteAllLines(Path.Combine(root, "splits", "train.txt"), ids[..4]);
        File.WriteAllLines(Path.Combine(root, "splits", "val.txt"), ids[4..]);
        return root;
    }

    /// <summary>A checkpoint of a model built from <paramref name="config"/> with <paramref name="classes"/> classes, its config recorded (or not).</summary>
    private string Checkpoint(string name, TrainConfig config, int classes, bool recordConfig = true)
    {
        manual_seed(11);
        using var model = new DeepLabV3Plus(config.Model.ToOptions(classes));
        using var sgd = new SgdOptimizer(model.parameters(), 0.01, 0.9, 0.0);
        var run = Path.Combine(_root, "checkpoints", name);
        return new CheckpointStore(run).Save(new CheckpointState(1, double.NaN, -1, recordConfig ? config.ToJson() : ""), model, sgd, null, 1, false);
    }

    private static float[] Values(DeepLabV3Plus model, string key) => model.state_dict()[key].data<float>().ToArray();

    [Fact]
    public void A_fine_tune_stage_loads_all_but_the_classifier_of_a_checkpoint_with_another_class_count()
    {
        // 46f90c8 loaded the classifier strictly: "does not fit this model", so pretraining on other data could not be fine-tuned.
        var data = Folder("road", "car", "sky");
        var pretrained = Checkpoint("pre-11", Config(), classes: 11);
        var config = Config("Stage=FineTune", "InitFrom=" + pretrained, "Data.Dataset=folder", "Data.Root=" + data, "Optimizer.LearningRate=1e-9");
        var console = new StringWriter();
        var result = Runs.Train(config, console);

        Assert.Equal(1, result.Steps);
        Assert.Contains("all but the classifier: a fresh one for 3 classes (the checkpoint's has 11)", console.ToString());
        using var source = new DeepLabV3Plus(config.Model.ToOptions(11));
        CheckpointStore.LoadWeights(pretrained, source);
        using var tuned = new DeepLabV3Plus(config.Model.ToOptions(3));
        CheckpointStore.LoadWeights(result.RunDirectory, tuned);
        var (before, after) = (Values(source, "backbone.conv1.weight"), Values(tuned, "backbone.conv1.weight"));
        for (var i = 0; i < before.Length; i++) Assert.Equal(before[i], after[i], 1e-6); // the encoder came from the checkpoint (LR ~0)
    }

    [Fact]
    public void A_checkpoint_of_another_class_count_outside_fine_tuning_names_the_classifier_and_both_class_counts()
    {
        var config = Config();
        var checkpoint = Checkpoint("eleven", config, classes: 11);
        using var model = new DeepLabV3Plus(config.Model.ToOptions(3));
        var ex = Assert.Throws<InvalidDataException>(() => CheckpointStore.LoadWeights(checkpoint, model));
        Assert.Contains("tensor 'classifier.weight' is [11, 16, 1, 1] in the checkpoint but [3, 16, 1, 1] in this model", ex.Message);
        Assert.Contains("the checkpoint's classifier has 11 classes and this model 3", ex.Message);
        Assert.Contains(Path.Combine(checkpoint, "model.bin"), ex.Message);
        // The same checkpoint loads with a fresh classifier.
        CheckpointStore.LoadWeights(checkpoint, model, exceptClassifier: true);
    }

    [Theory]
    [InlineData("Model.WidthMultiplier=0.25", "Model.WidthMultiplier", "Model.WidthMultiplier is 0.125 in the checkpoint's run and 0.25 here")]
    [InlineData("Model.Depth=ResNet34", "Model.Depth", "Model.Depth is ResNet18 in the checkpoint's run and ResNet34 here")]
    [InlineData("Model.Stem=Small", "Model.Stem", "Model.Stem is ImageNet in the checkpoint's run and Small here")]
    [InlineData("Model.AsppChannels=32", "Model.AsppChannels", "Model.AsppChannels is 16 in the checkpoint's run and 32 here")]
    [InlineData("Model.ProjectionLayers=2", "Model.ProjectionLayers", "Model.ProjectionLayers is 3 in the checkpoint's run and 2 here")]
    public void A_checkpoint_of_another_model_shape_names_a_tensor_both_shapes_and_the_setting(string change, string setting, string recorded)
    {
        // 46f90c8: "... does not fit this model (Mismatched tensor shape while loading ...); was it written with other model settings?"
        var written = Config();
        var here = Config(change);
        using var model = new DeepLabV3Plus(here.Model.ToOptions(11));
        var withRecord = Assert.Throws<InvalidDataException>(() => CheckpointStore.LoadWeights(Checkpoint("rec-" + setting, written, 11), model)).Message;
        Assert.Matches(@"(tensor '[\w.]+' is \[[\d, ]+\] in the checkpoint but \[[\d, ]+\] in this model|'[\w.]+' \[[\d, ]+\], th(is model|e checkpoint) does not)", withRecord);
        Assert.Contains(recorded, withRecord);
        // Without a readable record of the checkpoint's settings, the tensor names still point at the setting.
        var guessed = Assert.Throws<InvalidDataException>(() => CheckpointStore.LoadWeights(Checkpoint("norec-" + setting, written, 11, recordConfig: false), model)).Message;
        Assert.Contains(setting, guessed);
    }

    [Fact]
    public void State_dict_entries_are_read_without_the_data_and_a_truncated_file_is_named()
    {
        using var model = new DeepLabV3Plus(Config().Model.ToOptions(5));
        var file = Path.Combine(_root, "model.bin");
        model.save(file);
        var entries = WeightFit.ReadEntries(file);
        Assert.Equal(model.state_dict().Select(kv => (kv.Key, kv.Value.shape)), entries.Select(e => (e.Name, e.Shape)), new EntryComparer());
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);
        var ex = Assert.Throws<InvalidDataException>(() => WeightFit.ReadEntries(file));
        Assert.Contains(file, ex.Message);
        Assert.Contains("truncated", ex.Message);
    }

    private sealed class EntryComparer : IEqualityComparer<(string, long[])>
    {
        public bool Equals((string, long[]) a, (string, long[]) b) => a.Item1 == b.Item1 && a.Item2.SequenceEqual(b.Item2);
        public int GetHashCode((string, long[]) e) => e.Item1.GetHashCode();
    }

    [Fact]
    public void A_weight_file_that_fits_the_encoder_in_part_trains_only_with_AllowPartialInit()
    {
        // 46f90c8 trained from a file that matched 1 of the encoder's tensors, with the rest left at random.
        var config = Config();
        manual_seed(3);
        using var encoder = new ResNetEncoder(config.Model.ToOptions(11).Encoder);
        var file = Path.Combine(_root, "conv1-only.safetensors");
        Safetensors.SaveStateDict(file, new Dictionary<string, Tensor> { ["conv1.weight"] = encoder.state_dict()["conv1.weight"] });
        var total = encoder.state_dict().Count;

        var ex = Assert.Throws<ConfigException>(() => Runs.Train(Config("InitFrom=" + file), TextWriter.Null));
        Assert.Equal("InitFrom", ex.Field);
        Assert.Contains($"matches 1 of the {total} tensors of the ResNet18 encoder", ex.Message);
        Assert.Contains($"missing from the file ({total - 1}): bn1.weight, bn1.bias", ex.Message);
        Assert.Contains("--allow-partial (setting AllowPartialInit=true)", ex.Message);

        var console = new StringWriter();
        Assert.Equal(1, Runs.Train(Config("InitFrom=" + file, "AllowPartialInit=true"), console).Steps);
        Assert.Contains("(partial: AllowPartialInit)", console.ToString());
    }

    [Fact]
    public void The_partial_match_rule_passes_a_full_match_and_never_a_file_that_fits_nothing()
    {
        var options = new EncoderOptions(ResNetDepth.ResNet18, 8, 0.25);
        var full = new WeightLoadReport(new[] { "conv1.weight", "bn1.weight" }, Array.Empty<string>(), new[] { "fc.weight" }, Array.Empty<string>());
        WeightFit.RequireFullEncoderMatch(full, "w.pth", options, allowPartial: false);
        var none = new WeightLoadReport(Array.Empty<string>(), new[] { "conv1.weight", "bn1.weight" }, Array.Empty<string>(),
            new[] { "layer1.0.conv1.weight: file [64, 64, 3, 3] vs model [16, 16, 3, 3]" });
        var ex = Assert.Throws<ConfigException>(() => WeightFit.RequireFullEncoderMatch(none, "w.pth", options, allowPartial: true));
        Assert.Contains("matches 0 of the 3 tensors", ex.Message);
        Assert.Contains("Model.WidthMultiplier = 0.25 narrows every layer; torchvision's ResNets are width 1", ex.Message);
    }

    [Fact]
    public void A_class_table_with_classes_no_mask_uses_is_a_warning_naming_the_file_and_the_classes()
    {
        // 46f90c8 trained the extra outputs without a word.
        var data = Folder("road", "car", "sky", "bus", "bike");
        var console = new StringWriter();
        Runs.Train(Config("Data.Dataset=folder", "Data.Root=" + data), console);
        var warning = console.ToString().Split('\n').Single(l => l.Contains("warning:"));
        Assert.Contains(Path.Combine(data, "classes.txt"), warning);
        Assert.Contains("lists 5 classes, but no mask of the train and val splits (6 masks) uses 2 of them: 3 'bus', 4 'bike'", warning);

        Assert.Null(ClassUsage.Warning(new DataSettings { Dataset = "folder", Root = Folder("road", "car", "sky") }));
        Assert.Null(ClassUsage.Warning(new DataSettings()));
    }
}
