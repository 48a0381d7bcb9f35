using System.Text.Json.Serialization;
using ContrastSeg.Losses;

namespace ContrastSeg.Studies;

/// <summary>How a cell of a study trains its final model (written into plan.json under <c>kind</c>).</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(CrossEntropyRecipe), "cross-entropy")]
[JsonDerivedType(typeof(ContrastiveFineTuneRecipe), "contrastive+finetune")]
[JsonDerivedType(typeof(ClassificationInitRecipe), "classification-init")]
[JsonDerivedType(typeof(SemiSupervisedRecipe), "semi-supervised")]
[JsonDerivedType(typeof(JointRecipe), "joint")]
public abstract record CellRecipe
{
    /// <summary>Cross-entropy only.</summary>
    public static CellRecipe CrossEntropy { get; } = new CrossEntropyRecipe();

    /// <summary>Contrastive pretraining with <paramref name="variant"/> (colour distortions on or off), then softmax fine-tuning.</summary>
    public static CellRecipe ContrastiveFineTune(ContrastiveVariant variant, bool distortion) => new ContrastiveFineTuneRecipe(variant, distortion);

    /// <summary>The encoder from classification pretraining on single items; then cross-entropy, or contrastive pretraining + fine-tuning.</summary>
    public static CellRecipe ClassificationInit(bool withContrastive) => new ClassificationInitRecipe(withContrastive);

    /// <summary>The teacher recipe, pseudo-labels for the unlabelled images, then the same recipe on labelled + pseudo-labelled images.</summary>
    public static CellRecipe SemiSupervised(CellRecipe teacher) => new SemiSupervisedRecipe(teacher);

    /// <summary>One Joint stage: cross-entropy + weight x the contrastive loss (<paramref name="variant"/>), as ContrastiveSeg and ReCo train, at cross-entropy's budget and rate.</summary>
    public static CellRecipe Joint(ContrastiveVariant variant) => new JointRecipe(variant);

    /// <summary>Whether the recipe starts from classification-pretrained encoder weights.</summary>
    public bool NeedsClassification => this switch
    {
        ClassificationInitRecipe => true,
        SemiSupervisedRecipe s => s.Teacher.NeedsClassification,
        _ => false,
    };
}

/// <summary>Cross-entropy only.</summary>
public sealed record CrossEntropyRecipe : CellRecipe;

/// <summary>Contrastive pretraining (<see cref="Variant"/>, colour distortions on or off), then softmax fine-tuning.</summary>
public sealed record ContrastiveFineTuneRecipe(ContrastiveVariant Variant, bool Distortion) : CellRecipe;

/// <summary>Classification-pretrained encoder; then cross-entropy, or (<see cref="WithContrastive"/>) within-image contrastive + fine-tuning.</summary>
public sealed record ClassificationInitRecipe(bool WithContrastive) : CellRecipe;

/// <summary>The <see cref="Teacher"/> recipe, its pseudo-labels, then the teacher recipe again on labelled + pseudo-labelled images.</summary>
public sealed record SemiSupervisedRecipe(CellRecipe Teacher) : CellRecipe;

/// <summary>One Joint stage (cross-entropy + <c>Contrastive.JointWeight</c> x the contrastive loss with <see cref="Variant"/>), at cross-entropy's steps and learning rate.</summary>
public sealed record JointRecipe(ContrastiveVariant Variant) : CellRecipe;
