using System.Text.Json.Nodes;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>Configs of earlier runs and <c>--set</c> keys of earlier scripts read as the settings are spelled now (ConfigMigration).</summary>
public class ConfigMigrationTests
{
    private static readonly TrainConfig Scenes = TrainPresets.Cpu(TrainingStage.Contrastive, 10) with
    {
        Data = TrainPresets.Cpu(TrainingStage.Contrastive, 10).Data with { Scenes = new SceneSettings { Size = 32, Train = 6, Val = 2 } },
    };

    [Fact]
    public void Scene_settings_read_under_their_former_flat_names()
    {
        Assert.Contains("\"Scenes\": {", Scenes.ToJson());
        var flat = JsonNode.Parse(Scenes.ToJson())!.AsObject();
        var data = flat["Data"]!.AsObject();
        data.Remove("Scenes");
        data["SceneSize"] = 32; data["TrainScenes"] = 6; data["ValScenes"] = 2;
        Assert.Equal(Scenes, TrainConfig.FromJson(flat.ToJsonString()));
        Assert.Equal(Scenes, ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.Contrastive, 10), ["Data.SceneSize=32", "data.trainscenes=6", "Data.Scenes.Val=2"]));
        // Run names hash the current spelling only.
        Assert.Contains("\"Scenes\": {", Scenes.WeightsDefiningJson());
        Assert.DoesNotContain("SceneSize", Scenes.WeightsDefiningJson());
        // Both spellings at once is a mistake, named.
        data["Scenes"] = new JsonObject { ["Size"] = 48 };
        Assert.Equal("Data.SceneSize", Assert.Throws<ConfigException>(() => TrainConfig.FromJson(flat.ToJsonString())).Field);
    }

    [Fact]
    public void The_cross_entropy_stage_reads_under_its_former_name_Baseline()
    {
        var ce = TrainPresets.Cpu(TrainingStage.CrossEntropy, 10);
        Assert.Contains("\"Stage\": \"CrossEntropy\"", ce.ToJson());
        Assert.Equal(ce, TrainConfig.FromJson(ce.ToJson().Replace("\"CrossEntropy\"", "\"Baseline\"")));
        Assert.Equal(TrainingStage.CrossEntropy, ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.Contrastive), ["Stage=baseline"]).Stage);
        Assert.Equal(TrainingStage.CrossEntropy, TrainingStages.Parse("Baseline"));
        Assert.Equal(TrainingStage.FineTune, TrainingStages.Parse("finetune"));
        Assert.Equal("--stage", Assert.Throws<ConfigException>(() => TrainingStages.Parse("ce", "--stage")).Field);
        Assert.Contains("\"Stage\": \"CrossEntropy\"", ce.WeightsDefiningJson());
    }

    [Fact]
    public void Model_width_and_dropout_read_under_their_former_names()
    {
        var model = TrainPresets.Cpu(TrainingStage.CrossEntropy) with
        {
            Model = TrainPresets.Cpu(TrainingStage.CrossEntropy).Model with { WidthMultiplier = 0.5, AsppDropout = 0.2 },
        };
        var former = JsonNode.Parse(model.ToJson())!.AsObject();
        var m = former["Model"]!.AsObject();
        m.Remove("WidthMultiplier"); m.Remove("AsppDropout");
        m["Width"] = 0.5; m["Dropout"] = 0.2;
        Assert.Equal(model, TrainConfig.FromJson(former.ToJsonString()));
        Assert.Equal(model, ConfigOverrides.Apply(TrainPresets.Cpu(TrainingStage.CrossEntropy), ["Model.Width=0.5", "model.dropout=0.2"]));
        m["WidthMultiplier"] = 0.25;
        var both = Assert.Throws<ConfigException>(() => TrainConfig.FromJson(former.ToJsonString()));
        Assert.Equal("Model.Width", both.Field);
        Assert.Contains("Model.WidthMultiplier", both.Message);
    }

    [Fact]
    public void A_config_spelled_the_current_way_is_read_as_it_is()
    {
        var c = TrainPresets.Cpu(TrainingStage.FineTune, 100) with { InitFrom = "runs/x" };
        Assert.Equal(c.ToJson(), TrainConfig.FromJson(c.ToJson()).ToJson());
    }
}
