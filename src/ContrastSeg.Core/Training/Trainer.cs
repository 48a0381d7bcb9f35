using System.Diagnostics;
using ContrastSeg.Data;
using ContrastSeg.Evaluation;
using ContrastSeg.Models;
using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>What a finished (or resumed and finished) run reports.</summary>
/// <param name="RunDirectory">The run's folder.</param>
/// <param name="Steps">Optimiser steps completed.</param>
/// <param name="ResumedFrom">Step the run resumed from (0 for a fresh run).</param>
/// <param name="FinalLoss">Mean loss over the last logging window.</param>
/// <param name="Validation">Final validation metrics (null for the contrastive stage or without a validator).</param>
/// <param name="Seconds">Wall time of this invocation.</param>
public sealed record TrainResult(string RunDirectory, int Steps, int ResumedFrom, double FinalLoss, SegmentationMetrics? Validation, double Seconds);

/// <summary>The loss became NaN or infinite: the run stops, the last good checkpoint is kept.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(string message) : base(message) { }
}

/// <summary>
/// The training loop shared by every stage: SGD with momentum and weight decay (<see cref="SgdOptimizer"/>),
/// warm-up + cosine schedule, gradient accumulation, logging, periodic validation, atomic checkpoints and exact
/// resume. What differs between stages is the <see cref="ITrainingObjective"/>.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// Trains <paramref name="model"/> as <paramref name="config"/> says.
    /// </summary>
    /// <param name="config">The config (validated here; saved as config.json in the run folder).</param>
    /// <param name="model">The network, already initialised (from scratch, weights, or a checkpoint).</param>
    /// <param name="objective">The stage's loss.</param>
    /// <param name="batchesFrom">Micro-batches starting at a micro-batch index: the batch at index k must be
    /// the same whether the sequence starts at 0 or at k (what makes resume exact).</param>
    /// <param name="validate">Validation (mIoU), or null.</param>
    /// <param name="console">Where progress goes (default: the console).</param>
    public static TrainResult Run(TrainConfig config, DeepLabV3Plus model, ITrainingObjective objective,
        Func<long, IEnumerable<Batch>> batchesFrom, Func<DeepLabV3Plus, SegmentationMetrics>? validate = null, TextWriter? console = null)
    {
        TorchRuntime.EnsureInitialized();
        config.Validate();
        return Run(TrainingRun.Of(config), model, objective, batchesFrom, validate, console);
    }

    /// <summary>
    /// Trains any model with an objective for it (the segmentation stages, the classification pretraining):
    /// the same loop, checkpoints and resume.
    /// </summary>
    /// <remarks>The run folder is locked (<see cref="RunLock"/>) for the whole training: a second training of it is refused.</remarks>
    /// <inheritdoc cref="Run(TrainConfig, DeepLabV3Plus, ITrainingObjective, Func{long, IEnumerable{Batch}}, Func{DeepLabV3Plus, SegmentationMetrics}?, TextWriter?)"/>
    /// <exception cref="RunInUseException">Another training holds the run folder.</exception>
    /// <exception cref="OutputFolderException">The run folder cannot be written.</exception>
    public static TrainResult Run<TModel>(TrainingRun run, TModel model, ITrainingObjective<TModel> objective,
        Func<long, IEnumerable<Batch>> batchesFrom, Func<TModel, SegmentationMetrics>? validate = null, TextWriter? console = null)
        where TModel : nn.Module
    {
        using var held = RunLock.Acquire(run.Directory);
        return RunLocked(run, model, objective, batchesFrom, validate, console);
    }

    /// <summary><see cref="Run{TModel}"/> for a caller that holds the run folder's <see cref="RunLock"/> (a session, which writes eval.json under it too).</summary>
    internal static TrainResult RunLocked<TModel>(TrainingRun run, TModel model, ITrainingObjective<TModel> objective,
        Func<long, IEnumerable<Batch>> batchesFrom, Func<TModel, SegmentationMetrics>? validate, TextWriter? console)
        where TModel : nn.Module
    {
        // The kit makes no temporary TorchSharp Scalar (Runtime.Scalars), the cause of the libtorch errors this
        // retry was added for; it stays for other native faults. Resuming from the last checkpoint replays the same
        // steps exactly; each resume is a "resume" record in metrics.jsonl.
        const int attempts = 3;
        Resumption? resumption = null;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return RunOnce(run, model, objective, batchesFrom, validate, console, resumption);
            }
            catch (System.Runtime.InteropServices.ExternalException e) when (attempt < attempts && new CheckpointStore(run.Directory).Latest() is not null)
            {
                var error = e.Message.Split('\n')[0];
                (console ?? Console.Out).WriteLine($"[{run.Name}] libtorch error: {error}; resuming from the last checkpoint (attempt {attempt + 1} of {attempts}).");
                resumption = new Resumption(attempt + 1, error);
            }
        }
    }

    /// <summary>Why this attempt resumes: the attempt number and the native error of the previous one.</summary>
    private sealed record Resumption(int Attempt, string Error);

    private static TrainResult RunOnce<TModel>(TrainingRun run, TModel model, ITrainingObjective<TModel> objective,
        Func<long, IEnumerable<Batch>> batchesFrom, Func<TModel, SegmentationMetrics>? validate, TextWriter? console,
        Resumption? resumption) where TModel : nn.Module
    {
        TorchRuntime.EnsureInitialized();
        var clock = Stopwatch.StartNew();
        var runDir = run.Directory;
        Directory.CreateDirectory(runDir);
        var configJson = run.ConfigJson;
        var store = new CheckpointStore(runDir);
        store.RemoveIncomplete(); // before any write: on a full disk, a failed write's leftovers hold the space needed
        var o = run.Optimizer;

        // The model moves before the optimiser takes its parameters (Module.to replaces them off the CPU); a checkpoint
        // restored below loads into them wherever they are.
        var device = run.Device.Device;
        model.to(device);
        using var optimizer = new SgdOptimizer(objective.Parameters(model), o.LearningRate, o.Momentum, o.WeightDecay);
        using var held = new HeldScalars();
        var accumulation = held.Of((long)o.Accumulation);
        var start = 0;
        var bestMetric = double.NaN;
        var bestStep = -1;
        string? resumedFrom = null;
        string? writtenOn = null; // the device of the checkpoint resumed from (null: a fresh run, or a checkpoint that predates the record)
        void SameRun(CheckpointState state)
        {
            if (run.Identity(state.Config) != run.Identity(configJson))
                throw new ConfigException($"{runDir} holds a run with other settings ({RecordedConfig.WeightsDifferences(run, state.Config)}: its checkpoints' -> this command's); " +
                                          $"resume needs the same config (compare {Path.Combine(runDir, RecordedConfig.FileName)}) or use another Name/OutputRoot.", "Name");
        }
        // A hand-edited config.json is refused before anything is restored or written; other differences are said below.
        var recordedDifferences = run.Resume ? RecordedConfig.Check(run, store) : [];
        // A damaged checkpoint is reported and skipped: the newest intact one replays the same steps.
        if (run.Resume && store.RestoreNewestIntact(model, optimizer, objective.Generator, SameRun,
                line => (console ?? Console.Out).WriteLine($"[{run.Name}] {line}"), objective.Memory) is { } resumed)
            (start, bestMetric, bestStep, resumedFrom, writtenOn) = (resumed.State.Step, resumed.State.BestMetric, resumed.State.BestStep, resumed.Path, resumed.State.Device);
        AtomicFile.WriteAllBytes(Path.Combine(runDir, "config.json"), System.Text.Encoding.UTF8.GetBytes(configJson)); // a full disk keeps the old one whole

        using var log = new TrainingLog(runDir, console);
        // Threads by the machine's load now (a grid re-decides per stage); see ThreadPolicy.
        log.Line($"[{run.Name}] {ThreadPolicy.ApplyForRun()}");
        log.Line($"[{run.Name}] {TorchRuntime.Status.Numerics}");
        log.Line($"[{run.Name}] {run.Device}");
        if (recordedDifferences.Count > 0)
            log.Line($"[{run.Name}] config.json now records this command's values of settings that do not change the weights: {string.Join(", ", recordedDifferences)}");
        // What this invocation computes with (a resumed run on another machine or mode adds its own line).
        Provenance.Current().AppendTo(runDir, start);
        // Checkpoints are device-independent (CPU tensors): a run may resume on another device, and says so.
        if (writtenOn is not null && writtenOn != run.Device.Name)
            log.Line($"[{run.Name}] resuming {Path.GetFileName(resumedFrom)} written on {writtenOn} on {run.Device.Name}");
        log.Line(start > 0 ? $"[{run.Name}] resuming at step {start}/{o.Steps} from {resumedFrom}" : $"[{run.Name}] training {o.Steps} steps ({run.Stage}) -> {runDir}");
        if (resumption is not null)
            log.Record("resume", start, new Dictionary<string, double> { ["attempt"] = resumption.Attempt }, new Dictionary<string, string> { ["error"] = resumption.Error });

        var windowLoss = 0.0;
        var windowSteps = 0;
        var lastLoss = double.NaN;
        SegmentationMetrics? finalMetrics = null;
        using var batches = batchesFrom((long)start * o.Accumulation).GetEnumerator();

        void Checkpoint(int step, bool isBest) =>
            store.Save(new CheckpointState(step, bestMetric, bestStep, configJson, Device: run.Device.Name), model, optimizer, objective.Generator, run.KeepLast, isBest, objective.Memory);
        // A step-0 checkpoint, so that a run interrupted before its first periodic one can also resume.
        if (start == 0) Checkpoint(0, false);

        using var stop = new StopRequest();
        ProgressDisplay.Run($"[{run.Stage}]", o.Steps, start, console ?? Console.Out, report =>
        {
            for (var step = start; step < o.Steps; step++)
            {
                var lr = LearningRateSchedule.At(step, o.Steps, o.LearningRate, o.WarmupSteps);
                optimizer.LearningRate = lr;
                SetTrainMode(model, o.FreezeBatchNorm);
                // One scope per optimiser step: zero_grad and step read p.grad, which makes wrappers too.
                using var stepScope = NewDisposeScope();
                optimizer.ZeroGrad();
                var stepLoss = 0.0;
                for (var micro = 0; micro < o.Accumulation; micro++)
                {
                    using var scope = NewDisposeScope();
                    if (!batches.MoveNext()) throw new InvalidOperationException("the batch source ended before the last step");
                    using var loaded = batches.Current;
                    using var batch = loaded.To(device); // once per micro-batch, before the forward
                    var loss = objective.Loss(model, batch);
                    var value = loss.item<float>();
                    if (!float.IsFinite(value))
                        throw new TrainingDivergedException(
                            $"step {step + 1}: loss term '{objective.Term}' is {value} (lr {lr:G4}, batch {string.Join(",", batch.Ids.Take(4))}...). " +
                            $"Stopped; the last good checkpoint is {store.Latest() ?? "(none yet)"}. Lower Optimizer.LearningRate or check the data.");
                    loss.div(accumulation).backward();
                    stepLoss += value / o.Accumulation;
                }
                optimizer.Step();
                stepScope.Dispose();
                windowLoss += stepLoss;
                windowSteps++;
                var done = step + 1;

                if (done % run.LogEvery == 0 || done == o.Steps)
                {
                    lastLoss = windowLoss / windowSteps;
                    log.Record("train", done, new Dictionary<string, double>
                    {
                        [objective.Term] = lastLoss, ["lr"] = lr, ["seconds"] = clock.Elapsed.TotalSeconds,
                    });
                    windowLoss = 0;
                    windowSteps = 0;
                }
                var isBest = false;
                if (validate is not null && run.EvalEvery > 0 && done % run.EvalEvery == 0 && done != o.Steps)
                    isBest = Validate(done);
                // A new best validation is checkpointed at once, so the best weights are the ones kept and tested.
                var checkpointed = (isBest || done % run.CheckpointEvery == 0) && done != o.Steps;
                if (checkpointed) Checkpoint(done, isBest);
                report(done, $"{objective.Term} {stepLoss:F4} lr {lr:G3}");
                if (stop.Signal != 0 && done != o.Steps)
                {
                    // Stopped by a signal: keep the step just finished, so the next start resumes here, bit for bit.
                    if (!checkpointed) Checkpoint(done, false);
                    var at = store.Latest() ?? runDir;
                    var message = $"stopped by signal {stop.Signal} after step {done}/{o.Steps}; checkpoint {at} written. Run the same command again to resume there.";
                    log.Line($"[{run.Name}] {message}");
                    throw new TrainingInterruptedException(message, stop.Signal, at);
                }
            }
        });

        var finalIsBest = validate is not null && Validate(o.Steps);
        // Without validation (the contrastive stage) the final weights are the ones to use: mark them best.
        if (start < o.Steps) Checkpoint(o.Steps, finalIsBest || validate is null);
        log.Line($"[{run.Name}] finished {o.Steps} steps in {clock.Elapsed.TotalSeconds:F1} s" +
                 (finalMetrics is null ? "" : $"; validation mIoU {100 * finalMetrics.MeanIoU:F2}"));
        return new TrainResult(runDir, o.Steps, start, lastLoss, finalMetrics, clock.Elapsed.TotalSeconds);

        bool Validate(int step)
        {
            var metrics = validate!(model);
            finalMetrics = metrics;
            log.Record("val", step, new Dictionary<string, double> { ["mIoU"] = metrics.MeanIoU, ["pixel_accuracy"] = metrics.PixelAccuracy });
            if (double.IsNaN(bestMetric) || metrics.MeanIoU > bestMetric)
            {
                (bestMetric, bestStep) = (metrics.MeanIoU, step);
                return true;
            }
            return false;
        }
    }

    /// <summary>Train mode, optionally with BatchNorm layers kept in eval mode (frozen statistics).</summary>
    public static void SetTrainMode(nn.Module model, bool freezeBatchNorm)
    {
        model.train();
        if (!freezeBatchNorm) return;
        foreach (var (_, module) in model.named_modules())
            if (module is ContrastSeg.Models.BatchNorm2d bn) bn.eval();
    }
}
