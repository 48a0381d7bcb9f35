using System.Text.Json.Serialization;
using ContrastSeg.Models;

namespace ContrastSeg.Studies;

/// <summary>
/// A step budget: cross-entropy steps, and contrastive pretraining + fine-tuning steps. A study's cells at a label count
/// share one, so the recipes compare at equal cost.
/// </summary>
public sealed record StepBudget(int CrossEntropy, int Pretrain, int FineTune)
{
    /// <summary>An equal budget: cross-entropy steps = pretraining + fine-tuning steps, split in halves.</summary>
    public static StepBudget Equal(int crossEntropySteps) => new(crossEntropySteps, crossEntropySteps / 2, crossEntropySteps - crossEntropySteps / 2);

    /// <summary>
    /// The paper's budget rule against the equal one: pretraining as long as cross-entropy, then a fine-tuning of a quarter
    /// of that (the paper: 300K + 50K against 300K cross-entropy at its low label counts).
    /// </summary>
    public StepBudget PaperRule() => new(CrossEntropy, CrossEntropy, Math.Max(1, CrossEntropy / 4));

    /// <summary><paramref name="k"/> times as many steps in every stage.</summary>
    public StepBudget Times(int k) => new(k * CrossEntropy, k * Pretrain, k * FineTune);

    /// <summary>Every stage capped at <paramref name="steps"/> (<c>--steps</c>: a quick look at any study).</summary>
    public StepBudget Capped(int steps) => new(Math.Min(steps, CrossEntropy), Math.Min(steps, Pretrain), Math.Min(steps, FineTune));
}

/// <summary>A model capacity the regime map varies: the encoder's stem and width multiplier.</summary>
public sealed record ModelCapacity(EncoderStem Stem, double WidthMultiplier);

/// <summary>
/// Settings of the contrastive recipe a recipe study varies against the study's (null: the study's value): the loss's
/// temperature and resize size (0 = no resize), the projection head's batch norm (both stages, so the fine-tuning loads
/// the head it was pretrained with), the fine-tuning learning rate, and further loss settings (the peers' options) as
/// <c>Contrastive.Field=value</c> assignments (what <c>--set</c> takes) applied to the stages that train the contrastive loss.
/// </summary>
public sealed record RecipeOverrides(double? Temperature = null, int? ResizeTo = null, bool? ProjectionBatchNorm = null, double? FineTuneLearningRate = null,
    // Written only when set: the plans of studies without it keep their text.
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Loss = null)
{
    /// <summary>The study's recipe, unchanged.</summary>
    public static RecipeOverrides None { get; } = new();
}

/// <summary>
/// One cell of a study as requested: a row of the results (study, setting, method, seed) and what it trains. The
/// <see cref="StudyPlanner"/> turns it into complete stage configs.
/// </summary>
/// <param name="Study">The study the row belongs to, e.g. <c>label-efficiency</c>.</param>
/// <param name="Setting">The varied setting, e.g. <c>labelled=10</c>.</param>
/// <param name="Method">The method, e.g. <c>cross-entropy</c>.</param>
/// <param name="Seed">The training seed of every stage.</param>
/// <param name="Labelled">Labelled training images (null: all).</param>
/// <param name="Recipe">How the cell trains its final model.</param>
/// <param name="Capacity">Another stem and width than the study's model (null: the study's).</param>
/// <param name="Budget">Another step budget than the study's (null: the study's).</param>
/// <param name="Overrides">Recipe settings other than the study's (null: none).</param>
public sealed record StudyCell(string Study, string Setting, string Method, int Seed, int? Labelled, CellRecipe Recipe,
    ModelCapacity? Capacity = null, StepBudget? Budget = null, RecipeOverrides? Overrides = null)
{
    /// <summary>A stable name for the cell: file names of rows, <c>ablations --cell</c>.</summary>
    [JsonIgnore]
    public string Key => $"{Clean(Study)}.{Clean(Method)}.{Clean(Setting)}.s{Seed}";

    private static string Clean(string s) => new(s.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '.' ? ch : '-').ToArray());
}
