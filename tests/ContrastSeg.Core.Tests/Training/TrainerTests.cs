using ContrastSeg.Evaluation;
using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class TrainerTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "contrastseg-trainer-" + Guid.NewGuid().ToString("N"));

    public TrainerTests() => TorchFixture.Init();

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private static SegmentationMetrics Validate(DeepLabV3Plus model)
    {
        var cm = new ConfusionMatrix(SyntheticBatches.NumClasses);
        using var scope = NewDisposeScope();
        for (var k = 500; k < 502; k++)
        {
            using var batch = SyntheticBatches.At(k);
            cm.Add(Inference.Predict(model, batch.Images), batch.Labels);
        }
        return cm.Metrics();
    }

    [Fact]
    public void A_run_writes_config_metrics_tensorboard_and_checkpoints()
    {
        var config = SyntheticBatches.Config(_root);
        using var model = SyntheticBatches.Model(config);
        using var objective = new CrossEntropyObjective();
        var output = new StringWriter();
        var result = Trainer.Run(config, model, objective, SyntheticBatches.Source(), Validate, output);

        Assert.Equal(8, result.Steps);
        Assert.NotNull(result.Validation);
        Assert.True(double.IsFinite(result.FinalLoss));
        var run = config.RunDirectory;
        // config.json records the device the run used (auto resolves to the CPU here), not the setting.
        Assert.Equal((config with { Runtime = new RuntimeSettings { Device = "cpu" } }).ToJson(), File.ReadAllText(Path.Combine(run, "config.json")));
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"));
        Assert.Equal(4, lines.Count(l => l.Contains("\"kind\":\"train\""))); // steps 2, 4, 6, 8
        Assert.Contains(lines, l => l.Contains("\"kind\":\"val\"") && l.Contains("mIoU"));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(run, "tb"), "events.out.tfevents*", SearchOption.AllDirectories));
        var store = new CheckpointStore(run);
        Assert.Equal(new[] { 6, 8 }, store.List().Select(c => c.Step)); // every 3 steps + final, keep last 2
        Assert.True(File.Exists(Path.Combine(store.BestDirectory, "model.bin")));
        Assert.Contains("(100 %)", output.ToString()); // redirected progress ends with a 100 % line
    }

    [Fact]
    public void The_best_validation_checkpoint_is_kept_and_is_what_a_run_folder_resolves_to()
    {
        // Validation every 2 steps of 8, peaking at step 4 (not a periodic checkpoint step: CheckpointEvery = 3),
        // as small validation splits do: the best weights must be checkpointed when they are seen.
        var config = SyntheticBatches.Config(_root) with { EvalEvery = 2 };
        var scores = new Queue<double>(new[] { 0.2, 0.6, 0.4, 0.3 });
        Dictionary<string, float[]>? atStep4 = null;
        SegmentationMetrics Scripted(DeepLabV3Plus model)
        {
            var score = scores.Dequeue();
            if (score == 0.6) atStep4 = ModelWeights.Of(model);
            var m = Validate(model);
            return m with { MeanIoU = score };
        }
        using var model = SyntheticBatches.Model(config);
        using var objective = new CrossEntropyObjective();
        Trainer.Run(config, model, objective, SyntheticBatches.Source(), Scripted, TextWriter.Null);

        var store = new CheckpointStore(config.RunDirectory);
        Assert.Equal(store.BestDirectory, CheckpointStore.Resolve(config.RunDirectory));
        var best = File.ReadAllText(Path.Combine(store.BestDirectory, "state.json"));
        Assert.Contains("\"Step\": 4", best);
        using var reloaded = SyntheticBatches.Model(config);
        CheckpointStore.LoadWeights(config.RunDirectory, reloaded);
        var weights = ModelWeights.Of(reloaded);
        foreach (var (name, values) in atStep4!) Assert.Equal(values, weights[name]);
    }

    [Theory]
    [InlineData(TrainingStage.CrossEntropy)]
    [InlineData(TrainingStage.Contrastive)]
    public void A_run_interrupted_and_resumed_ends_with_the_same_weights(TrainingStage stage)
    {
        var config = SyntheticBatches.Config(_root, stage) with { Name = "uninterrupted" };
        Dictionary<string, float[]> reference;
        using (var model = SyntheticBatches.Model(config))
        using (var objective = Objective(config))
        {
            Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
            reference = ModelWeights.Of(model);
        }

        var interrupted = config with { Name = "interrupted" };
        using (var model = SyntheticBatches.Model(interrupted))
        using (var objective = Objective(interrupted))
            Assert.Throws<IOException>(() => Trainer.Run(interrupted, model, objective, SyntheticBatches.Source(k => k == 4), null, TextWriter.Null));
        Assert.Equal(3, new CheckpointStore(interrupted.RunDirectory).List()[^1].Step); // besides the step-0 one

        // A new process would start from fresh weights and a different RNG state: simulate that.
        manual_seed(12345);
        using (var model = new DeepLabV3Plus(interrupted.Model.ToOptions(SyntheticBatches.NumClasses)))
        using (var objective = Objective(interrupted))
        {
            var result = Trainer.Run(interrupted, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
            Assert.Equal(3, result.ResumedFrom);
            var resumed = ModelWeights.Of(model);
            Assert.Equal(reference.Keys, resumed.Keys);
            foreach (var (name, values) in reference)
                Assert.True(values.SequenceEqual(resumed[name]), $"{name} differs after resume");
        }
    }

    [Fact]
    public void A_libtorch_error_mid_run_is_recovered_from_the_last_checkpoint_with_identical_weights()
    {
        var config = SyntheticBatches.Config(_root) with { Name = "clean" };
        Dictionary<string, float[]> reference;
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
        {
            Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
            reference = ModelWeights.Of(model);
        }
        var flaky = config with { Name = "flaky" };
        var failed = false;
        Func<long, IEnumerable<ContrastSeg.Data.Batch>> source = start => SyntheticBatches.Source()(start).Select((b, i) =>
        {
            if (start + i == 5 && !failed)
            {
                failed = true;
                throw new System.Runtime.InteropServices.ExternalException("simulated libtorch error");
            }
            return b;
        });
        var log = new StringWriter();
        using var model2 = SyntheticBatches.Model(flaky);
        using var objective2 = new CrossEntropyObjective();
        var result = Trainer.Run(flaky, model2, objective2, source, null, log);
        Assert.True(failed);
        Assert.Contains("resuming from the last checkpoint", log.ToString());
        Assert.Equal(8, result.Steps);
        // Each automatic resume is counted in metrics.jsonl, with the step it resumed from and the error.
        var resumes = File.ReadAllLines(Path.Combine(flaky.RunDirectory, "metrics.jsonl")).Where(l => l.Contains("\"kind\":\"resume\"")).ToList();
        var resume = Assert.Single(resumes);
        Assert.Contains("\"step\":3", resume);
        Assert.Contains("\"attempt\":2", resume);
        Assert.Contains("simulated libtorch error", resume);
        foreach (var (name, values) in reference)
            Assert.True(values.SequenceEqual(ModelWeights.Of(model2)[name]), $"{name} differs after recovery");
    }

    private static ITrainingObjective Objective(TrainConfig c) =>
        c.Stage == TrainingStage.Contrastive ? new ContrastiveObjective(c.Contrastive, c.Seed) : new CrossEntropyObjective();

    [Fact]
    public void A_nan_loss_stops_the_run_naming_step_and_term_and_keeps_the_last_checkpoint()
    {
        var config = SyntheticBatches.Config(_root);
        using var model = SyntheticBatches.Model(config);
        using var objective = new CrossEntropyObjective();
        Func<long, IEnumerable<ContrastSeg.Data.Batch>> poisoned = start => SyntheticBatches.Source()(start).Select((b, i) =>
        {
            if (start + i == 4) b.Images.fill_(double.NaN);
            return b;
        });
        var ex = Assert.Throws<TrainingDivergedException>(() => Trainer.Run(config, model, objective, poisoned, null, TextWriter.Null));
        Assert.Contains("step 5", ex.Message);
        Assert.Contains("cross_entropy", ex.Message);
        Assert.Contains("step-0000003", ex.Message);
        Assert.Equal(3, new CheckpointStore(config.RunDirectory).List()[^1].Step);
    }

    [Fact]
    public void A_resume_with_other_settings_is_refused()
    {
        var config = SyntheticBatches.Config(_root, steps: 3);
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
            Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
        var changed = config with { Optimizer = config.Optimizer with { LearningRate = 0.01 } };
        using var model2 = SyntheticBatches.Model(changed);
        using var objective2 = new CrossEntropyObjective();
        var ex = Assert.Throws<ConfigException>(() => Trainer.Run(changed, model2, objective2, SyntheticBatches.Source(), null, TextWriter.Null));
        Assert.Contains("other settings", ex.Message);

        // Settings that cannot change the weights (workers, logging cadence) do not block a resume.
        var cosmetic = config with { LogEvery = 1, Data = config.Data with { Workers = 3 } };
        using var model3 = SyntheticBatches.Model(cosmetic);
        using var objective3 = new CrossEntropyObjective();
        Assert.Equal(3, Trainer.Run(cosmetic, model3, objective3, SyntheticBatches.Source(), null, TextWriter.Null).ResumedFrom);
    }

    [Fact]
    public void No_tensor_survives_training_steps()
    {
        var config = SyntheticBatches.Config(_root, steps: 2) with { Name = "a" };
        using var model = SyntheticBatches.Model(config);
        using var objective = new ContrastiveObjective(config.Contrastive, 0);
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
        var afterTwo = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Trainer.Run(config with { Name = "b", Optimizer = config.Optimizer with { Steps = 6 } }, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
        var afterSix = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Equal(afterTwo, afterSix); // more steps, no more live tensors
        Assert.True(afterTwo - before <= model.parameters().Count(), $"{afterTwo - before} tensors left after a run (gradients at most)");
    }
}
