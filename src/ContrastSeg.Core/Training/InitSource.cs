using System.Globalization;
using System.Text.Json;

namespace ContrastSeg.Training;

/// <summary>
/// The checkpoint a run starts from when its <see cref="TrainConfig.InitFrom"/> is a kit run or checkpoint folder, and what
/// it is, for the log. A run folder gives its <c>best</c> checkpoint, else its latest: for cross-entropy and fine-tuning runs
/// best is the step with the best validation mIoU (which may come before the last step); a contrastive run does not
/// validate and marks its final weights best, so an unfinished one has no best and gives its latest. A run folder whose
/// training has not taken all its steps is refused unless <see cref="TrainConfig.AllowUnfinishedInit"/>; a checkpoint
/// folder named explicitly is taken as it is.
/// </summary>
/// <param name="Checkpoint">The checkpoint folder the weights are read from.</param>
/// <param name="Description">Which checkpoint it is (path, step, why this one), for the log.</param>
public sealed record InitSource(string Checkpoint, string Description)
{
    /// <summary>Chooses the checkpoint of <paramref name="runOrCheckpoint"/> (a folder).</summary>
    /// <exception cref="ConfigException">A run folder whose run has not finished, and <paramref name="allowUnfinished"/> is off
    /// (the message names the folder, the step reached and the steps planned, and what to do).</exception>
    /// <exception cref="FileNotFoundException">The folder holds no checkpoint.</exception>
    public static InitSource Choose(string runOrCheckpoint, bool allowUnfinished)
    {
        var chosen = CheckpointStore.Resolve(runOrCheckpoint);
        var state = CheckpointStore.ReadState(chosen);
        var planned = PlannedSteps(state.Config);
        var of = planned is { } p ? $" of {p}" : "";
        if (chosen == runOrCheckpoint)
            return new InitSource(chosen, $"{chosen}, the checkpoint named, step {state.Step}{of}");

        var store = new CheckpointStore(runOrCheckpoint);
        var latest = store.List() is { Count: > 0 } all ? all[^1] : (state.Step, chosen);
        var unfinished = planned is { } steps && latest.Step < steps;
        if (unfinished && !allowUnfinished)
            throw new ConfigException(
                $"InitFrom = {runOrCheckpoint} is a run that has not finished: it reached step {latest.Step} of the {planned} it planned " +
                $"(latest checkpoint {latest.Item2}). Finish it first (run its training again: it resumes), name the checkpoint to start from " +
                $"(InitFrom={latest.Item2}), or start from it as it is with --allow-unfinished-init (setting AllowUnfinishedInit=true).", "InitFrom");
        var which = chosen != store.BestDirectory ? $"the run's latest checkpoint (it has no best one yet), step {state.Step}{of}"
            : double.IsFinite(state.BestMetric)
                ? $"the run's best-validation checkpoint, step {state.Step}{of}, validation mIoU {(100 * state.BestMetric).ToString("F2", CultureInfo.InvariantCulture)} %"
                : $"the run's best checkpoint, step {state.Step}{of} (a run that does not validate: its final weights)";
        return new InitSource(chosen, $"{chosen}, {which}" + (unfinished ? $"; the run is unfinished, started from as AllowUnfinishedInit allows" : ""));
    }

    /// <summary>The steps a checkpoint's run planned, or null when its config is not a segmentation run's (then only the load can tell).</summary>
    private static int? PlannedSteps(string config)
    {
        try { return TrainConfig.FromJson(config).Optimizer.Steps; }
        catch (Exception e) when (e is ConfigException or JsonException) { return null; }
    }

    /// <inheritdoc/>
    public override string ToString() => Description;
}
