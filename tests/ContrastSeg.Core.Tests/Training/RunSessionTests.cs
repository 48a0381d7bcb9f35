using ContrastSeg.Losses;
using ContrastSeg.Tests.Data;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// A run session opens a run's data once for every stage and command that reads it (what a grid cell does), trains
/// exactly what a command of its own trains, and refuses a stage that reads other data.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class RunSessionTests : IDisposable
{
    private readonly TempDir _runs = new();

    public RunSessionTests() => TorchFixture.Init();

    public void Dispose() => _runs.Dispose();

    private TrainConfig Tiny(TrainingStage stage, string root) => TinySceneRun.Config(stage, Path.Combine(_runs.Path, root));

    [Fact]
    public void A_cell_of_stages_pseudo_labels_and_evaluations_opens_its_data_once_and_each_other_split_once()
    {
        var log = new StringWriter();
        var teacher = Tiny(TrainingStage.CrossEntropy, "session");
        var session = RunSession.Open(teacher);
        var ce = session.Train(teacher, log);
        var pretrain = Tiny(TrainingStage.Contrastive, "session") with { Data = teacher.Data with { ContrastiveDistortion = false, Crop = 24 } };
        var contrastive = session.Train(pretrain, log);
        session.Train(Tiny(TrainingStage.FineTune, "session") with { InitFrom = contrastive.RunDirectory }, log);
        var folder = Path.Combine(_runs.Path, "pseudo");
        var pseudo = session.PseudoLabel(ce.RunDirectory, teacher.Model, new PseudoLabelOptions(0.0, null), folder);
        Assert.Equal(pseudo, PseudoLabelReport.ReadFrom(folder));
        var student = session.Train(teacher with { Data = teacher.Data with { PseudoLabels = folder }, Name = "student" }, log);
        Assert.Contains("4 labelled + 2 pseudo-labelled", log.ToString());
        Assert.Equal(2, student.Steps);
        Assert.Equal(1, session.Opened);

        Assert.Equal("val", session.Evaluate(ce.RunDirectory, teacher.Model).Split);
        var onTest = session.Evaluate(ce.RunDirectory, teacher.Model, split: "test");
        session.Evaluate(student.RunDirectory, teacher.Model, split: "test");
        Assert.Equal("test", onTest.Split);
        Assert.Equal(2, session.Opened); // the test split once, for both evaluations on it
    }

    [Fact]
    public void A_stage_trained_in_a_shared_session_is_the_stage_a_command_of_its_own_trains()
    {
        var shared = RunSession.Open(Tiny(TrainingStage.CrossEntropy, "shared"));
        shared.Train(Tiny(TrainingStage.Contrastive, "shared"), TextWriter.Null);
        var inSession = shared.Train(Tiny(TrainingStage.CrossEntropy, "shared"), TextWriter.Null);
        var alone = Runs.Train(Tiny(TrainingStage.CrossEntropy, "alone"), TextWriter.Null);
        Assert.Equal(alone.FinalLoss, inSession.FinalLoss);
        Assert.Equal(alone.Validation!.MeanIoU, inSession.Validation!.MeanIoU);
        Assert.Equal(Runs.Evaluate(alone.RunDirectory, Tiny(TrainingStage.CrossEntropy, "alone")).Metrics.MeanIoU,
                     shared.Evaluate(inSession.RunDirectory, TinySceneRun.Model).Metrics.MeanIoU);
    }

    [Fact]
    public void A_stage_that_reads_other_data_is_refused_by_the_session_naming_the_field()
    {
        var config = Tiny(TrainingStage.CrossEntropy, "other");
        var session = RunSession.Open(config);
        Assert.True(session.Serves(config.Data with { Crop = 48, ScaleMax = 1.5, PseudoLabels = "/elsewhere" }, "auto"));
        var e = Assert.Throws<ConfigException>(() => session.Train(config with { Data = config.Data with { Labelled = 5 } }, TextWriter.Null));
        Assert.Equal("Data", e.Field);
        Assert.Contains("open a session for it", e.Message);
        Assert.False(Directory.Exists((config with { Data = config.Data with { Labelled = 5 } }).RunDirectory)); // refused before the run wrote anything
    }
}
