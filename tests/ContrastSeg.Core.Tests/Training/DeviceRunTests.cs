using System.Text.Json.Nodes;
using ContrastSeg.Analysis;
using ContrastSeg.Losses;
using ContrastSeg.Runtime;
using ContrastSeg.Tests.Data;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// The device setting end to end, on the device this machine has (the CPU): every stage, the evaluation, pseudo-labels
/// and feature sampling run with an explicit device; what moves between devices keeps its values bit for bit; the
/// record of the device and a resume on another device.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class DeviceRunTests : IDisposable
{
    private readonly TempDir _runs = new();

    public DeviceRunTests() => TorchFixture.Init();

    public void Dispose() => _runs.Dispose();

    private TrainConfig Tiny(TrainingStage stage, string device = "cpu") => TinySceneRun.Config(stage, _runs.Path, device);

    private static string Device(string checkpointOrRun) =>
        CheckpointStore.ReadState(CheckpointStore.Resolve(checkpointOrRun)).Device ?? "(none)";

    [Fact]
    public void Every_stage_and_every_command_runs_on_an_explicit_cpu_device()
    {
        var log = new StringWriter();
        var baseline = Runs.Train(Tiny(TrainingStage.CrossEntropy), log);
        var contrastive = Runs.Train(Tiny(TrainingStage.Contrastive), log);
        var fineTune = Runs.Train(Tiny(TrainingStage.FineTune) with { InitFrom = contrastive.RunDirectory }, log);
        foreach (var run in new[] { baseline, contrastive, fineTune })
        {
            Assert.Equal(2, run.Steps);
            Assert.True(double.IsFinite(run.FinalLoss), run.RunDirectory);
            Assert.Contains("\"Device\": \"cpu\"", File.ReadAllText(Path.Combine(run.RunDirectory, "config.json")));
            Assert.Equal("cpu", Device(run.RunDirectory));
        }
        Assert.Equal(3, log.ToString().Split('\n').Count(l => l.Contains("] device: cpu (Runtime.Device=cpu)")));
        Assert.NotNull(fineTune.Validation);

        var config = Tiny(TrainingStage.CrossEntropy);
        var report = Runs.Evaluate(baseline.RunDirectory, config, console: log);
        Assert.True(report.Metrics.Pixels > 0);
        Assert.Contains("[evaluate] device: cpu", log.ToString());
        // eval.json names the split the run validated on (here the scenes' test split), not a fixed "val".
        var onTest = Runs.Train(config with { Data = config.Data with { ValSplit = "test" } }, log);
        Assert.Equal("test", JsonNode.Parse(File.ReadAllText(Path.Combine(onTest.RunDirectory, "eval.json")))!["Split"]!.GetValue<string>());
        Assert.Equal("val", JsonNode.Parse(File.ReadAllText(Path.Combine(baseline.RunDirectory, "eval.json")))!["Split"]!.GetValue<string>());
        var pseudo = Runs.PseudoLabel(baseline.RunDirectory, config, new PseudoLabelOptions(0.0, null), Path.Combine(_runs.Path, "pseudo"), log);
        Assert.Equal(2, pseudo.Images); // the 2 unlabelled scenes of 6
        Assert.Equal(2, Runs.Predict(baseline.RunDirectory, config, Path.Combine(_runs.Path, "predictions"), limit: 2, console: log));

        var (features, labels) = Runs.SampleFeatures(fineTune.RunDirectory, config, perClass: 4, seed: 0);
        using (features)
        using (labels)
        {
            Assert.Equal(DeviceType.CPU, features.device_type);
            var stats = FeatureSpace.Measure(features, labels);
            Assert.True(stats.Classes >= 2);
            using var embedded = Tsne.Embed(features, new TsneOptions(Perplexity: 2, Iterations: 10));
            Assert.Equal(new[] { features.shape[0], 2L }, embedded.shape);
            Assert.Equal(features.device_type, embedded.device_type);
        }
    }

    [Fact]
    public void A_model_a_batch_and_a_checkpoint_keep_their_values_bit_for_bit_through_the_device_moves()
    {
        var cpu = Devices.Choose("cpu").Device;
        // The model.
        var config = SyntheticBatches.Config(_runs.Path) with { Optimizer = SyntheticBatches.Config(_runs.Path).Optimizer with { Steps = 3 }, CheckpointEvery = 3 };
        using var model = SyntheticBatches.Model(config);
        var before = Bytes(model);
        model.to(cpu);
        Assert.Equal(before, Bytes(model));

        // A batch: the moved one holds the same values; disposing it leaves the loaded one intact.
        using var loaded = SyntheticBatches.At(7);
        var images = loaded.Images.bytes.ToArray();
        using (var moved = loaded.To(cpu))
        {
            Assert.Equal(images, moved.Images.bytes.ToArray());
            Assert.Equal(loaded.Labels.data<long>().ToArray(), moved.Labels.data<long>().ToArray());
            Assert.Equal(loaded.Images2!.bytes.ToArray(), moved.Images2!.bytes.ToArray());
            Assert.Equal(loaded.Labels2!.data<long>().ToArray(), moved.Labels2!.data<long>().ToArray());
        }
        Assert.Equal(images, loaded.Images.bytes.ToArray());

        // A checkpoint: restored into a fresh model and optimiser, they hold exactly what was trained, and write the same files.
        using var objective = new CrossEntropyObjective();
        Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
        var checkpoint = new CheckpointStore(config.RunDirectory).Latest()!;
        using var restored = SyntheticBatches.Model(config with { Seed = 99 });
        restored.to(cpu);
        var o = config.Optimizer;
        using var optimizer = new SgdOptimizer(objective.Parameters(restored), o.LearningRate, o.Momentum, o.WeightDecay);
        CheckpointStore.Restore(checkpoint, restored, optimizer, null);
        Assert.Equal(Bytes(model), Bytes(restored));
        for (var i = 0; i < optimizer.Parameters.Count; i++)
            if (optimizer.MomentumBuffer(i) is { } buffer)
                Assert.Equal(optimizer.Parameters[i].device_type, buffer.device_type);
        using (var written = new MemoryStream())
        {
            restored.save(written);
            Assert.Equal(File.ReadAllBytes(Path.Combine(checkpoint, "model.bin")), written.ToArray());
        }
        using (var written = new MemoryStream())
        {
            optimizer.Save(written);
            Assert.Equal(File.ReadAllBytes(Path.Combine(checkpoint, "optimizer.bin")), written.ToArray());
        }
    }

    [Fact]
    public void A_run_resumed_on_another_device_than_its_checkpoint_says_so_and_is_the_same_run()
    {
        var config = SyntheticBatches.Config(_runs.Path); // 8 steps, checkpoints every 3
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
            Assert.Throws<IOException>(() => Trainer.Run(config, model, objective, SyntheticBatches.Source(k => k == 4), null, TextWriter.Null));
        var store = new CheckpointStore(config.RunDirectory);
        var latest = store.Latest()!;
        Assert.Equal("cpu", Device(latest));
        // As if a GPU had written it: the files are the same on every device, only the record says where it ran.
        var statePath = Path.Combine(latest, "state.json");
        var state = JsonNode.Parse(File.ReadAllText(statePath))!;
        state["Device"] = "cuda:0";
        File.WriteAllText(statePath, state.ToJsonString());

        var log = new StringWriter();
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
        {
            var result = Trainer.Run(config with { Runtime = new RuntimeSettings { Device = "cpu" } }, model, objective, SyntheticBatches.Source(), null, log);
            Assert.Equal(3, result.ResumedFrom);
        }
        Assert.Contains($"resuming {Path.GetFileName(latest)} written on cuda:0 on cpu", log.ToString());
        Assert.Equal("cpu", Device(config.RunDirectory));
    }

    private static byte[] Bytes(nn.Module model)
    {
        using var stream = new MemoryStream();
        model.save(stream);
        return stream.ToArray();
    }
}
