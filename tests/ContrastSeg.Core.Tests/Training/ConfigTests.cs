using ContrastSeg.Losses;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

public class ConfigTests
{
    [Fact]
    public void Config_round_trips_through_json()
    {
        var c = new TrainConfig { Stage = TrainingStage.Contrastive, Seed = 7, Contrastive = new ContrastiveSettings { Variant = ContrastiveVariant.Batch } };
        var back = TrainConfig.FromJson(c.ToJson());
        Assert.Equal(c.ToJson(), back.ToJson());
        Assert.Contains("\"Batch\"", c.ToJson()); // enums by name
    }

    [Fact]
    public void Unknown_json_fields_are_named()
    {
        var ex = Assert.Throws<ConfigException>(() => TrainConfig.FromJson("{\"Optimizer\": {\"LearnRate\": 0.1}}"));
        Assert.Contains("LearnRate", ex.Message);
    }

    [Fact]
    public void Overrides_set_nested_fields_case_insensitively()
    {
        var c = ConfigOverrides.Apply(new TrainConfig(), new[] { "optimizer.learningrate=0.1", "Data.Labelled=20", "Contrastive.Variant=CrossImage", "Data.ContrastiveDistortion=false", "InitFrom=runs/x" });
        Assert.Equal(0.1, c.Optimizer.LearningRate);
        Assert.Equal(20, c.Data.Labelled);
        Assert.Equal(ContrastiveVariant.CrossImage, c.Contrastive.Variant);
        Assert.False(c.Data.ContrastiveDistortion);
        Assert.Equal("runs/x", c.InitFrom);
    }

    [Theory]
    [InlineData("Optimizer.LearnRate=0.1", "LearnRate")]
    [InlineData("Optimizer.LearningRate=fast", "Optimizer.LearningRate")]
    [InlineData("Contrastive.Variant=Sideways", "Variant")]
    [InlineData("nonsense", "nonsense")]
    public void Bad_overrides_name_the_key(string assignment, string named)
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(new TrainConfig(), new[] { assignment }));
        Assert.Contains(named, ex.Message);
    }

    [Theory]
    [InlineData("Optimizer.LearningRate=-0.1", "Optimizer.LearningRate")]
    [InlineData("Optimizer.Steps=0", "Optimizer.Steps")]
    [InlineData("Data.Dataset=imagenet", "Data.Dataset")]
    [InlineData("Data.Dataset=voc", "Data.Root")]
    [InlineData("Data.Root=/nonexistent/voc", "Data.Root")]
    [InlineData("Data.Crop=100000", "Data.Crop")]
    [InlineData("Model.OutputStride=32", "Model.OutputStride")]
    [InlineData("Stage=FineTune", "InitFrom")]
    public void Invalid_values_are_rejected_before_work_starts_naming_the_field(string assignment, string field)
    {
        var c = ConfigOverrides.Apply(new TrainConfig(), new[] { assignment });
        var ex = Assert.Throws<ConfigException>(() => c.Validate());
        Assert.Equal(field, ex.Field);
        Assert.Contains(field, ex.Message);
    }

    [Fact]
    public void Run_names_encode_the_settings_that_distinguish_runs()
    {
        var baseline = new TrainConfig { Data = new DataSettings { Labelled = 20 } };
        var name = baseline.RunName;
        Assert.Matches("^ce_r18w0.25-os8_fmscenes-n20_crop64_b8_1500st_lr0.03_s0_[0-9a-f]{6}$", name);
        // Settings outside the readable part still give another run (a changed profile never reuses a stale folder)...
        Assert.NotEqual(name, (baseline with { Data = baseline.Data with { ScaleMax = 1.0 } }).RunName);
        Assert.NotEqual(name, (baseline with { Optimizer = baseline.Optimizer with { WarmupSteps = 10 } }).RunName);
        // ...while where a run goes and how often it logs do not.
        Assert.Equal(name, (baseline with { OutputRoot = "elsewhere", LogEvery = 7, Data = baseline.Data with { Workers = 2 } }).RunName);
        Assert.NotEqual(name, (baseline with { Seed = 1 }).RunName);
        Assert.NotEqual(name, (baseline with { Data = baseline.Data with { Labelled = 200 } }).RunName);
        var contrastive = baseline with { Stage = TrainingStage.Contrastive, Contrastive = new ContrastiveSettings { Variant = ContrastiveVariant.CrossImage } };
        Assert.StartsWith("contrastive-cross-t0.07_", contrastive.RunName);
        Assert.Contains("-nodistort", (contrastive with { Data = contrastive.Data with { ContrastiveDistortion = false } }).RunName);
        // A student trained on pseudo-labels is another run than its teacher, and so is one from other weights.
        var student = baseline with { Data = baseline.Data with { PseudoLabels = "runs/pseudo/teacher" } };
        Assert.Contains("n20+pseudo-", student.RunName);
        Assert.NotEqual(baseline.RunName, student.RunName);
        Assert.NotEqual((baseline with { InitFrom = "runs/a" }).RunName, (baseline with { InitFrom = "runs/b" }).RunName);
    }

    [Fact]
    public void Learning_rate_warms_up_linearly_then_decays_by_cosine_to_zero()
    {
        Assert.Equal(0.025, LearningRateSchedule.At(0, 100, 0.1, warmupSteps: 4), 12);
        Assert.Equal(0.1, LearningRateSchedule.At(3, 100, 0.1, warmupSteps: 4), 12);
        Assert.Equal(0.1, LearningRateSchedule.At(4, 100, 0.1, warmupSteps: 4), 12);
        Assert.Equal(0.05, LearningRateSchedule.At(50, 100, 0.1), 12);
        Assert.True(LearningRateSchedule.At(99, 100, 0.1) < 1e-4);
    }
}
