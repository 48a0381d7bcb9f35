using System.Text.Json.Serialization;
using ContrastSeg.Training;

namespace ContrastSeg.Studies;

/// <summary>The learning rates of a study's three stages.</summary>
public sealed record StageRates(double CrossEntropy, double Pretrain, double FineTune)
{
    /// <summary>The rates a preset trains each stage with (the same at every label count).</summary>
    public static StageRates Of(Func<TrainingStage, TrainConfig> preset) => new(
        preset(TrainingStage.CrossEntropy).Optimizer.LearningRate,
        preset(TrainingStage.Contrastive).Optimizer.LearningRate,
        preset(TrainingStage.FineTune).Optimizer.LearningRate);
}

/// <summary>
/// What every cell of a study shares: the data, model and bookkeeping of every stage (<see cref="Base"/>), the step
/// budget of cells without their own, the stages' learning rates, the classification pretraining and pseudo-label
/// settings, and an optional cap on every stage's steps.
/// </summary>
/// <param name="Base">Data, model, optimiser and bookkeeping of every stage.</param>
/// <param name="Budget">The step budget of cells without their own.</param>
/// <param name="Rates">The stages' learning rates.</param>
/// <param name="Classification">The classification pretraining of cells that start from it.</param>
/// <param name="Pseudo">The pseudo-label thresholds of semi-supervised cells.</param>
/// <param name="StepCap">Every stage (and the classification pretraining) at most this many steps (<c>--steps</c>); null: none.</param>
public sealed record StudyDefaults(TrainConfig Base, StepBudget Budget, StageRates Rates, ClassificationPretrainingOptions Classification,
    PseudoLabelOptions Pseudo, int? StepCap = null)
{
    /// <summary>These defaults with another base config (F# has no <c>with</c> for C# records).</summary>
    public StudyDefaults WithBase(TrainConfig config) => this with { Base = config };

    /// <summary>These defaults with every stage capped at <paramref name="steps"/>.</summary>
    public StudyDefaults WithStepCap(int steps) =>
        steps >= 1 ? this with { StepCap = steps } : throw new ConfigException($"must be a positive number of steps, got {steps}", "--steps");

    /// <summary>The classification pretraining as the cells run it (capped with the stages).</summary>
    [JsonIgnore]
    public ClassificationPretrainingOptions ClassificationAsRun =>
        StepCap is { } cap ? Classification with { Steps = Math.Min(cap, Classification.Steps) } : Classification;
}
