namespace ContrastSeg.Training;

/// <summary>SGD, schedule, batch.</summary>
public sealed record OptimizerSettings
{
    /// <summary>Initial learning rate.</summary>
    public double LearningRate { get; init; } = 0.03;
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>Weight decay (paper 4e-5).</summary>
    public double WeightDecay { get; init; } = 4e-5;
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 1500;
    /// <summary>Linear warm-up steps before the cosine decay.</summary>
    public int WarmupSteps { get; init; } = 0;
    /// <summary>Images per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches accumulated per optimiser step (effective batch = BatchSize x this).</summary>
    public int Accumulation { get; init; } = 1;
    /// <summary>Keep BatchNorm statistics frozen (eval-mode BN) while training.</summary>
    public bool FreezeBatchNorm { get; init; } = false;

    /// <summary>
    /// These settings for a stage of <paramref name="steps"/> steps, with the one warm-up rule: at most a quarter of the
    /// steps, so a short stage still decays (presets, studies and a shortened <c>train</c> all apply it).
    /// </summary>
    public OptimizerSettings WithSteps(int steps) => this with { Steps = steps, WarmupSteps = Math.Min(WarmupSteps, steps / 4) };
}
