using ContrastSeg.Losses;
using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// The peers' options in training: the Joint stage, exact resume of a run with a class memory, their settings' validation,
/// and that configs without them keep their JSON and run names.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class PeerTrainingTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "contrastseg-peers-" + Guid.NewGuid().ToString("N"));

    public PeerTrainingTests() => TorchFixture.Init();

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private static ITrainingObjective Objective(TrainConfig c) => c.Stage == TrainingStage.Joint
        ? new JointObjective(c.Contrastive, c.Seed, 255, SyntheticBatches.NumClasses)
        : new ContrastiveObjective(c.Contrastive, c.Seed, 255, SyntheticBatches.NumClasses);

    private static byte[] MemoryBytes(ITrainingObjective objective)
    {
        using var stream = new MemoryStream();
        objective.Memory!.Save(stream);
        return stream.ToArray();
    }

    private static readonly ContrastiveSettings Memory = new()
    {
        ResizeTo = 8, Temperature = 0.2, MemoryPixels = 16, MemoryPixelsPerImage = 3, MemoryRegions = 4,
    };

    public static TheoryData<TrainingStage, ContrastiveSettings> Runs() => new()
    {
        // ContrastiveSeg's recipe: joint training, hard anchors, both memories (the rings wrap within the 8 steps).
        { TrainingStage.Joint, Memory with { JointWeight = 0.1, AnchorsPerClass = 6, MaxAnchors = 24, HardAnchorFraction = 0.5 } },
        // The paper's pretraining with a memory and the cross-image pairs (the memory's keys are negatives of both views).
        { TrainingStage.Contrastive, Memory with { Variant = ContrastiveVariant.CrossImage } },
        // ReCo in the joint stage.
        { TrainingStage.Joint, new ContrastiveSettings { ResizeTo = 8, Temperature = 0.5, JointWeight = 0.1, Form = ContrastiveForm.Regional, AnchorsPerClass = 8, RegionalNegatives = 16, HardQueryThreshold = 0.97 } },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void A_run_with_peer_options_interrupted_and_resumed_ends_with_the_same_weights_memory_and_loss(TrainingStage stage, ContrastiveSettings loss)
    {
        var config = (SyntheticBatches.Config(_root, stage) with { Name = "uninterrupted", Contrastive = loss }).Validate();
        Dictionary<string, float[]> reference;
        byte[]? referenceMemory;
        double referenceLoss;
        using (var model = SyntheticBatches.Model(config))
        using (var objective = Objective(config))
        {
            referenceLoss = Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null).FinalLoss;
            reference = ModelWeights.Of(model);
            referenceMemory = objective.Memory is null ? null : MemoryBytes(objective);
        }
        Assert.True(double.IsFinite(referenceLoss));
        var files = Directory.GetFiles(CheckpointStore.Resolve(config.RunDirectory)).Select(Path.GetFileName).ToList();
        Assert.Equal(referenceMemory is not null, files.Contains("loss_memory.bin"));

        var interrupted = config with { Name = "interrupted" };
        using (var model = SyntheticBatches.Model(interrupted))
        using (var objective = Objective(interrupted))
            Assert.Throws<IOException>(() => Trainer.Run(interrupted, model, objective, SyntheticBatches.Source(k => k == 4), null, TextWriter.Null));
        Assert.Equal(3, new CheckpointStore(interrupted.RunDirectory).List()[^1].Step);

        // A new process: fresh weights, another RNG state, an empty memory.
        manual_seed(12345);
        using (var model = new DeepLabV3Plus(interrupted.Model.ToOptions(SyntheticBatches.NumClasses)))
        using (var objective = Objective(interrupted))
        {
            var result = Trainer.Run(interrupted, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
            Assert.Equal(3, result.ResumedFrom);
            Assert.Equal(BitConverter.DoubleToInt64Bits(referenceLoss), BitConverter.DoubleToInt64Bits(result.FinalLoss));
            var resumed = ModelWeights.Of(model);
            foreach (var (name, values) in reference)
                Assert.True(values.SequenceEqual(resumed[name]), $"{name} differs after resume");
            if (referenceMemory is not null) Assert.Equal(referenceMemory, MemoryBytes(objective));
        }
    }

    [Fact]
    public void The_joint_stage_trains_classifier_and_projection_head_together()
    {
        var config = SyntheticBatches.Config(_root, TrainingStage.Joint, steps: 2) with { Contrastive = new ContrastiveSettings { ResizeTo = 8, JointWeight = 0.1 } };
        using var model = SyntheticBatches.Model(config);
        var before = ModelWeights.Of(model);
        using var objective = Objective(config);
        Assert.Equal(model.parameters().Count(), objective.Parameters(model).Count());
        Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
        var after = ModelWeights.Of(model);
        foreach (var head in new[] { "classifier", "projection" })
            Assert.Contains(after.Keys, k => k.StartsWith(head, StringComparison.Ordinal) && !after[k].SequenceEqual(before[k]));
        Assert.StartsWith("joint-within-t0.07-w0.1_", RunNames.Derive(config));
    }

    [Fact]
    public void A_joint_stage_starts_from_a_contrastive_run_as_fine_tuning_does_keeping_its_projection_head()
    {
        // Fine-tuning with the contrastive term: pretraining with a memory, then the joint stage from it (hard anchors).
        var root = Path.Combine(_root, "session");
        var pretrain = TinySceneRun.Config(TrainingStage.Contrastive, root) with
        {
            Contrastive = TinySceneRun.Config(TrainingStage.Contrastive, root).Contrastive with { MemoryPixels = 8, MemoryPixelsPerImage = 2, MemoryRegions = 4 },
        };
        var session = RunSession.Open(pretrain);
        var log = new StringWriter();
        var pretrained = session.Train(pretrain, log);
        var joint = TinySceneRun.Config(TrainingStage.Joint, root) with
        {
            InitFrom = pretrained.RunDirectory,
            Contrastive = pretrain.Contrastive with { JointWeight = 0.1, AnchorsPerClass = 4, HardAnchorFraction = 0.5 },
        };
        var result = session.Train(joint, log);
        Assert.Equal(2, result.Steps);
        Assert.NotNull(result.Validation);
        Assert.Contains("all but the classifier", log.ToString());
        // The projection head it trained on is the pretrained one: at step 0 its checkpoint holds the pretrained head.
        using var start = new DeepLabV3Plus(joint.Model.ToOptions(11));
        using var pretrainedModel = new DeepLabV3Plus(joint.Model.ToOptions(11));
        CheckpointStore.LoadWeights(new CheckpointStore(result.RunDirectory).List()[0].Path, start);
        CheckpointStore.LoadWeights(pretrained.RunDirectory, pretrainedModel, exceptClassifier: true);
        var a = ModelWeights.Of(start);
        var b = ModelWeights.Of(pretrainedModel);
        Assert.All(a.Keys.Where(k => k.StartsWith("projection", StringComparison.Ordinal)), k => Assert.True(a[k].SequenceEqual(b[k]), k));
        Assert.True(File.Exists(Path.Combine(new CheckpointStore(result.RunDirectory).List()[^1].Path, "loss_memory.bin")));
    }

    [Fact]
    public void Peer_settings_are_validated_naming_the_field_and_value()
    {
        var joint = SyntheticBatches.Config(_root, TrainingStage.Joint);
        foreach (var (config, field, text) in new (TrainConfig, string, string)[]
        {
            (joint, "Contrastive.JointWeight", "Contrastive.JointWeight = 0 is invalid"),
            (joint with { Contrastive = new() { JointWeight = -1 } }, "Contrastive.JointWeight", "= -1"),
            (joint with { Contrastive = new() { JointWeight = 0.1, HardAnchorFraction = 0.5 } }, "Contrastive.HardAnchorFraction", "set AnchorsPerClass too"),
            (joint with { Contrastive = new() { JointWeight = 0.1, AnchorsPerClass = 8, HardAnchorFraction = 2 } }, "Contrastive.HardAnchorFraction", "= 2 is invalid"),
            (joint with { Stage = TrainingStage.Contrastive, Contrastive = new() { AnchorsPerClass = 8, HardAnchorFraction = 0.5 } }, "Contrastive.HardAnchorFraction", "Stage=Joint"),
            (joint with { Stage = TrainingStage.Contrastive, Contrastive = new() { Form = ContrastiveForm.Regional, AnchorsPerClass = 8, RegionalNegatives = 8, HardQueryThreshold = 0.9 } }, "Contrastive.HardQueryThreshold", "Stage=Joint"),
            (joint with { Contrastive = new() { JointWeight = 0.1, Form = ContrastiveForm.Regional, AnchorsPerClass = 8 } }, "Contrastive.RegionalNegatives", "ReCo: 256"),
            (joint with { Contrastive = new() { JointWeight = 0.1, MemoryPixels = 8 } }, "Contrastive.MemoryPixelsPerImage", "ContrastiveSeg: 10"),
            (joint with { Contrastive = new() { JointWeight = 0.1, MemoryRegions = -2 } }, "Contrastive.MemoryRegions", "= -2"),
            (joint with { Contrastive = new() { JointWeight = 0.1, MaxAnchors = 100 } }, "Contrastive.MaxAnchors", "= 100"),
        })
        {
            var e = Assert.Throws<ConfigException>(() => config.Validate());
            Assert.Equal(field, e.Field);
            Assert.Contains(text, e.Message);
            Assert.StartsWith(field + " = ", e.Message);
        }
        // --set reaches every one of them, by name, any case.
        var set = ConfigOverrides.Apply(joint, ["Contrastive.JointWeight=0.2", "contrastive.anchorsperclass=8", "Contrastive.HardAnchorFraction=0.5",
            "Contrastive.MemoryPixels=32", "Contrastive.MemoryPixelsPerImage=4", "Contrastive.MemoryRegions=8", "Contrastive.MaxAnchors=64"]).Validate();
        Assert.Equal((0.2, 8, 0.5, 32, 4, 8, 64), (set.Contrastive.JointWeight, set.Contrastive.AnchorsPerClass, set.Contrastive.HardAnchorFraction,
            set.Contrastive.MemoryPixels, set.Contrastive.MemoryPixelsPerImage, set.Contrastive.MemoryRegions, set.Contrastive.MaxAnchors));
        var reco = ConfigOverrides.Apply(joint, ["Contrastive.JointWeight=0.1", "Contrastive.Form=regional", "Contrastive.AnchorsPerClass=256",
            "Contrastive.RegionalNegatives=256", "Contrastive.HardQueryThreshold=0.97"]).Validate();
        Assert.Equal(ContrastiveForm.Regional, reco.Contrastive.Form);
        Assert.Equal(reco.ToJson(), TrainConfig.FromJson(reco.ToJson()).ToJson());
        Assert.NotEqual(RunNames.SettingsHash(set), RunNames.SettingsHash(joint with { Contrastive = set.Contrastive with { MemoryRegions = 0 } }));
    }

    [Fact]
    public void Configs_without_peer_options_keep_their_json_and_run_names()
    {
        // The contrastive section as every config wrote it before the options existed.
        const string before = "{\n    \"Variant\": \"WithinImage\",\n    \"Temperature\": 0.07,\n    \"ResizeTo\": 16,\n    \"BatchSampleSize\": 10000,\n    \"Pairing\": \"NextImage\"\n  }";
        Assert.Contains("\"Contrastive\": " + before.Replace("\n", Environment.NewLine), new TrainConfig().ToJson());
        foreach (var stage in new[] { TrainingStage.CrossEntropy, TrainingStage.Contrastive, TrainingStage.FineTune })
            foreach (var preset in TrainPresets.Names)
            {
                var c = TrainPresets.Get(preset, stage, "/data", 10);
                Assert.False(c.Contrastive.UsesPeerOptions);
                Assert.Equal(0, c.Contrastive.JointWeight);
                foreach (var name in new[] { "JointWeight", "AnchorsPerClass", "Form", "Memory", "Regional", "Hard" })
                    Assert.DoesNotContain($"\"{name}", c.ToJson());
            }
        // Pinned names (as the kit named these runs before the peer options).
        Assert.Equal("ce_r18w0.25-os8-small_fmscenes-n10_crop64_b8_300st_lr0.1_s0", Readable(TrainPresets.Cpu(TrainingStage.CrossEntropy, 10)));
        Assert.Equal(0.1, TrainPresets.Cpu(TrainingStage.Joint, 10).Contrastive.JointWeight);
        Assert.Equal(300, TrainPresets.Cpu(TrainingStage.Joint, 10).Optimizer.Steps);
    }

    private static string Readable(TrainConfig c) => c.RunName[..c.RunName.LastIndexOf('_')];
}
