using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Losses;

/// <summary>Which pixels form a group for the contrastive loss.</summary>
public enum ContrastiveVariant
{
    /// <summary>Each image on its own; the loss is averaged over the images (and views) of the batch.</summary>
    WithinImage,
    /// <summary>Image i with a distorted view of another image j: positives from both, negatives only from the anchor's own image.</summary>
    CrossImage,
    /// <summary>All pixels of the mini-batch (both views when given) as one set, from which a seeded random sample is drawn.</summary>
    Batch,
}

/// <summary>How the cross-image variant picks the partner j of image i.</summary>
public enum CrossImagePairing
{
    /// <summary>j = (i + 1) mod B: always another image when B &gt; 1 (the paper's description).</summary>
    NextImage,
    /// <summary>j = a seeded random permutation of the batch (the released code's tf.random.shuffle; may pick i).</summary>
    Shuffled,
    /// <summary>j = i: each image with its own distorted view.</summary>
    SameImage,
}

/// <summary>Which kernel computes a group's loss.</summary>
public enum ContrastiveImplementation
{
    /// <summary>Blocks of anchor rows, O(block x N) memory in forward and backward (the default).</summary>
    Blockwise,
    /// <summary>The full N x N matrix with plain autograd; quadratic memory, for tests and benchmarks.</summary>
    FullMatrix,
}

/// <summary>Which loss the pixels feed (see docs/loss.md).</summary>
public enum ContrastiveForm
{
    /// <summary>The paper's loss: every chosen pixel is an anchor and a key, each positive with its own denominator.</summary>
    Paper,
    /// <summary>
    /// ReCo's regional contrast (Liu et al. 2022): per class, sampled (hard) queries against the class mean as the one positive
    /// key and negative pixels drawn from the other classes in proportion to how similar their class means are to the query's.
    /// </summary>
    Regional,
}

/// <summary>Settings of <see cref="PixelContrastiveLoss"/>. Defaults follow the paper; every option beyond it is off by default.</summary>
public sealed record PixelContrastiveOptions
{
    /// <summary>Loss variant (default within-image).</summary>
    public ContrastiveVariant Variant { get; init; } = ContrastiveVariant.WithinImage;

    /// <summary>Temperature tau (paper: 0.07).</summary>
    public double Temperature { get; init; } = 0.07;

    /// <summary>Labels that take part in no pair (default 255, the VOC/Cityscapes void label).</summary>
    public IReadOnlyList<long> IgnoreLabels { get; init; } = new long[] { 255 };

    /// <summary>
    /// Size (height, width) the embeddings are resized to, bilinearly with aligned corners as in the
    /// released code, before the loss (paper: 65x65); labels follow with aligned-corner nearest
    /// neighbour. Null: no resize (labels are still brought to the embeddings' size).
    /// </summary>
    public (int Height, int Width)? ResizeTo { get; init; } = (65, 65);

    /// <summary>L2-normalise embeddings over channels after the resize (bilinear mixing shortens unit vectors).</summary>
    public bool NormalizeEmbeddings { get; init; } = true;

    /// <summary>Pixels sampled from the whole mini-batch by the batch variant (paper: 10,000); only non-ignored pixels are drawn.</summary>
    public int BatchSampleSize { get; init; } = 10_000;

    /// <summary>Partner choice of the cross-image variant.</summary>
    public CrossImagePairing Pairing { get; init; } = CrossImagePairing.NextImage;

    /// <summary>Seed of the loss's own generator (batch sampling, shuffled pairing).</summary>
    public long Seed { get; init; } = 0;

    /// <summary>Anchor rows per block; 0 picks about 2M elements per block (8 MB per float matrix).</summary>
    public int BlockSize { get; init; } = 0;

    /// <summary>Kernel choice (blockwise by default).</summary>
    public ContrastiveImplementation Implementation { get; init; } = ContrastiveImplementation.Blockwise;

    /// <summary>
    /// Anchors per image and class present (ContrastiveSeg's per-class budget; the Regional form: queries per class of the
    /// batch, ReCo's 256); 0: every valid pixel is an anchor (the paper). The chosen pixels form the group (anchors and keys).
    /// </summary>
    public int AnchorsPerClass { get; init; }

    /// <summary>Cap on the anchors of a group (ContrastiveSeg's max_samples): the per-class budget shrinks to fit; 0: none.</summary>
    public int MaxAnchors { get; init; }

    /// <summary>
    /// Share of each class's anchors taken from pixels the classifier gets wrong (ContrastiveSeg: 0.5), the rest from those it
    /// gets right, either side filling in when the other runs short; needs the logits. 0: uniform sampling.
    /// </summary>
    public double HardAnchorFraction { get; init; }

    /// <summary>The loss the pixels feed: the paper's or ReCo's regional contrast.</summary>
    public ContrastiveForm Form { get; init; } = ContrastiveForm.Paper;

    /// <summary>Regional form: negative keys per query (ReCo: 256).</summary>
    public int RegionalNegatives { get; init; }

    /// <summary>
    /// Regional form: queries only from pixels whose predicted probability of their own label is below this (ReCo: 0.97);
    /// needs the logits. 0: every pixel may be a query.
    /// </summary>
    public double HardQueryThreshold { get; init; }

    /// <summary>Per-class memory of pixel embeddings: entries per class (0: no pixel memory); they join every group as keys.</summary>
    public int MemoryPixels { get; init; }

    /// <summary>Pixels of each class of each image written to the pixel memory per forward (ContrastiveSeg: 10).</summary>
    public int MemoryPixelsPerImage { get; init; }

    /// <summary>Per-class memory of region embeddings (an image's class mean): entries per class (0: none); they join every group as keys.</summary>
    public int MemoryRegions { get; init; }

    /// <summary>Number of classes (labels 0..Classes-1): needed by the memory.</summary>
    public int Classes { get; init; }

    /// <summary>Whether a memory bank is on.</summary>
    public bool HasMemory => MemoryPixels > 0 || MemoryRegions > 0;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public PixelContrastiveOptions Validate()
    {
        if (!(Temperature > 0) || double.IsInfinity(Temperature))
            throw new ArgumentException($"Temperature must be a positive finite number, got {Temperature}.", nameof(Temperature));
        if (!Enum.IsDefined(Variant))
            throw new ArgumentException($"Variant '{Variant}' is not one of {string.Join(", ", Enum.GetNames<ContrastiveVariant>())}.", nameof(Variant));
        if (ResizeTo is { } size && (size.Height < 1 || size.Width < 1))
            throw new ArgumentException($"ResizeTo must be at least 1x1, got {size.Height}x{size.Width}.", nameof(ResizeTo));
        if (BatchSampleSize < 1)
            throw new ArgumentException($"BatchSampleSize must be at least 1, got {BatchSampleSize}.", nameof(BatchSampleSize));
        if (BlockSize < 0)
            throw new ArgumentException($"BlockSize must be 0 (automatic) or positive, got {BlockSize}.", nameof(BlockSize));
        if (IgnoreLabels is null)
            throw new ArgumentException("IgnoreLabels must be a list (possibly empty).", nameof(IgnoreLabels));
        ValidatePeerOptions();
        return this;
    }

    private void ValidatePeerOptions()
    {
        if (PeerProblems().FirstOrDefault() is { Field: not null } problem)
            throw new ArgumentException($"{problem.Field} = {problem.Value} is invalid: {problem.Rule}.", problem.Field);
    }

    /// <summary>
    /// What is wrong with the peer options, first problem first: the field, its value and the rule (the one list of these
    /// rules: the loss throws the first, a run's config names it as its <c>Contrastive.*</c> setting).
    /// </summary>
    public IEnumerable<(string Field, object Value, string Rule)> PeerProblems()
    {
        var regional = Form == ContrastiveForm.Regional;
        var rules = new (bool Ok, string Field, object Value, string Rule)[]
        {
            (Enum.IsDefined(Form), nameof(Form), Form, $"must be one of {string.Join(", ", Enum.GetNames<ContrastiveForm>())}"),
            (AnchorsPerClass >= 0, nameof(AnchorsPerClass), AnchorsPerClass, "must be >= 0 (0: every pixel)"),
            (MaxAnchors >= 0, nameof(MaxAnchors), MaxAnchors, "must be >= 0 (0: no cap)"),
            (MaxAnchors == 0 || (AnchorsPerClass > 0 && !regional), nameof(MaxAnchors), MaxAnchors, "caps per-class sampling: set AnchorsPerClass too (not with the Regional form)"),
            (HardAnchorFraction is >= 0 and <= 1, nameof(HardAnchorFraction), HardAnchorFraction, "must be in [0, 1]"),
            (HardAnchorFraction == 0 || (AnchorsPerClass > 0 && !regional), nameof(HardAnchorFraction), HardAnchorFraction,
                "splits the per-class budget: set AnchorsPerClass too (the Regional form has HardQueryThreshold instead)"),
            (!regional || AnchorsPerClass >= 1, nameof(AnchorsPerClass), AnchorsPerClass, "must be >= 1 with the Regional form: queries per class (ReCo: 256)"),
            (RegionalNegatives >= 0, nameof(RegionalNegatives), RegionalNegatives, "must be >= 0"),
            (!regional || RegionalNegatives >= 1, nameof(RegionalNegatives), RegionalNegatives, "must be >= 1 with the Regional form (ReCo: 256)"),
            (regional || RegionalNegatives == 0, nameof(RegionalNegatives), RegionalNegatives, "is a setting of the Regional form (Form=Regional)"),
            (HardQueryThreshold is >= 0 and <= 1, nameof(HardQueryThreshold), HardQueryThreshold, "must be in [0, 1] (0: off)"),
            (regional || HardQueryThreshold == 0, nameof(HardQueryThreshold), HardQueryThreshold, "is a setting of the Regional form (Form=Regional)"),
            (MemoryPixels >= 0, nameof(MemoryPixels), MemoryPixels, "must be >= 0 (0: no pixel memory)"),
            (MemoryRegions >= 0, nameof(MemoryRegions), MemoryRegions, "must be >= 0 (0: no region memory)"),
            (MemoryPixelsPerImage >= 0, nameof(MemoryPixelsPerImage), MemoryPixelsPerImage, "must be >= 0"),
            (MemoryPixels <= 0 || MemoryPixelsPerImage >= 1, nameof(MemoryPixelsPerImage), MemoryPixelsPerImage, "must be >= 1 with a pixel memory (ContrastiveSeg: 10)"),
            (MemoryPixels > 0 || MemoryPixelsPerImage == 0, nameof(MemoryPixelsPerImage), MemoryPixelsPerImage, "needs MemoryPixels > 0"),
            (!HasMemory || !regional, nameof(MemoryPixels), MemoryPixels, "the memory feeds the Paper form (ReCo keeps none)"),
            (!HasMemory || Classes >= 1, nameof(Classes), Classes, "must be >= 1 with a memory"),
            (!(AnchorsPerClass > 0 || HasMemory || regional) || Implementation == ContrastiveImplementation.Blockwise, nameof(Implementation), Implementation,
                "the full-matrix reference computes the paper's loss only: the peer options need Blockwise"),
        };
        return rules.Where(r => !r.Ok).Select(r => (r.Field, r.Value, r.Rule));
    }
}

/// <summary>
/// The supervised (label-based) pixel contrastive loss of Zhao et al. (ICCV 2021), with the
/// released code's semantics: a separate denominator per positive (the positive plus the anchor's
/// negatives), the self-pair counted as positive, ignored pixels in no pair, anchors without
/// positives weighing zero, means over positives, valid anchors and groups. Knows nothing about the
/// model: it takes embeddings and labels.
/// </summary>
/// <remarks>
/// The released code returns the sum of the two views' within-image losses; this class returns their
/// mean over all images of both views (half of that sum when both views are given).
/// </remarks>
public sealed class PixelContrastiveLoss : IDisposable
{
    private readonly Generator _generator;
    private readonly ClassMemoryBank? _memory;

    /// <summary>The validated settings.</summary>
    public PixelContrastiveOptions Options { get; }

    /// <summary>Creates the loss; throws <see cref="ArgumentException"/> for invalid settings.</summary>
    public PixelContrastiveLoss(PixelContrastiveOptions? options = null)
    {
        TorchRuntime.EnsureInitialized();
        Options = (options ?? new PixelContrastiveOptions()).Validate();
        // A CPU generator: its draws (shuffled pairings, the batch variant's sample) are the same on every device, its
        // state is what checkpoints keep (loss_rng.bin), and the indices it samples are moved to the features' device.
        _generator = new Generator(0, device: CPU);
        _generator.manual_seed(Options.Seed);
        if (Options.HasMemory) _memory = new ClassMemoryBank(Options.Classes, Options.MemoryPixels, Options.MemoryRegions, Options.MemoryPixelsPerImage);
    }

    /// <summary>The per-class memory (<see cref="PixelContrastiveOptions.MemoryPixels"/>, <see cref="PixelContrastiveOptions.MemoryRegions"/>), or null: checkpoint it to resume exactly.</summary>
    public ClassMemoryBank? Memory => _memory;

    /// <summary>
    /// Loss of one view: within-image or batch variant. The cross-image variant needs a second view
    /// (use the four-argument overload).
    /// </summary>
    /// <param name="embeddings">[B, D, h, w] projected embeddings (unit norm unless <see cref="PixelContrastiveOptions.NormalizeEmbeddings"/>).</param>
    /// <param name="labels">[B, H, W] integer labels (any size; nearest-neighbour resized).</param>
    /// <returns>A float32 scalar, differentiable with respect to <paramref name="embeddings"/>.</returns>
    public Tensor Forward(Tensor embeddings, Tensor labels) => Forward(embeddings, labels, null, null);

    /// <summary>
    /// Loss of two views (an image batch and its distorted views). Within-image: the mean over the
    /// images of both views; cross-image: image i of the first view with image j of the second;
    /// batch: all pixels of both views as one set.
    /// </summary>
    /// <param name="embeddings">[B, D, h, w] embeddings of the first view.</param>
    /// <param name="labels">[B, H, W] labels of the first view.</param>
    /// <param name="embeddings2">[B, D, h, w] embeddings of the second view, or null.</param>
    /// <param name="labels2">[B, H, W] labels of the second view, or null.</param>
    public Tensor Forward(Tensor embeddings, Tensor labels, Tensor? embeddings2, Tensor? labels2) => Forward(embeddings, labels, embeddings2, labels2, null, null);

    /// <summary>
    /// <see cref="Forward(Tensor, Tensor, Tensor?, Tensor?)"/> with the classifier's logits of each view, which hard anchors
    /// (<see cref="PixelContrastiveOptions.HardAnchorFraction"/>) and hard queries (<see cref="PixelContrastiveOptions.HardQueryThreshold"/>)
    /// read. With a memory, the memory's entries join every group as keys, then this batch is written to it (detached).
    /// </summary>
    /// <param name="embeddings">[B, D, h, w] embeddings of the first view.</param>
    /// <param name="labels">[B, H, W] labels of the first view.</param>
    /// <param name="embeddings2">[B, D, h, w] embeddings of the second view, or null.</param>
    /// <param name="labels2">[B, H, W] labels of the second view, or null.</param>
    /// <param name="logits">[B, C, h', w'] class scores of the first view (bilinearly resized to the embeddings; no gradient flows), or null.</param>
    /// <param name="logits2">The second view's, or null.</param>
    public Tensor Forward(Tensor embeddings, Tensor labels, Tensor? embeddings2, Tensor? labels2, Tensor? logits, Tensor? logits2)
    {
        if ((embeddings2 is null) != (labels2 is null))
            throw new ArgumentException("Give both the second view's embeddings and its labels, or neither.");
        if (Options.Variant == ContrastiveVariant.CrossImage && embeddings2 is null)
            throw new ArgumentException("The cross-image variant needs a second (distorted) view: call Forward(embeddings, labels, embeddings2, labels2).");
        var needsLogits = Options.HardAnchorFraction > 0 || Options.HardQueryThreshold > 0;
        if (needsLogits && (logits is null || (embeddings2 is not null && logits2 is null)))
            throw new ArgumentException($"{(Options.HardAnchorFraction > 0 ? "HardAnchorFraction" : "HardQueryThreshold")} needs the classifier's logits of every view (train the Joint stage).");

        using var scope = NewDisposeScope();
        // The blockwise kernel normalises rows as it reads them and takes the views as they are: no normalised
        // copy, no concatenated pair. The full-matrix reference normalises first and concatenates.
        var blockwise = Options.Implementation == ContrastiveImplementation.Blockwise;
        var (x1, y1, v1) = Prepare(embeddings, labels, "embeddings", "labels", normalize: !blockwise);
        Tensor loss;
        if (Options.Form == ContrastiveForm.Regional || Options.AnchorsPerClass > 0 || _memory is not null)
        {
            var views = new List<View> { new(x1, y1, v1, needsLogits ? Scores(logits!, x1, embeddings) : null) };
            if (embeddings2 is not null)
            {
                var (x2, y2, v2) = Prepare(embeddings2, labels2!, "embeddings2", "labels2", normalize: false);
                if (x1.shape[0] != x2.shape[0] || x1.shape[2] != x2.shape[2])
                    throw new ArgumentException($"The two views must have the same batch size and embedding size: [{string.Join(", ", x1.shape)}] vs [{string.Join(", ", x2.shape)}] (as [B, pixels, D]).");
                views.Add(new View(x2, y2, v2, needsLogits ? Scores(logits2!, x2, embeddings2) : null));
            }
            loss = Options.Form == ContrastiveForm.Regional ? RegionalLoss(views) : PeerLoss(views);
            if (_memory is not null)
                foreach (var view in views) _memory.Write(view.X, view.Y, view.Valid, _generator);
            return loss.MoveToOuterDisposeScope();
        }
        if (embeddings2 is null)
        {
            loss = blockwise ? BlockwiseLoss(new[] { x1 }, new[] { y1 }, new[] { v1 })
                : Options.Variant == ContrastiveVariant.Batch ? BatchLoss(x1, y1, v1) : WithinImageLoss(new[] { (x1, y1, v1) });
        }
        else
        {
            var (x2, y2, v2) = Prepare(embeddings2, labels2!, "embeddings2", "labels2", normalize: !blockwise);
            if (x1.shape[0] != x2.shape[0] || x1.shape[2] != x2.shape[2])
                throw new ArgumentException($"The two views must have the same batch size and embedding size: [{string.Join(", ", x1.shape)}] vs [{string.Join(", ", x2.shape)}] (as [B, pixels, D]).");
            loss = blockwise ? BlockwiseLoss(new[] { x1, x2 }, new[] { y1, y2 }, new[] { v1, v2 }) : Options.Variant switch
            {
                ContrastiveVariant.WithinImage => WithinImageLoss(new[] { (x1, y1, v1), (x2, y2, v2) }),
                ContrastiveVariant.CrossImage => CrossImageLoss(x1, y1, v1, x2, y2, v2),
                _ => BatchLoss(cat(new[] { x1, x2 }, 0), cat(new[] { y1, y2 }, 0), cat(new[] { v1, v2 }, 0)),
            };
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Brings [..., H, W] labels to <paramref name="height"/> x <paramref name="width"/> by aligned-corner nearest neighbour (the released code's resize_nearest_neighbor).</summary>
    public static Tensor ResizeLabelsNearest(Tensor labels, long height, long width)
    {
        if (labels.shape[^2] == height && labels.shape[^1] == width) return labels.alias();
        using var scope = NewDisposeScope();
        var rows = AlignedCornerIndices(labels.shape[^2], height, labels.device);
        var cols = AlignedCornerIndices(labels.shape[^1], width, labels.device);
        return labels.index_select(-2, rows).index_select(-1, cols).MoveToOuterDisposeScope();
    }

    private static Tensor AlignedCornerIndices(long input, long output, Device device)
    {
        if (output == 1) return zeros(1, ScalarType.Int64, device: device);
        var scale = (double)(input - 1) / (output - 1);
        using var held = new HeldScalars();
        return arange(Scalars.ZeroInt, held.Of(output), Scalars.OneInt, ScalarType.Float64, device: device)
            .mul_(held.Of(scale)).round_().to_type(ScalarType.Int64).clamp_(Scalars.ZeroInt, held.Of(input - 1));
    }

    /// <summary>Validates shapes, resizes, (optionally) normalises, flattens to [B, P, D] embeddings, [B, P] labels and [B, P] validity.</summary>
    private (Tensor x, Tensor y, Tensor valid) Prepare(Tensor embeddings, Tensor labels, string embeddingsName, string labelsName, bool normalize)
    {
        if (embeddings.dim() != 4)
            throw new ArgumentException($"{embeddingsName} must be [B, D, h, w], got [{string.Join(", ", embeddings.shape)}].", embeddingsName);
        if (labels.dim() != 3)
            throw new ArgumentException($"{labelsName} must be [B, H, W] integer labels, got [{string.Join(", ", labels.shape)}].", labelsName);
        if (labels.shape[0] != embeddings.shape[0])
            throw new ArgumentException($"{labelsName} has batch size {labels.shape[0]} but {embeddingsName} has {embeddings.shape[0]}.", labelsName);
        if (labels.is_floating_point() || labels.is_complex())
            throw new ArgumentException($"{labelsName} must hold integer labels, got {labels.dtype}.", labelsName);

        var x = embeddings.to_type(ScalarType.Float32);
        if (Options.ResizeTo is { } size && (x.shape[2] != size.Height || x.shape[3] != size.Width))
            x = nn.functional.interpolate(x, new long[] { size.Height, size.Width }, mode: InterpolationMode.Bilinear, align_corners: true);
        if (normalize && Options.NormalizeEmbeddings)
            x = ContrastiveKernel.NormalizeChannels(x, eps: 1e-12); // as nn.functional.normalize, lighter backward
        var y = ResizeLabelsNearest(labels.to_type(ScalarType.Int64), x.shape[2], x.shape[3]);

        var batch = x.shape[0];
        var flatX = x.flatten(2).transpose(1, 2); // [B, P, D], a view: the kernels, cat and index_select read strided rows
        var flatY = y.reshape(batch, -1);                     // [B, P]
        var valid = ones_like(flatY, ScalarType.Bool);
        using var held = new HeldScalars();
        foreach (var ignored in Options.IgnoreLabels) valid = valid & flatY.ne(held.Of(ignored));
        return (flatX, flatY, valid);
    }

    /// <summary>One view of the batch as the peer options read it: [B, P, D] embeddings, [B, P] labels and validity, and the classifier's scores.</summary>
    private sealed record View(Tensor X, Tensor Y, Tensor Valid, ViewScores? Scores);

    /// <summary>The classifier's prediction [B, P] and class probabilities [B, P, C] per pixel.</summary>
    private sealed record ViewScores(Tensor Predicted, Tensor Probabilities);

    /// <summary>Logits [B, C, h', w'] brought to the embeddings' grid: prediction and own-label probability per pixel, without gradient.</summary>
    private ViewScores Scores(Tensor logits, Tensor x, Tensor embeddings)
    {
        if (logits.dim() != 4 || logits.shape[0] != x.shape[0])
            throw new ArgumentException($"logits must be [B, C, h, w] with B = {x.shape[0]}, got [{string.Join(", ", logits.shape)}].", nameof(logits));
        using var noGrad = no_grad();
        var (height, width) = Options.ResizeTo is { } size ? ((long)size.Height, (long)size.Width) : (embeddings.shape[2], embeddings.shape[3]);
        var scores = logits.detach().to_type(ScalarType.Float32);
        if (scores.shape[2] != height || scores.shape[3] != width)
            scores = nn.functional.interpolate(scores, new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: true);
        var flat = scores.flatten(2).transpose(1, 2);                               // [B, P, C]
        return new ViewScores(flat.argmax(2), flat.softmax(2));
    }

    /// <summary>The paper's loss with the peer options: per-class anchor budgets (hard anchors), memory keys.</summary>
    private Tensor PeerLoss(List<View> views)
    {
        var x = views.Select(v => v.X).ToArray();
        var y = views.Select(v => v.Y).ToArray();
        var valid = views.Select(v => v.Valid).ToArray();
        var batch = x[0].shape[0];
        var memory = _memory?.Keys(x[0].device);
        // Which (view, image) pairs form each group, as the variants define them.
        var members = new List<(int View, long Item, long Tag)[]>();
        switch (Options.Variant)
        {
            case ContrastiveVariant.WithinImage:
                for (var v = 0; v < x.Length; v++)
                    for (long b = 0; b < batch; b++) members.Add(new[] { (v, b, 0L) });
                break;
            case ContrastiveVariant.CrossImage:
                var partner = Partners(batch);
                for (var i = 0; i < batch; i++) members.Add(new[] { (0, (long)i, 0L), (1, (long)partner[i], 1L) });
                break;
            default:
                members.Add(Enumerable.Range(0, x.Length).SelectMany(v => Enumerable.Range(0, (int)batch).Select(b => (v, (long)b, 0L))).ToArray());
                break;
        }
        var groups = new List<PixelGroup>();
        foreach (var group in members)
        {
            Tensor?[] rows = new Tensor?[group.Length];
            if (Options.AnchorsPerClass > 0)
            {
                var labels = group.Select(m => y[m.View][m.Item].cpu().data<long>().ToArray()).ToList();
                var validity = group.Select(m => valid[m.View][m.Item].cpu().data<bool>().ToArray()).ToList();
                var predicted = Options.HardAnchorFraction > 0
                    ? group.Select(m => views[m.View].Scores!.Predicted[m.Item].cpu().data<long>().ToArray()).ToList()
                    : null;
                var chosen = AnchorSampling.Choose(labels, validity, predicted, Options.AnchorsPerClass, Options.MaxAnchors, Options.HardAnchorFraction, _generator);
                for (var k = 0; k < group.Length; k++) rows[k] = tensor(chosen[k], ScalarType.Int64, device: x[0].device);
            }
            else if (Options.Variant == ContrastiveVariant.Batch)
            {
                // The paper's sample of the whole batch, as without a memory (indices into all views' pixels, split by image).
                using var held = new HeldScalars();
                var pixels = held.Of(x[0].shape[1]);
                var candidates = SampleCandidates(cat(valid.Select(v => v.reshape(-1)).ToArray()));
                var image = candidates.div(pixels, rounding_mode: RoundingMode.floor);
                var pixel = candidates.remainder(pixels);
                for (var k = 0; k < group.Length; k++)
                    rows[k] = pixel.masked_select(image.eq(held.Of(group[k].View * batch + group[k].Item)));
            }
            var segments = group.Select((m, k) => new GroupSegment(m.View, m.Item, View: m.Tag, Rows: rows[k])).ToArray();
            groups.Add(new PixelGroup(segments, NegativesFromOwnView: Options.Variant == ContrastiveVariant.CrossImage,
                KeyEmbeddings: memory?.Embeddings, KeyLabels: memory?.Labels));
        }
        return ContrastiveKernel.Blockwise(x, y, valid, groups, Options.Temperature, Options.NormalizeEmbeddings, Options.BlockSize);
    }

    /// <summary>ReCo's regional contrast over every valid pixel of the batch (both views), as ReCo pools its batch.</summary>
    private Tensor RegionalLoss(List<View> views)
    {
        var rows = new List<Tensor>();
        var labels = new List<Tensor>();
        var own = new List<Tensor>();
        foreach (var view in views)
        {
            var mask = view.Valid.reshape(-1);
            var index = mask.nonzero().squeeze(1);
            var x = view.X.reshape(-1, view.X.shape[2]).index_select(0, index);
            rows.Add(x); // cosine similarities: no normalisation needed (class means are of the raw rows, as ReCo's)
            var y = view.Y.reshape(-1).index_select(0, index);
            labels.Add(y);
            if (view.Scores is { } s)
            {
                var classes = s.Probabilities.shape[2];
                using var held = new HeldScalars();
                var flat = s.Probabilities.reshape(-1, classes).index_select(0, index);
                if (y.ge(held.Of(classes)).any().item<bool>() || y.lt(Scalars.ZeroInt).any().item<bool>())
                    throw new ArgumentException($"a label is outside the logits' classes 0..{classes - 1} (list it in IgnoreLabels).");
                own.Add(flat.gather(1, y.unsqueeze(1)).squeeze(1));
            }
        }
        var allX = rows.Count == 1 ? rows[0] : cat(rows);
        var allY = labels.Count == 1 ? labels[0] : cat(labels);
        var probability = own.Count == 0 ? null : own.Count == 1 ? own[0] : cat(own);
        var sample = RegionalContrast.Sample(allX, allY, probability, Options.HardQueryThreshold, Options.AnchorsPerClass, Options.RegionalNegatives, Options.Temperature, _generator);
        return RegionalContrast.Loss(allX, allY, sample, Options.Temperature);
    }

    /// <summary>One group of the full-matrix reference (the blockwise kernel takes all groups at once, see <see cref="BlockwiseLoss"/>).</summary>
    private Tensor Group(Tensor x, Tensor y, Tensor valid, Tensor? views) => ContrastiveKernel.FullMatrix(x, y, valid, views, Options.Temperature);

    private Tensor WithinImageLoss(IEnumerable<(Tensor x, Tensor y, Tensor valid)> views)
    {
        var losses = new List<Tensor>();
        foreach (var (x, y, valid) in views)
            for (long b = 0; b < x.shape[0]; b++)
                losses.Add(Group(x[b], y[b], valid[b], null));
        return stack(losses).mean();
    }

    /// <summary>The partner j of every image i of the cross-image variant (draws from the generator for <see cref="CrossImagePairing.Shuffled"/>).</summary>
    private int[] Partners(long batch) => Options.Pairing switch
    {
        CrossImagePairing.NextImage => Enumerable.Range(0, (int)batch).Select(i => (i + 1) % (int)batch).ToArray(),
        CrossImagePairing.SameImage => Enumerable.Range(0, (int)batch).ToArray(),
        _ => randperm(batch, generator: _generator, device: CPU).data<long>().Select(i => (int)i).ToArray(),
    };

    /// <summary>
    /// The batch variant's sample: indices into the flattened validity of all views ([V * B * P]), all valid pixels
    /// or <see cref="PixelContrastiveOptions.BatchSampleSize"/> of them drawn from the generator.
    /// </summary>
    private Tensor SampleCandidates(Tensor validFlat)
    {
        var candidates = validFlat.nonzero().squeeze(1);
        var count = candidates.shape[0];
        if (count > Options.BatchSampleSize)
            candidates = candidates.index_select(0, randperm(count, generator: _generator, device: CPU).narrow(0, 0, Options.BatchSampleSize).to(candidates.device));
        return candidates;
    }

    /// <summary>Every variant through the blockwise kernel, one call for all groups, with the views read in place.</summary>
    private Tensor BlockwiseLoss(Tensor[] x, Tensor[] y, Tensor[] valid)
    {
        var batch = x[0].shape[0];
        var groups = new List<PixelGroup>();
        using var held = new HeldScalars();
        switch (Options.Variant)
        {
            case ContrastiveVariant.WithinImage:
                for (var v = 0; v < x.Length; v++)
                    for (long b = 0; b < batch; b++)
                        groups.Add(new PixelGroup(new[] { new GroupSegment(v, b) }));
                break;
            case ContrastiveVariant.CrossImage:
                var partner = Partners(batch);
                for (var i = 0; i < batch; i++)
                    groups.Add(new PixelGroup(new[] { new GroupSegment(0, i, View: 0), new GroupSegment(1, partner[i], View: 1) }, NegativesFromOwnView: true));
                break;
            default:
                // The same sample as the full-matrix path (indices into all views' pixels), split by image.
                var pixels = held.Of(x[0].shape[1]);
                var candidates = SampleCandidates(cat(valid.Select(v => v.reshape(-1)).ToArray()));
                var image = candidates.div(pixels, rounding_mode: RoundingMode.floor);
                var pixel = candidates.remainder(pixels);
                var segments = new List<GroupSegment>();
                for (var v = 0; v < x.Length; v++)
                    for (long b = 0; b < batch; b++)
                    {
                        var mine = image.eq(held.Of(v * batch + b));
                        if (!mine.any().item<bool>()) continue;
                        segments.Add(new GroupSegment(v, b, Rows: pixel.masked_select(mine)));
                    }
                groups.Add(new PixelGroup(segments));
                break;
        }
        return ContrastiveKernel.Blockwise(x, y, valid, groups, Options.Temperature, Options.NormalizeEmbeddings, Options.BlockSize);
    }

    private Tensor CrossImageLoss(Tensor x1, Tensor y1, Tensor v1, Tensor x2, Tensor y2, Tensor v2)
    {
        var batch = x1.shape[0];
        var partner = Partners(batch);
        var pixels1 = x1.shape[1];
        var pixels2 = x2.shape[1];
        var views = cat(new[] { zeros(pixels1, ScalarType.Int64, device: x1.device), ones(pixels2, ScalarType.Int64, device: x1.device) });
        var losses = new List<Tensor>();
        for (var i = 0; i < batch; i++)
        {
            var j = partner[i];
            losses.Add(Group(cat(new[] { x1[i], x2[j] }), cat(new[] { y1[i], y2[j] }), cat(new[] { v1[i], v2[j] }), views));
        }
        return stack(losses).mean();
    }

    private Tensor BatchLoss(Tensor x, Tensor y, Tensor valid)
    {
        var allX = x.reshape(-1, x.shape[2]);
        var allY = y.reshape(-1);
        var candidates = SampleCandidates(valid.reshape(-1));
        if (candidates.shape[0] == 0) return allX.sum().mul(Scalars.ZeroInt).to_type(ScalarType.Float32); // nothing to contrast; keeps the graph
        var sampledValid = ones(candidates.shape[0], ScalarType.Bool, device: allX.device);
        return Group(allX.index_select(0, candidates), allY.index_select(0, candidates), sampledValid, null);
    }

    /// <summary>The loss's random generator (batch sampling, shuffled pairing); checkpoint its state to resume exactly.</summary>
    public Generator Generator => _generator;

    /// <summary>Releases the loss's random generator and memory.</summary>
    public void Dispose()
    {
        _generator.Dispose();
        _memory?.Dispose();
    }
}
