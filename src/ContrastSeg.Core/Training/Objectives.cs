using ContrastSeg.Data;
using ContrastSeg.Losses;
using ContrastSeg.Models;
using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>The loss of one training stage on one batch, and the parameters that stage trains, for a model of type <typeparamref name="TModel"/>.</summary>
public interface ITrainingObjective<in TModel> : IDisposable where TModel : nn.Module
{
    /// <summary>Name of the loss term (for logs and NaN messages).</summary>
    string Term { get; }

    /// <summary>The scalar float32 loss of <paramref name="batch"/>.</summary>
    Tensor Loss(TModel model, Batch batch);

    /// <summary>What the optimiser updates.</summary>
    IEnumerable<Parameter> Parameters(TModel model);

    /// <summary>The loss's own random generator (checkpointed), if any.</summary>
    Generator? Generator { get; }

    /// <summary>The loss's memory (checkpointed as loss_memory.bin), if any.</summary>
    ClassMemoryBank? Memory => null;
}

/// <summary>The objective of a segmentation stage (cross-entropy, contrastive pretraining, fine-tuning).</summary>
public interface ITrainingObjective : ITrainingObjective<DeepLabV3Plus>
{
}

/// <summary>Pixel-wise cross-entropy on the classifier (baseline and fine-tuning).</summary>
public sealed class CrossEntropyObjective : ITrainingObjective
{
    private readonly long _ignore;

    /// <summary>Cross-entropy ignoring <paramref name="ignoreLabel"/>.</summary>
    public CrossEntropyObjective(long ignoreLabel = 255) => _ignore = ignoreLabel;

    /// <inheritdoc/>
    public string Term => "cross_entropy";

    /// <inheritdoc/>
    public Generator? Generator => null;

    /// <inheritdoc/>
    public Tensor Loss(DeepLabV3Plus model, Batch batch)
    {
        using var scope = NewDisposeScope();
        var logits = model.Classify(model.Features(batch.Images));
        return SegmentationCrossEntropy.Compute(logits, batch.Labels, _ignore).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public IEnumerable<Parameter> Parameters(DeepLabV3Plus model) => model.ParametersExceptProjection();

    /// <inheritdoc/>
    public void Dispose() { }
}

/// <summary>
/// The pixel contrastive loss on projected decoder features. Like the released code, features are
/// resized bilinearly (aligned corners) before the projection head, so the head sees the loss's
/// resolution and its output is exactly unit-norm; labels follow by nearest neighbour.
/// </summary>
public sealed class ContrastiveObjective : ITrainingObjective
{
    private readonly PixelContrastiveLoss _loss;
    private readonly int _resizeTo;

    /// <summary>From the run's contrastive settings; <paramref name="classes"/> sizes the loss's memory (when it has one).</summary>
    public ContrastiveObjective(ContrastiveSettings settings, int seed, long ignoreLabel = 255, int classes = 0)
    {
        _resizeTo = settings.ResizeTo;
        _loss = new PixelContrastiveLoss(settings.ToLossOptions(seed, ignoreLabel, classes));
    }

    /// <inheritdoc/>
    public string Term => "contrastive";

    /// <inheritdoc/>
    public Generator? Generator => _loss.Generator;

    /// <inheritdoc/>
    public ClassMemoryBank? Memory => _loss.Memory;

    /// <inheritdoc/>
    public Tensor Loss(DeepLabV3Plus model, Batch batch)
    {
        using var scope = NewDisposeScope();
        var embeddings = Embed(model, batch.Images);
        Tensor loss;
        if (batch.Images2 is not null && batch.Labels2 is not null)
            loss = _loss.Forward(embeddings, batch.Labels, Embed(model, batch.Images2), batch.Labels2);
        else if (_loss.Options.Variant == ContrastiveVariant.CrossImage)
            throw new InvalidOperationException("The cross-image contrastive loss needs batches with a second view (loader TwoViews).");
        else
            loss = _loss.Forward(embeddings, batch.Labels);
        return loss.MoveToOuterDisposeScope();
    }

    private Tensor Embed(DeepLabV3Plus model, Tensor images) => Project(model, model.Features(images), _resizeTo);

    /// <summary>Features resized bilinearly (aligned corners) to <paramref name="resizeTo"/> (0: as they are), then projected: what the loss reads.</summary>
    internal static Tensor Project(DeepLabV3Plus model, Tensor features, int resizeTo)
    {
        if (resizeTo > 0 && (features.shape[2] != resizeTo || features.shape[3] != resizeTo))
            features = nn.functional.interpolate(features, new long[] { resizeTo, resizeTo }, mode: InterpolationMode.Bilinear, align_corners: true);
        return model.Project(features);
    }

    /// <inheritdoc/>
    public IEnumerable<Parameter> Parameters(DeepLabV3Plus model) => model.ParametersExceptClassifier();

    /// <inheritdoc/>
    public void Dispose() => _loss.Dispose();
}

/// <summary>
/// The Joint stage (ContrastiveSeg's and ReCo's training): cross-entropy on the classifier + <c>Contrastive.JointWeight</c> x
/// the contrastive loss on the projection head, both heads and the network trained together. The classifier's logits
/// (detached) go to the loss for hard anchors and hard queries. With a second view (cross-image, batch), cross-entropy reads
/// the first view, the loss both.
/// </summary>
public sealed class JointObjective : ITrainingObjective
{
    private readonly PixelContrastiveLoss _loss;
    private readonly int _resizeTo;
    private readonly long _ignore;
    private readonly HeldScalars _held = new();
    private readonly Scalar _weight;

    /// <summary>From the run's contrastive settings (<see cref="ContrastiveSettings.JointWeight"/> &gt; 0).</summary>
    public JointObjective(ContrastiveSettings settings, int seed, long ignoreLabel, int classes)
    {
        if (!(settings.JointWeight > 0)) throw new ArgumentException($"Contrastive.JointWeight must be > 0 for the Joint stage, got {settings.JointWeight}.", nameof(settings));
        _resizeTo = settings.ResizeTo;
        _ignore = ignoreLabel;
        _loss = new PixelContrastiveLoss(settings.ToLossOptions(seed, ignoreLabel, classes));
        _weight = _held.Of(settings.JointWeight);
    }

    /// <inheritdoc/>
    public string Term => "joint";

    /// <inheritdoc/>
    public Generator? Generator => _loss.Generator;

    /// <inheritdoc/>
    public ClassMemoryBank? Memory => _loss.Memory;

    /// <inheritdoc/>
    public Tensor Loss(DeepLabV3Plus model, Batch batch)
    {
        using var scope = NewDisposeScope();
        var features = model.Features(batch.Images);
        var logits = model.Classify(features);
        var crossEntropy = SegmentationCrossEntropy.Compute(logits, batch.Labels, _ignore);
        var embeddings = ContrastiveObjective.Project(model, features, _resizeTo);
        Tensor contrastive;
        if (batch.Images2 is not null && batch.Labels2 is not null)
        {
            var features2 = model.Features(batch.Images2);
            contrastive = _loss.Forward(embeddings, batch.Labels, ContrastiveObjective.Project(model, features2, _resizeTo), batch.Labels2,
                logits.detach(), model.Classify(features2).detach());
        }
        else if (_loss.Options.Variant == ContrastiveVariant.CrossImage)
            throw new InvalidOperationException("The cross-image contrastive loss needs batches with a second view (loader TwoViews).");
        else
            contrastive = _loss.Forward(embeddings, batch.Labels, null, null, logits.detach(), null);
        return crossEntropy.add(contrastive, _weight).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public IEnumerable<Parameter> Parameters(DeepLabV3Plus model) => model.parameters();

    /// <inheritdoc/>
    public void Dispose()
    {
        _loss.Dispose();
        _held.Dispose();
    }
}
