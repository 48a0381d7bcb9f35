using ContrastSeg.Runtime;

namespace ContrastSeg.Training;

/// <summary>
/// What <see cref="Trainer"/> needs of a run: its folder, schedule and cadence, the config it writes next to its
/// checkpoints, and what identifies it on resume. A segmentation stage's comes from its <see cref="TrainConfig"/>
/// (<see cref="Of(TrainConfig)"/>); the classification pretraining makes its own.
/// </summary>
public sealed record TrainingRun
{
    /// <summary>The run's name (log lines).</summary>
    public required string Name { get; init; }

    /// <summary>The run's folder (config.json, metrics.jsonl, tb/, checkpoints/).</summary>
    public required string Directory { get; init; }

    /// <summary>What is trained, for the progress line (e.g. <c>CrossEntropy</c>).</summary>
    public required string Stage { get; init; }

    /// <summary>Rate, momentum, weight decay, steps, warm-up, batch size, accumulation.</summary>
    public required OptimizerSettings Optimizer { get; init; }

    /// <summary>Log every N steps.</summary>
    public int LogEvery { get; init; } = 25;

    /// <summary>Validate every N steps (0: only at the end).</summary>
    public int EvalEvery { get; init; }

    /// <summary>Checkpoint every N steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 250;

    /// <summary>Checkpoints kept besides the best one.</summary>
    public int KeepLast { get; init; } = 2;

    /// <summary>Continue from the run's last checkpoint when there is one.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>Where the run computes: the model, its optimiser state and every batch go there (checkpoints stay device-independent).</summary>
    public required DeviceChoice Device { get; init; }

    /// <summary>The config, as written to config.json and into every checkpoint.</summary>
    public required string ConfigJson { get; init; }

    /// <summary>The part of a config JSON (this run's or a checkpoint's) that must match for a resume: what defines the weights.</summary>
    public required Func<string, string> Identity { get; init; }

    /// <summary>
    /// A config JSON (a run folder's config.json) as this kit writes it now, so that comparing it with <see cref="ConfigJson"/>
    /// names real differences only (not settings read under a former name); default: the text as it is.
    /// </summary>
    public Func<string, string> Normalize { get; init; } = json => json;

    /// <summary>The run of a validated segmentation config, on the device its <c>Runtime.Device</c> setting resolves to.</summary>
    public static TrainingRun Of(TrainConfig config) => Of(config, Devices.Choose(config.Runtime.Device));

    /// <summary>The run of a validated segmentation config on <paramref name="device"/> (recorded in config.json).</summary>
    public static TrainingRun Of(TrainConfig config, DeviceChoice device) => new()
    {
        Device = device,
        Name = config.RunName,
        Directory = config.RunDirectory,
        Stage = config.Stage.ToString(),
        Optimizer = config.Optimizer,
        LogEvery = config.LogEvery,
        EvalEvery = config.EvalEvery,
        CheckpointEvery = config.CheckpointEvery,
        KeepLast = config.KeepLast,
        Resume = config.Resume,
        ConfigJson = (config with { Runtime = config.Runtime with { Device = device.Name } }).ToJson(),
        Identity = json => TrainConfig.FromJson(json).WeightsDefiningJson(),
        Normalize = json => TrainConfig.FromJson(json).ToJson(),
    };
}
