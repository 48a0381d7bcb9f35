using ContrastSeg.Data;
using ContrastSeg.Losses;
using ContrastSeg.Models;
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

    /// <summary>From the run's contrastive settings.</summary>
    public ContrastiveObjective(ContrastiveSettings settings, int seed, long ignoreLabel = 255)
    {
        _resizeTo = settings.ResizeTo;
        _loss = new PixelContrastiveLoss(new PixelContrastiveOptions
        {
            Variant = settings.Variant,
            Temperature = settings.Temperature,
            IgnoreLabels = new[] { ignoreLabel },
            ResizeTo = null,
            NormalizeEmbeddings = false,
            BatchSampleSize = settings.BatchSampleSize,
            Pairing = settings.Pairing,
            Seed = seed,
        });
    }

    /// <inheritdoc/>
    public string Term => "contrastive";

    /// <inheritdoc/>
    public Generator? Generator => _loss.Generator;

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

    private Tensor Embed(DeepLabV3Plus model, Tensor images)
    {
        var features = model.Features(images);
        if (_resizeTo > 0 && (features.shape[2] != _resizeTo || features.shape[3] != _resizeTo))
            features = nn.functional.interpolate(features, new long[] { _resizeTo, _resizeTo }, mode: InterpolationMode.Bilinear, align_corners: true);
        return model.Project(features);
    }

    /// <inheritdoc/>
    public IEnumerable<Parameter> Parameters(DeepLabV3Plus model) => model.ParametersExceptClassifier();

    /// <inheritdoc/>
    public void Dispose() => _loss.Dispose();
}
