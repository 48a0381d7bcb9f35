using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>
/// DeepLabV3+ (ResNet encoder, ASPP, decoder) with a pixel-wise contrastive projection head, the model of
/// Zhao et al. (ICCV 2021). The decoder features (1/4 resolution) feed two heads: <see cref="Classify"/>
/// (1x1 conv to class logits) and <see cref="Project"/> (unit-norm embeddings for contrastive pretraining).
/// <see cref="nn.Module{T, TResult}.forward"/> returns logits upsampled to the input size.
/// </summary>
public sealed class DeepLabV3Plus : nn.Module<Tensor, Tensor>
{
    private const string ProjectionPrefix = nameof(projection) + ".";
    private const string ClassifierPrefix = nameof(classifier) + ".";

    private readonly ResNetEncoder backbone;
    private readonly Aspp aspp;
    private readonly DeepLabV3PlusDecoder decoder;
    private readonly ProjectionHead projection;
    private readonly Conv2d classifier;

    /// <summary>Builds the model. Encoder, ASPP and decoder use kaiming_normal_ (fan_out) init; heads use PyTorch's default.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public DeepLabV3Plus(SegmentationModelOptions options) : base(Prepare(options))
    {
        Options = options;
        backbone = new ResNetEncoder(options.Encoder);
        aspp = new Aspp(backbone.HighLevelChannels, backbone.OutputStride, options.AsppChannels, options.AsppDropout);
        decoder = new DeepLabV3PlusDecoder(backbone.LowLevelChannels, options.AsppChannels, options.LowLevelChannels, options.DecoderChannels);
        projection = new ProjectionHead(options.DecoderChannels, options.ProjectionOrDefault);
        classifier = nn.Conv2d(options.DecoderChannels, options.NumClasses, 1, bias: true);
        RegisterComponents();
    }

    /// <summary>Same as the constructor.</summary>
    public static DeepLabV3Plus Create(SegmentationModelOptions options) => new(options);

    /// <summary>The options the model was built with.</summary>
    public SegmentationModelOptions Options { get; }

    /// <summary>Number of classes (channels of the logits).</summary>
    public int NumClasses => Options.NumClasses;

    /// <summary>Channels of <see cref="Features"/>' output (= <see cref="SegmentationModelOptions.DecoderChannels"/>).</summary>
    public int FeatureChannels => Options.DecoderChannels;

    /// <summary>Embedding dimension of <see cref="Project"/>' output.</summary>
    public int ProjectionChannels => projection.Channels;

    /// <summary>The encoder's output stride (8 or 16).</summary>
    public int OutputStride => backbone.OutputStride;

    /// <summary>The backbone, e.g. to load torchvision ImageNet weights into it.</summary>
    public ResNetEncoder Backbone => backbone;

    /// <summary>
    /// Decoder features [B, <see cref="FeatureChannels"/>, ceil(H/4), ceil(W/4)], the input of both heads.
    /// </summary>
    /// <param name="images">[B, InChannels, H, W] images of the model's float type, H, W &gt;= <see cref="OutputStride"/>.</param>
    /// <exception cref="ArgumentException">The images have the wrong rank, channels, type or are too small; the message has the expected and the actual shape.</exception>
    public Tensor Features(Tensor images)
    {
        backbone.CheckImages(images);
        using var scope = NewDisposeScope();
        var encoded = backbone.call(images);
        var context = aspp.call(encoded.HighLevel);
        return decoder.call(encoded.LowLevel, context).MoveToOuterDisposeScope();
    }

    /// <summary>Unit-norm (over dim 1) pixel embeddings [B, <see cref="ProjectionChannels"/>, h, w] of decoder features.</summary>
    /// <exception cref="ArgumentException">The features are not [B, <see cref="FeatureChannels"/>, h, w].</exception>
    public Tensor Project(Tensor features)
    {
        CheckFeatures(features);
        return projection.call(features);
    }

    /// <summary>Class logits [B, <see cref="NumClasses"/>, h, w] at the features' resolution.</summary>
    /// <exception cref="ArgumentException">The features are not [B, <see cref="FeatureChannels"/>, h, w].</exception>
    public Tensor Classify(Tensor features)
    {
        CheckFeatures(features);
        return classifier.call(features);
    }

    /// <summary>Class logits [B, <see cref="NumClasses"/>, H, W], bilinearly upsampled (align_corners false) to the input size.</summary>
    /// <exception cref="ArgumentException">The images do not fit the model (see <see cref="Features"/>).</exception>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var logits = classifier.call(Features(images));
        var size = new[] { images.shape[2], images.shape[3] };
        return nn.functional.interpolate(logits, size, mode: InterpolationMode.Bilinear, align_corners: false).MoveToOuterDisposeScope();
    }

    /// <summary>Everything but the projection head: what supervised training and fine-tuning optimise.</summary>
    public IEnumerable<Parameter> ParametersExceptProjection() =>
        named_parameters().Where(p => !p.name.StartsWith(ProjectionPrefix, StringComparison.Ordinal)).Select(p => p.parameter);

    /// <summary>Everything but the classifier: what contrastive pretraining optimises.</summary>
    public IEnumerable<Parameter> ParametersExceptClassifier() =>
        named_parameters().Where(p => !p.name.StartsWith(ClassifierPrefix, StringComparison.Ordinal)).Select(p => p.parameter);

    /// <summary>
    /// Re-initialises the classifier (PyTorch's default Conv2d init) in place, so fine-tuning after contrastive
    /// pretraining starts from a fresh classifier. The Parameter objects stay the same, so an optimiser
    /// already holding them keeps working.
    /// </summary>
    public void ResetClassifier() => ModelInit.PyTorchDefaultConv(classifier);

    private void CheckFeatures(Tensor features)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (features.dim() != 4 || features.shape[1] != FeatureChannels)
        {
            var got = features.dim() == 4 ? $"{features.shape[1]} channels " : "";
            throw new ArgumentException(
                $"Expected decoder features with {FeatureChannels} channels ([B, {FeatureChannels}, h, w]), got {got}{ModelInit.Shape(features)}.",
                nameof(features));
        }
    }

    private static string Prepare(SegmentationModelOptions options)
    {
        TorchRuntime.EnsureInitialized();
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return nameof(DeepLabV3Plus);
    }
}
