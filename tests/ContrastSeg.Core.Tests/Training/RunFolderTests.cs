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
/// a hand-edited config.json is refused on resume, not silently replaced;
/// fine-tuning from an unfinished run needs an explicit choice and says which checkpoint it took;
/// a second training of a run folder is refused while the first holds its lock;
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

    // ------------------------------------------------------------------------------------------- edited config.json

    [Fact]
    public void A_hand_edited_config_json_is_refused_on_resume_naming_the_file_and_fields_and_is_left_as_it_is()
    {
        var config = SyntheticBatches.Config(_runs.Path, steps: 3);
        Train(config);
        // The user lowers the rate and changes the seed in config.json and runs the same command again.
        var edited = Edit(config, json =>
        {
            json["Optimizer"]!["LearningRate"] = 0.025;
            json["Seed"] = 7;
        });
        var metrics = File.ReadAllText(Path.Combine(config.RunDirectory, "metrics.jsonl"));

        var e = Assert.Throws<ConfigException>(() => Train(config));
        Assert.Contains(Path.Combine(config.RunDirectory, "config.json"), e.Message);
        Assert.Contains("Optimizer.LearningRate 0.05 -> 0.025", e.Message);
        Assert.Contains("Seed 3 -> 7", e.Message);
        Assert.Contains("--set Seed=7 --set Optimizer.LearningRate=0.025", e.Message);
        Assert.Contains("delete " + config.RunDirectory, e.Message);
        Assert.Equal("Seed", e.Field);
        Assert.Equal(edited, File.ReadAllText(Path.Combine(config.RunDirectory, "config.json"))); // not rewritten
        Assert.Equal(metrics, File.ReadAllText(Path.Combine(config.RunDirectory, "metrics.jsonl"))); // no step, no log line

        // Undoing the edit (or deleting the file) resumes the run as it was.
        File.Delete(Path.Combine(config.RunDirectory, "config.json"));
        Assert.Equal(3, Train(config).ResumedFrom);
    }

    [Fact]
    public void Settings_that_do_not_change_the_weights_may_differ_from_config_json_and_are_said_as_config_json_is_rewritten()
    {
        var config = SyntheticBatches.Config(_runs.Path, steps: 6) with { Name = "cosmetic" };
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
            Assert.Throws<IOException>(() => Trainer.Run(config, model, objective, SyntheticBatches.Source(k => k == 4), null, TextWriter.Null));
        // As if the run had been started with a relative OutputRoot, on another device, with other log cadence and workers.
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, _runs.Path);
        Edit(config, json =>
        {
            json["OutputRoot"] = relative;
            json["RunDirectory"] = Path.Combine(relative, "cosmetic");
            json["Runtime"]!["Device"] = "cuda:1";
            json["LogEvery"] = 5;
            json["Data"]!["Workers"] = 3;
        });

        var console = new StringWriter();
        var result = Train(config, console);
        Assert.Equal(3, result.ResumedFrom);
        var said = console.ToString();
        Assert.Contains("config.json now records this command's values of settings that do not change the weights", said);
        Assert.Contains("Runtime.Device 'cuda:1' -> 'cpu'", said);
        Assert.Contains("LogEvery 5 -> 2", said);
        Assert.Contains("Data.Workers 3 -> 0", said);
        Assert.Contains($"OutputRoot '{relative}' -> '{_runs.Path}'", said);
        Assert.Equal(TrainingRun.Of(config).ConfigJson, File.ReadAllText(Path.Combine(config.RunDirectory, "config.json")));
    }

    // ------------------------------------------------------------------------------------------- unfinished sources

    /// <summary>A contrastive run of 4 steps stopped after its step-2 checkpoint (its step-4 checkpoint and best copy removed).</summary>
    private string UnfinishedContrastive(RunSession session)
    {
        var config = Tiny(TrainingStage.Contrastive, "unfinished") with
        {
            Optimizer = Tiny(TrainingStage.Contrastive, "unfinished").Optimizer with { Steps = 4 }, KeepLast = 3,
        };
        var run = session.Train(config, TextWriter.Null).RunDirectory;
        var store = new CheckpointStore(run);
        Directory.Delete(Path.Combine(store.Directory, "step-0000004"), true);
        Directory.Delete(store.BestDirectory, true);
        return run;
    }

    [Fact]
    public void Fine_tuning_from_an_unfinished_run_is_refused_unless_allowed_or_a_checkpoint_is_named_and_the_log_says_which_checkpoint()
    {
        var session = RunSession.Open(Tiny(TrainingStage.CrossEntropy, "unfinished"));
        var source = UnfinishedContrastive(session);
        var step2 = Path.Combine(source, "checkpoints", "step-0000002");
        var fineTune = Tiny(TrainingStage.FineTune, "unfinished") with { InitFrom = source };

        var e = Assert.Throws<ConfigException>(() => session.Train(fineTune, TextWriter.Null));
        Assert.Equal("InitFrom", e.Field);
        Assert.Contains($"InitFrom = {source} is a run that has not finished: it reached step 2 of the 4 it planned", e.Message);
        Assert.Contains("--allow-unfinished-init", e.Message);
        Assert.Contains($"InitFrom={step2}", e.Message);
        Assert.False(Directory.Exists(fineTune.RunDirectory)); // refused before the run folder was made

        var allowed = new StringWriter();
        session.Train(fineTune with { AllowUnfinishedInit = true }, allowed);
        Assert.Contains($"initial weights: {step2}, the run's latest checkpoint (it has no best one yet), step 2 of 4; the run is unfinished, " +
                        "started from as AllowUnfinishedInit allows", allowed.ToString());
        Assert.Equal(fineTune.RunName, (fineTune with { AllowUnfinishedInit = true }).RunName); // not part of the run name

        var named = new StringWriter();
        session.Train(fineTune with { InitFrom = step2 }, named);
        Assert.Contains($"initial weights: {step2}, the checkpoint named, step 2 of 4", named.ToString());
    }

    [Fact]
    public void Starting_from_a_finished_cross_entropy_run_takes_its_best_validation_checkpoint_and_says_so()
    {
        var session = RunSession.Open(Tiny(TrainingStage.CrossEntropy, "finished"));
        var source = session.Train(Tiny(TrainingStage.CrossEntropy, "finished"), TextWriter.Null);
        var log = new StringWriter();
        session.Train(Tiny(TrainingStage.FineTune, "finished") with { InitFrom = source.RunDirectory }, log);
        var best = Path.Combine(source.RunDirectory, "checkpoints", "best");
        Assert.Contains($"initial weights: {best}, the run's best-validation checkpoint, step 2 of 2, validation mIoU ", log.ToString());
    }

    // ------------------------------------------------------------------------------------------- concurrent trainings

    [Fact]
    public async Task A_second_training_of_a_run_folder_is_refused_naming_the_holder_and_the_logs_stay_whole()
    {
        var config = SyntheticBatches.Config(_runs.Path, steps: 4) with { LogEvery = 1 };
        using var midRun = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        IEnumerable<Batch> Holding(long start)
        {
            foreach (var batch in SyntheticBatches.Source()(start))
            {
                midRun.Set(); // the run holds its folder, with config.json and its step-0 checkpoint written
                release.Wait();
                yield return batch;
            }
        }
        var first = Task.Run(() =>
        {
            using var model = SyntheticBatches.Model(config);
            using var objective = new CrossEntropyObjective();
            return Trainer.Run(config, model, objective, Holding, null, TextWriter.Null);
        });
        Assert.True(midRun.Wait(TimeSpan.FromMinutes(1)), "the first training started");

        var e = Assert.Throws<RunInUseException>(() => Train(config));
        Assert.Contains($"process {Environment.ProcessId} on {Environment.MachineName}, since ", e.Message);
        Assert.Contains(Path.GetFullPath(config.RunDirectory) + " is being trained by", e.Message);
        release.Set();
        Assert.Equal(4, (await first).Steps);

        // Every line whole (two writers interleaved them: ..."seconds":18.26{"k{"kind":"val",...).
        foreach (var line in File.ReadAllLines(Path.Combine(config.RunDirectory, "metrics.jsonl"))) JsonNode.Parse(line);
        Assert.False(File.Exists(Path.Combine(config.RunDirectory, RunLock.HolderFileName))); // said while held only
        Assert.Equal(4, Train(config).ResumedFrom); // released: the finished run is found finished
    }

    [Fact]
    public void A_run_folder_locked_by_another_handle_is_refused_before_anything_is_written()
    {
        var config = SyntheticBatches.Config(_runs.Path, steps: 2);
        Directory.CreateDirectory(config.RunDirectory);
        // Another process's lock: a handle of its own on run.lock (flock on Linux), no description written.
        using (new FileStream(Path.Combine(config.RunDirectory, RunLock.FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var e = Assert.Throws<RunInUseException>(() => Train(config));
            Assert.Contains("is being trained by another process", e.Message);
            Assert.Equal([RunLock.FileName], Directory.GetFileSystemEntries(config.RunDirectory).Select(Path.GetFileName));
        }
        Assert.Equal(2, Train(config).Steps); // the handle closed: no stale lock
    }

    // ------------------------------------------------------------------------------------------- read-only outputs

    [Fact]
    public void A_read_only_output_folder_is_one_error_naming_it_for_train_and_predict()
    {
        using var readOnly = new ReadOnlyFolder();
        var config = Tiny(TrainingStage.CrossEntropy, "writable");

        var e = Assert.Throws<OutputFolderException>(() => Runs.Train(config with { OutputRoot = readOnly.Path }, TextWriter.Null));
        Assert.Contains($"cannot write to {readOnly.Path} (OutputRoot, where runs are written)", e.Message);
        Assert.Contains("--set OutputRoot=", e.Message);

        // A session opened on writable data, a run folder that cannot be written (the grid's path).
        var session = RunSession.Open(config);
        var inRun = Assert.Throws<OutputFolderException>(() => session.Train(config with { OutputRoot = readOnly.Path }, TextWriter.Null));
        Assert.Contains($"cannot write to {Path.Combine(readOnly.Path, config.RunName)} (the run folder)", inRun.Message);

        var run = session.Train(config, TextWriter.Null).RunDirectory;
        var predict = Assert.Throws<OutputFolderException>(() => session.Predict(run, config.Model, readOnly.Path));
        Assert.Contains($"cannot write to {readOnly.Path} (where predictions are written)", predict.Message);
        Assert.Equal(readOnly.Path, predict.Folder);
        Assert.DoesNotContain("\n", predict.Message + e.Message + inRun.Message);
    }
}
