using System.Text.Json.Nodes;
using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Tests.Data;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// Run folders (issue 29, third pass):
/// a read-only output folder is one error naming it.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class RunFolderTests : IDisposable
{
    private readonly TempDir _runs = new();

    public RunFolderTests() => TorchFixture.Init();

    public void Dispose() => _runs.Dispose();

    private TrainConfig Tiny(TrainingStage stage, string root) => TinySceneRun.Config(stage, Path.Combine(_runs.Path, root));

    private TrainResult Train(TrainConfig config, TextWriter? console = null)
    {
        using var model = SyntheticBatches.Model(config);
        using var objective = new CrossEntropyObjective();
        return Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, console ?? TextWriter.Null);
    }

    private static string Edit(TrainConfig config, Action<JsonObject> edit)
    {
        var file = Path.Combine(config.RunDirectory, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        edit(json);
        File.WriteAllText(file, json.ToJsonString(TrainConfig.Json));
        return File.ReadAllText(file);
    }

    // ------------------------------------------------------------------------------------------- read-only outputs

    [Fact]
    public void A_read_only_output_folder_is_one_error_naming_it_for_train_and_predict()
    {
        using var readOnly = new ReadOnlyFolder();
        var config = Tiny(TrainingStage.CrossEntropy, "writable");

        var e = Assert.Throws<OutputFolderException>(() => Experiment.Train(config with { OutputRoot = readOnly.Path }, TextWriter.Null));
        Assert.Contains($"cannot write to {readOnly.Path} (OutputRoot, where runs are written)", e.Message);
        Assert.Contains("--set OutputRoot=", e.Message);

        var session = RunSession.Open(config);
        var run = session.Train(config, TextWriter.Null).RunDirectory;
        var predict = Assert.Throws<OutputFolderException>(() => session.Predict(run, config.Model, readOnly.Path));
        Assert.Contains($"cannot write to {readOnly.Path} (where predictions are written)", predict.Message);
        Assert.Equal(readOnly.Path, predict.Folder);
        Assert.DoesNotContain("\n", predict.Message + e.Message);
    }
}
