using ContrastSeg.Losses;
using ContrastSeg.Models;
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
        var baseline = new TrainConfig { Data = new DataSettings { Labelled = 20 }, Model = FormerDefaultModel };
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

    /// <summary>ModelSettings' defaults before they were read from SegmentationModelOptions.CpuSmall (torchvision's stem, 64 decoder channels).</summary>
    private static readonly ModelSettings FormerDefaultModel = new() { Stem = EncoderStem.ImageNet, DecoderChannels = 64 };

    [Fact]
    public void The_model_settings_default_to_the_cpu_model_preset_and_map_to_it_and_back()
    {
        Assert.Equal(ModelSettings.From(SegmentationModelOptions.CpuSmall(numClasses: 1)), new ModelSettings());
        Assert.Equal(SegmentationModelOptions.CpuSmall(7), new ModelSettings().ToOptions(7));
        Assert.Equal(SegmentationModelOptions.Paper(21), ModelSettings.From(SegmentationModelOptions.Paper(21)).ToOptions(21));
        // A config file that leaves the model out trains the cpu preset's model.
        Assert.Equal(TrainPresets.Cpu(TrainingStage.CrossEntropy).Model, TrainConfig.FromJson("{}").Model);
    }

    [Fact]
    public void A_stage_shortened_with_set_gets_the_warm_up_rule_again_unless_the_warm_up_is_set_too()
    {
        // The cpu preset at 300 steps warms up for 75; --set Optimizer.Steps=10 stopped with "WarmupSteps = 75 must be in [0, 10)".
        var shortened = ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.CrossEntropy, 10), ["Optimizer.Steps=10"]).Validate();
        Assert.Equal((10, 2), (shortened.Optimizer.Steps, shortened.Optimizer.WarmupSteps));
        var explicitWarmup = ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.CrossEntropy, 10), ["Optimizer.Steps=10", "Optimizer.WarmupSteps=5"]);
        Assert.Equal(5, explicitWarmup.Optimizer.WarmupSteps);
        Assert.Equal(75, ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.CrossEntropy, 10), ["Optimizer.Steps=3000"]).Optimizer.WarmupSteps);
    }

    [Fact]
    public void Run_names_are_pinned()
    {
        // Run names carry a hash of the settings JSON as spelled now (since 2026-12-07; before, the former spellings of
        // moved settings were hashed): a new setting must not move every existing run to a new folder.
        Assert.Equal("ce_r18w0.25-os8_fmscenes-all_crop64_b8_1500st_lr0.03_s0_e5adee", new TrainConfig { Model = FormerDefaultModel }.RunName);
        Assert.Equal("finetune_r18w0.25-os8-small_fmscenes-all_crop64_b8_1300st_lr0.1_s0_69e9fd", TrainPresets.Cpu(TrainingStage.FineTune).RunName);
        Assert.Equal("ce_r18w0.25-os8-small_fmscenes-n10_crop64_b8_300st_lr0.1_s0_30d154", TrainPresets.Cpu(TrainingStage.CrossEntropy, 10).RunName);
        Assert.Equal(1e-3, TrainPresets.Cpu(TrainingStage.Contrastive).Optimizer.WeightDecay);
    }

    [Theory]
    [InlineData("RunName=mine", "Name=")]
    [InlineData("runname=mine", "Name=")]
    [InlineData("RunDirectory=/tmp/x", "OutputRoot")]
    public void Derived_settings_cannot_be_set_and_the_message_says_what_to_set(string assignment, string hint)
    {
        // 46f90c8 accepted these and ignored them: the run went to the derived folder.
        var ex = Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(new TrainConfig(), new[] { assignment }));
        Assert.Contains("derived", ex.Message);
        Assert.Contains(hint, ex.Message);
    }

    [Fact]
    public void The_unknown_setting_message_lists_only_settable_keys()
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(new TrainConfig(), new[] { "Nam=x" }));
        Assert.Contains("Name", ex.Message);
        Assert.Contains("AllowPartialInit", ex.Message);
        Assert.DoesNotContain("RunName", ex.Message);
        Assert.DoesNotContain("RunDirectory", ex.Message);
    }

    [Theory]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("../elsewhere")]
    [InlineData("..\\elsewhere")]
    [InlineData("a\\b")]
    [InlineData("/tmp/abs")]
    [InlineData(" ")]
    public void A_name_that_would_leave_OutputRoot_is_rejected_naming_the_value(string name)
    {
        var c = ConfigOverrides.Apply(new TrainConfig(), new[] { "Name=" + name });
        var ex = Assert.Throws<ConfigException>(() => c.Validate());
        Assert.Equal("Name", ex.Field);
        Assert.Contains($"'{c.Name}'", ex.Message);
        Assert.Equal("my-run", ConfigOverrides.Apply(new TrainConfig(), new[] { "Name=my-run" }).Validate().Name);
    }

    [Theory]
    [InlineData("Optimizer.LearningRate=NaN", "NaN")]
    [InlineData("Optimizer.LearningRate=1e400", "1e400")]
    [InlineData("Optimizer.LearningRate=-Infinity", "-Infinity")]
    [InlineData("Contrastive.Temperature=Infinity", "Infinity")]
    [InlineData("Data.Resize=nan", "nan")]
    public void Non_finite_numbers_are_refused_naming_the_setting_and_value(string assignment, string value)
    {
        // 46f90c8: System.ArgumentException from the JSON writer ("... cannot be written as valid JSON").
        var key = assignment[..assignment.IndexOf('=')];
        var ex = Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(new TrainConfig(), new[] { assignment }));
        Assert.Equal($"'{key}' takes a finite number, got '{value}'", ex.Message);
        Assert.Equal(key, ex.Field);
    }

    [Theory]
    [InlineData("Contrastive.Variant=Foo", "'Contrastive.Variant' takes one of WithinImage, CrossImage, Batch, got 'Foo'")]
    [InlineData("Model.Depth=ResNet19", "'Model.Depth' takes one of ResNet18, ResNet34, ResNet50, ResNet101, got 'ResNet19'")]
    [InlineData("Stage=Pretrain", "'Stage' takes one of CrossEntropy, Contrastive, FineTune, Joint, got 'Pretrain'")]
    [InlineData("Optimizer.Steps=20.5", "'Optimizer.Steps' takes an integer, got '20.5'")]
    [InlineData("Optimizer.Steps=3000000000", "'Optimizer.Steps' takes an integer from -2147483648 to 2147483647, got '3000000000'")]
    [InlineData("Data.Labelled=ten", "'Data.Labelled' takes an integer, got 'ten'")]
    [InlineData("Optimizer.Steps=null", "'Optimizer.Steps' cannot be null: it takes an integer")]
    [InlineData("Data.ContrastiveDistortion=yes", "'Data.ContrastiveDistortion' takes true or false, got 'yes'")]
    [InlineData("Data=5", "'Data' takes a section of settings, got '5'")]
    public void Enum_integer_and_flag_settings_say_what_they_take(string assignment, string message)
    {
        // 46f90c8: "override produced an invalid config: config JSON is invalid at $.Contrastive.Variant: The JSON value could not be converted to ..."
        var ex = Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(new TrainConfig(), new[] { assignment }));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void Overrides_parse_every_setting_by_its_type()
    {
        // Every settable leaf has a type the overrides read (a new setting of another type fails here, not for a user).
        foreach (var (path, type) in ConfigSchema.All())
            Assert.DoesNotContain(type.Name, ConfigSchema.Describe(type).Split(' '));
        var c = ConfigOverrides.Apply(new TrainConfig(), new[] { "Data.Labelled=12", "Data.Labelled=null", "Model.Depth=resnet50", "Optimizer.WeightDecay=1e-4", "Data.Root=null" });
        Assert.Null(c.Data.Labelled);
        Assert.Equal(ResNetDepth.ResNet50, c.Model.Depth);
        Assert.Equal(1e-4, c.Optimizer.WeightDecay);
        Assert.Contains("'Data.Dataset' cannot be null", Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(c, new[] { "Data.Dataset=null" })).Message);
    }

    [Fact]
    public void Config_files_with_a_value_of_the_wrong_kind_name_the_setting_and_what_it_takes()
    {
        var ex = Assert.Throws<ConfigException>(() => TrainConfig.FromJson("{\n  \"Contrastive\": { \"Variant\": \"Foo\" }\n}"));
        Assert.Equal("config JSON (line 2): 'Contrastive.Variant' takes one of WithinImage, CrossImage, Batch, got \"Foo\"", ex.Message);
        Assert.Equal("Contrastive.Variant", ex.Field);
        ex = Assert.Throws<ConfigException>(() => TrainConfig.FromJson("{\"Optimizer\": {\"Steps\": 20.5}}"));
        Assert.Contains("'Optimizer.Steps' takes an integer, got 20.5", ex.Message);
        ex = Assert.Throws<ConfigException>(() => TrainConfig.FromJson("{\"Optimizer\": {\"LearnRate\": 0.1}}"));
        Assert.Contains("unknown setting 'Optimizer.LearnRate'", ex.Message);
        Assert.Contains("LearningRate", ex.Message);
    }

    [Theory]
    [InlineData("Optimizer.WeightDecay=-1", "Optimizer.WeightDecay")]
    [InlineData("Optimizer.Momentum=1", "Optimizer.Momentum")]
    [InlineData("Contrastive.Temperature=0", "Contrastive.Temperature")]
    [InlineData("Contrastive.ResizeTo=100000", "Contrastive.ResizeTo")]
    [InlineData("Data.ScaleMax=1000", "Data.ScaleMax")]
    [InlineData("Data.ScaleMin=3", "Data.ScaleMin")]
    [InlineData("Data.Scenes.Val=0", "Data.Scenes.Val")]
    [InlineData("Data.Workers=100000", "Data.Workers")]
    [InlineData("Data.DistortionStrength=-0.5", "Data.DistortionStrength")]
    [InlineData("Model.AsppDropout=1", "Model.AsppDropout")]
    [InlineData("Model.AsppChannels=0", "Model.AsppChannels")]
    [InlineData("Model.LowLevelChannels=0", "Model.LowLevelChannels")]
    [InlineData("Model.DecoderChannels=-4", "Model.DecoderChannels")]
    [InlineData("Model.ProjectionChannels=0", "Model.ProjectionChannels")]
    [InlineData("EvalEvery=-1", "EvalEvery")]
    [InlineData("KeepLast=0", "KeepLast")]
    public void Numeric_settings_are_range_checked_naming_the_field(string assignment, string field)
    {
        var c = ConfigOverrides.Apply(new TrainConfig(), new[] { assignment });
        var ex = Assert.Throws<ConfigException>(() => c.Validate());
        Assert.Equal(field, ex.Field);
        Assert.Contains(assignment[(assignment.IndexOf('=') + 1)..], ex.Message);
    }

    [Fact]
    public void Non_finite_values_set_from_code_are_rejected_too()
    {
        var c = new TrainConfig();
        Assert.Equal("Optimizer.WeightDecay", Assert.Throws<ConfigException>(() => (c with { Optimizer = c.Optimizer with { WeightDecay = double.PositiveInfinity } }).Validate()).Field);
        Assert.Equal("Contrastive.Temperature", Assert.Throws<ConfigException>(() => (c with { Contrastive = c.Contrastive with { Temperature = double.PositiveInfinity } }).Validate()).Field);
        Assert.Equal("Data.ScaleMax", Assert.Throws<ConfigException>(() => (c with { Data = c.Data with { ScaleMax = double.NaN } }).Validate()).Field);
        Assert.Equal("Contrastive.Variant", Assert.Throws<ConfigException>(() => TrainConfig.FromJson("{\"Contrastive\": {\"Variant\": 7}}").Validate()).Field);
    }

    [Fact]
    public void AllowPartialInit_is_a_setting_that_leaves_the_run_and_its_json_alone()
    {
        var c = ConfigOverrides.Apply(new TrainConfig(), new[] { "allowpartialinit=true" });
        Assert.True(c.AllowPartialInit);
        Assert.Equal(new TrainConfig().RunName, c.RunName);
        Assert.Equal(new TrainConfig().WeightsDefiningJson(), c.WeightsDefiningJson());
        Assert.True(TrainConfig.FromJson(c.ToJson()).AllowPartialInit);
        Assert.DoesNotContain("AllowPartialInit", new TrainConfig().ToJson());
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
