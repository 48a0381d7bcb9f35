using ContrastSeg.Losses;
using ContrastSeg.Training;

namespace ContrastSeg.Studies;

/// <summary>
/// Turns a study request (its defaults and cells) into the complete config of every stage of every cell: the one place
/// where a study's configs are composed. Workers, cluster tasks, the reuse check and the report read the result
/// (<see cref="StudyPlan"/>, written as plan.json), so no process composes them again.
/// </summary>
public static class StudyPlanner
{
    /// <summary>Where the classification-pretrained encoder weights of a study go (named by their settings).</summary>
    public static string ClassificationWeights(StudyDefaults d) =>
        ClassificationPretraining.WeightsFile(Path.Combine(d.Base.OutputRoot, "pretrained"), d.Base.Model.ToEncoderOptions(), d.ClassificationAsRun, d.Base.Data.Root);

    /// <summary>The training stages of <paramref name="recipe"/> for <paramref name="cell"/>, in order, with <paramref name="pseudoLabels"/> as the pseudo-label folder of students.</summary>
    public static IReadOnlyList<TrainConfig> Stages(StudyDefaults d, StudyCell cell, CellRecipe recipe, string? pseudoLabels)
    {
        var b = d.Base;
        var data = b.Data with { Labelled = cell.Labelled, PseudoLabels = pseudoLabels };
        var o = cell.Overrides ?? RecipeOverrides.None;
        var model = cell.Capacity is { } c ? b.Model with { Stem = c.Stem, WidthMultiplier = c.WidthMultiplier } : b.Model;
        if (o.ProjectionBatchNorm is { } bn) model = model with { ProjectionBatchNorm = bn };
        var budget = cell.Budget ?? d.Budget;
        if (d.StepCap is { } cap) budget = budget.Capped(cap);
        var common = b with { Seed = cell.Seed, Data = data, Model = model };

        TrainConfig Stage(TrainingStage stage, string? init, int steps, double learningRate) =>
            common with { Stage = stage, InitFrom = init, Optimizer = common.Optimizer.WithSteps(steps) with { LearningRate = learningRate } };

        TrainConfig CrossEntropy(string? init) => Stage(TrainingStage.CrossEntropy, init, budget.CrossEntropy, d.Rates.CrossEntropy);

        ContrastiveSettings Loss(ContrastiveVariant variant) => common.Contrastive with
        {
            Variant = variant,
            Temperature = o.Temperature ?? common.Contrastive.Temperature,
            ResizeTo = o.ResizeTo ?? common.Contrastive.ResizeTo,
        };

        IReadOnlyList<TrainConfig> TwoStage(ContrastiveVariant variant, bool distortion, string? init)
        {
            var pre = WithLossSettings(Stage(TrainingStage.Contrastive, init, budget.Pretrain, d.Rates.Pretrain) with
            {
                Data = data with { ContrastiveDistortion = distortion },
                Contrastive = Loss(variant),
            }, o, cell);
            var fine = Stage(TrainingStage.FineTune, pre.RunDirectory, budget.FineTune, o.FineTuneLearningRate ?? d.Rates.FineTune);
            return [pre, fine];
        }

        // Both losses at once, at cross-entropy's budget and rate.
        TrainConfig Joint(ContrastiveVariant variant) => WithLossSettings(Stage(TrainingStage.Joint, null, budget.CrossEntropy, d.Rates.CrossEntropy) with
        {
            Contrastive = Loss(variant) with { JointWeight = ContrastiveSettings.PeerJointWeight },
        }, o, cell);

        return recipe switch
        {
            CrossEntropyRecipe => [CrossEntropy(null)],
            ContrastiveFineTuneRecipe r => TwoStage(r.Variant, r.Distortion, null),
            ClassificationInitRecipe { WithContrastive: false } => [CrossEntropy(ClassificationWeights(d))],
            ClassificationInitRecipe => TwoStage(ContrastiveVariant.WithinImage, true, ClassificationWeights(d)),
            SemiSupervisedRecipe s => Stages(d, cell, s.Teacher, pseudoLabels),
            JointRecipe j => [Joint(j.Variant)],
            _ => throw new ArgumentException($"recipe {recipe} is not one the planner knows", nameof(recipe)),
        };
    }

    /// <summary>A contrastive or joint stage with the cell's loss settings (<see cref="RecipeOverrides.Loss"/>) applied.</summary>
    /// <exception cref="ConfigException">An assignment is not a <c>Contrastive.*</c> setting, or its value is not one the setting takes.</exception>
    private static TrainConfig WithLossSettings(TrainConfig stage, RecipeOverrides o, StudyCell cell)
    {
        if (o.Loss is not { Count: > 0 } assignments) return stage;
        const string section = nameof(TrainConfig.Contrastive) + ".";
        if (assignments.FirstOrDefault(a => !a.TrimStart().StartsWith(section, StringComparison.OrdinalIgnoreCase)) is { } other)
            throw new ConfigException($"cell {cell.Key}: loss setting '{other}' is not a {section}* setting", "Overrides.Loss");
        return ConfigOverrides.Apply(stage, assignments);
    }

    /// <summary>Everything <paramref name="cell"/> trains and scores, as complete configs.</summary>
    public static PlannedCell PlanCell(StudyDefaults d, StudyCell cell)
    {
        var teacher = cell.Recipe is SemiSupervisedRecipe s ? Stages(d, cell, s.Teacher, null) : [];
        // A semi-supervised cell's pseudo-labels are named after its teacher's final run.
        var pseudo = teacher.Count > 0 ? Path.Combine(d.Base.OutputRoot, "pseudo", teacher[^1].RunName) : null;
        var stages = Stages(d, cell, cell.Recipe, pseudo);
        var classification = cell.Recipe.NeedsClassification
            ? new ClassificationStep(d.Base.Model.ToEncoderOptions(), d.ClassificationAsRun, ClassificationWeights(d), d.Base.Data.Root)
            : null;
        return new PlannedCell(cell, classification, teacher, pseudo is null ? null : new PseudoLabelStep(pseudo, d.Pseudo), stages);
    }

    /// <summary>
    /// The plan of a study: every cell (the first of each key) with its complete stage configs, each validated, and what
    /// the report needs.
    /// </summary>
    /// <param name="profile">The profile (study) name.</param>
    /// <param name="description">What the study trains, in words.</param>
    /// <param name="d">What every cell shares.</param>
    /// <param name="cells">The cells as requested (the first of each key counts).</param>
    /// <param name="featureSpace">The report's feature-space plot (label count, points per class), or null.</param>
    /// <param name="evalSplit">The split the final models are scored on.</param>
    public static StudyPlan Plan(string profile, string description, StudyDefaults d, IEnumerable<StudyCell> cells, FeatureSpaceRequest? featureSpace, string evalSplit)
    {
        d.Base.Validate();
        var planned = cells.DistinctBy(c => c.Key).Select(c => PlanCell(d, c)).ToList();
        foreach (var cell in planned)
            foreach (var stage in cell.TrainedStages)
            {
                try { stage.Validate(); }
                catch (ConfigException e) { throw new ConfigException($"cell {cell.Key}, {stage.Stage} stage: {e.Message}", e.Field); }
            }
        return new StudyPlan(StudyPlan.CurrentFormat, profile, description, d, evalSplit, d.Base.Data.ValSplit, d.Base.Runtime.Device, featureSpace, planned);
    }
}
