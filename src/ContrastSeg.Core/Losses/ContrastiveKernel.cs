using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Losses;

/// <summary>
/// The label-based pixel contrastive loss of one group of pixels (an image, an image pair, or the
/// sampled pixels of a batch). Every pixel of the group is an anchor and a key. For an anchor p,
/// keys with the same label are positives P(p) (the self-pair included, as in the released code),
/// keys with another label are negatives N(p), optionally only keys of the anchor's own view.
/// Pixels with an ignored label take part in no pair.
/// <code>
/// l_pq   = -log( exp(s_pq) / (exp(s_pq) + sum_{k in N(p)} exp(s_pk)) ),   s = f_p . f_q / tau
///        = softplus( logsumexp_{k in N(p)} s_pk - s_pq )
/// loss_p = mean_{q in P(p)} l_pq;   group loss = mean over anchors with |P(p)| > 0 (0 if none)
/// </code>
/// </summary>
public static class ContrastiveKernel
{
    /// <summary>Default budget of anchor-row x key elements per block (2M floats = 8 MB per matrix).</summary>
    public const long DefaultBlockElements = 1L << 21;

    /// <summary>Anchor rows per block: <paramref name="blockSize"/> when positive, else from the default budget.</summary>
    public static int ResolveBlockSize(int blockSize, long pixels)
    {
        if (blockSize > 0) return (int)Math.Min(blockSize, Math.Max(1, pixels));
        return (int)Math.Clamp(DefaultBlockElements / Math.Max(1, pixels), 16, Math.Max(16, pixels));
    }

    /// <summary>
    /// The loss of one group given as a ready [N, D] tensor, computed in blocks of anchor rows (see
    /// <see cref="Blockwise(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{PixelGroup}, double, bool, int)"/>,
    /// which takes groups as segments of several tensors and is what <see cref="PixelContrastiveLoss"/> calls).
    /// </summary>
    /// <param name="embeddings">[N, D] pixel embeddings (float32; gradients flow to it).</param>
    /// <param name="labels">[N] integer labels.</param>
    /// <param name="valid">[N] bool, false for pixels with an ignored label.</param>
    /// <param name="views">[N] view index per pixel, or null. When given, negatives come only from the anchor's own view.</param>
    /// <param name="temperature">tau &gt; 0.</param>
    /// <param name="blockSize">Anchor rows per block (0: automatic).</param>
    public static Tensor Blockwise(Tensor embeddings, Tensor labels, Tensor valid, Tensor? views, double temperature, int blockSize = 0)
    {
        using var scope = NewDisposeScope();
        var segment = new Segment(0, 0, null, 0, views?.to_type(ScalarType.Int64));
        var call = new KernelCall(new[] { embeddings.unsqueeze(0) }, new[] { labels.to_type(ScalarType.Int64).unsqueeze(0) }, new[] { valid.unsqueeze(0) },
            new[] { new Group(new[] { segment }, ByView: views is not null) }, temperature, Normalize: false, blockSize);
        return Run(call).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The mean loss of several pixel groups, each made of segments (images, or chosen pixels of images) read in
    /// place from the embeddings tensors: no group is concatenated into a copy, and with
    /// <paramref name="normalize"/> the rows are L2-normalised as the blocks read them (<c>s_pk = x_p . x_k /
    /// (|x_p| |x_k| tau)</c>) instead of through a normalised copy. Every group is computed in blocks of anchor rows
    /// of one segment against all the group's keys. The loss is a scalar, so the same pass also accumulates its
    /// gradient (for a unit upstream gradient) in one tensor the size of each embeddings tensor; backward only hands
    /// it on. Extra memory: those gradients, the rows of segments that need gathering (ignored pixels, chosen rows),
    /// and O(block x N) per block; no block is computed twice.
    /// </summary>
    /// <param name="embeddings">[B, P, D] float32 tensors (any strides: a <c>[B, D, h, w]</c> map's
    /// <c>flatten(2).transpose(1, 2)</c> is read as it is). Gradients flow to those that require them.</param>
    /// <param name="labels">[B, P] integer labels, one tensor per embeddings tensor.</param>
    /// <param name="valid">[B, P] bool, false for pixels with an ignored label (they take part in no pair).</param>
    /// <param name="groups">The groups; the result is the mean of their losses (a group without valid pixels counts 0).</param>
    /// <param name="temperature">tau &gt; 0.</param>
    /// <param name="normalize">L2-normalise every row (<c>x / max(|x|, 1e-12)</c>, as <see cref="NormalizeChannels"/>) inside the kernel.</param>
    /// <param name="blockSize">Anchor rows per block (0: automatic, from the group's size).</param>
    public static Tensor Blockwise(IReadOnlyList<Tensor> embeddings, IReadOnlyList<Tensor> labels, IReadOnlyList<Tensor> valid,
        IReadOnlyList<PixelGroup> groups, double temperature, bool normalize = false, int blockSize = 0)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(valid);
        ArgumentNullException.ThrowIfNull(groups);
        if (labels.Count != embeddings.Count || valid.Count != embeddings.Count)
            throw new ArgumentException($"Give one labels and one validity tensor per embeddings tensor ({embeddings.Count}), got {labels.Count} and {valid.Count}.");
        for (var i = 0; i < embeddings.Count; i++)
        {
            var (x, y, v) = (embeddings[i], labels[i], valid[i]);
            if (x.dim() != 3 || y.dim() != 2 || v.dim() != 2 || y.shape[0] != x.shape[0] || y.shape[1] != x.shape[1] || !y.shape.SequenceEqual(v.shape))
                throw new ArgumentException($"Input {i}: embeddings must be [B, P, D] with [B, P] labels and validity, got [{string.Join(", ", x.shape)}], [{string.Join(", ", y.shape)}], [{string.Join(", ", v.shape)}].");
        }
        var internalGroups = groups.Select(g =>
        {
            if ((g.KeyEmbeddings is null) != (g.KeyLabels is null) || (g.KeyEmbeddings is { } k && (k.dim() != 2 || g.KeyLabels!.dim() != 1 || k.shape[0] != g.KeyLabels.shape[0])))
                throw new ArgumentException("A group's extra keys are [M, D] embeddings with [M] labels, both or neither.");
            return new Group(g.Segments.Select(s =>
            {
                if ((uint)s.Input >= (uint)embeddings.Count || s.Item < 0 || s.Item >= embeddings[s.Input].shape[0])
                    throw new ArgumentException($"Segment ({s.Input}, {s.Item}) refers to no image of the {embeddings.Count} embeddings tensors.");
                return new Segment(s.Input, s.Item, s.Rows, s.View, null);
            }).ToArray(), g.NegativesFromOwnView, g.KeyEmbeddings, g.KeyLabels?.to_type(ScalarType.Int64));
        }).ToArray();
        var call = new KernelCall(embeddings.ToArray(), labels.Select(l => l.to_type(ScalarType.Int64)).ToArray(), valid.ToArray(),
            internalGroups, temperature, normalize, blockSize);
        return Run(call);
    }

    /// <summary>
    /// Reference implementation with the full N x N matrix and plain autograd: a direct transcription of
    /// the released code (exponentials, per-positive denominators, divide-no-nan), with row-max
    /// subtraction for range. Memory is quadratic in N: for tests and benchmarks.
    /// </summary>
    public static Tensor FullMatrix(Tensor embeddings, Tensor labels, Tensor valid, Tensor? views, double temperature)
    {
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        var logits = embeddings.mm(embeddings.t()).div(held.Of(temperature));
        var pairValid = valid.unsqueeze(1) & valid.unsqueeze(0);
        var same = labels.unsqueeze(1) == labels.unsqueeze(0);
        var positive = (same & pairValid).to_type(ScalarType.Float32);
        var negativeMask = ~same & pairValid;
        if (views is not null) negativeMask = negativeMask & (views.unsqueeze(1) == views.unsqueeze(0));
        var negative = negativeMask.to_type(ScalarType.Float32);
        var validity = pairValid.to_type(ScalarType.Float32);

        // Subtracting a per-row constant leaves every ratio below unchanged.
        var rowMax = logits.masked_fill(~pairValid, Scalars.NegativeInfinity).max(1, keepdim: true).values.detach();
        rowMax = rowMax.masked_fill(rowMax.isinf(), Scalars.Zero);
        var exp = (logits - rowMax).exp() * validity;
        var denominator = exp.add((exp * negative).sum(1, keepdim: true), Scalars.One);
        var ratio = where(denominator.gt(Scalars.Zero), exp / denominator.clamp_min(held.Of(1e-38)), zeros_like(exp));
        var invalid = validity.neg().add_(Scalars.One, Scalars.One); // 1 - validity
        var nll = -(ratio * validity).add_(invalid, Scalars.One).log();

        var positives = positive.sum(1, keepdim: true);
        var minimum = held.Of(1e-6);
        var perAnchor = (nll * positive / positives.clamp_min(minimum)).sum(1);
        var anchorValid = positives.squeeze(1).gt(Scalars.Zero).to_type(ScalarType.Float32);
        var loss = (perAnchor * anchorValid).sum() / anchorValid.sum().clamp_min(minimum);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>x / max(||x||_2, eps)</c> over dim 1 (as <c>nn.functional.normalize</c>), with a lean backward:
    /// <c>dx = (g - x (x . g) / n^2) / n</c> from the saved input and norms (the output is not kept), with one
    /// temporary of the input's size where libtorch's composite backward (division, norm, clamp) takes about
    /// four (68 MB at 256 x 129 x 129).
    /// </summary>
    public static Tensor NormalizeChannels(Tensor x, double eps = 1e-12) => NormalizeFunction.apply(x, eps);

    private sealed class NormalizeFunction : autograd.SingleTensorFunction<NormalizeFunction>
    {
        public override string Name => "NormalizeChannels";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, eps) = ((Tensor)vars[0], (double)vars[1]);
            using var noGrad = no_grad();
            using var held = new HeldScalars();
            var epsilon = held.Of(eps);
            var norm = x.norm(1, keepdim: true);
            var clamped = norm.lt(epsilon); // there y = x / eps, whose gradient is g / eps
            var divisor = norm.clamp_min_(epsilon);
            ctx.save_for_backward(new List<Tensor> { x, divisor, clamped });
            return x / divisor;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor g)
        {
            var saved = ctx.get_saved_variables();
            var (x, divisor, clamped) = (saved[0], saved[1], saved[2]);
            Tensor dx;
            using (var scope = NewDisposeScope())
            {
                // (x . g) / n^2, zero where the norm was clamped.
                var radial = (g * x).sum(1, keepdim: true).div_(divisor).div_(divisor).masked_fill_(clamped, Scalars.Zero);
                dx = x.mul(radial.neg_()).add_(g, Scalars.One).div_(divisor).MoveToOuterDisposeScope();
            }
            foreach (var t in saved) t.Dispose();
            return new List<Tensor> { dx, null! };
        }
    }

    /// <summary>Rows of one image: tensor, batch item, chosen rows (null: all), view, or a view per pixel (the [N, D] overload).</summary>
    private sealed record Segment(int Input, long Item, Tensor? Rows, long View, Tensor? PixelViews);

    /// <summary>A group: its segments (anchors and keys) and keys only (a memory's entries, detached), with their labels.</summary>
    private sealed record Group(IReadOnlyList<Segment> Segments, bool ByView, Tensor? ExtraKeys = null, Tensor? ExtraLabels = null);

    private sealed record KernelCall(Tensor[] Embeddings, Tensor[] Labels, Tensor[] Valid, Group[] Groups, double Temperature, bool Normalize, int BlockSize)
    {
        /// <summary>Per embeddings tensor: does its gradient have to be accumulated? (Set before the autograd call.)</summary>
        public bool[] WithGradient { get; init; } = Array.Empty<bool>();
    }

    private static Tensor Run(KernelCall call)
    {
        if (!(call.Temperature > 0)) throw new ArgumentException($"Temperature must be positive, got {call.Temperature}.");
        var withGradient = call.Embeddings.Select(x => x.requires_grad && is_grad_enabled()).ToArray();
        var vars = new List<object>(call.Embeddings) { call with { WithGradient = withGradient } };
        return BlockwiseFunction.apply(vars.ToArray());
    }

    /// <summary>
    /// Keys of a group that sit next to each other in its column order: a segment read in place (a view of its
    /// image's rows) or the gathered rows of the segments that need gathering (ignored pixels or chosen rows).
    /// </summary>
    private sealed class KeyPart
    {
        public required Tensor X;          // [n, D] raw rows
        public required Tensor? InvNorm;    // [n] 1 / max(|x|, eps), or null without normalisation
        public Tensor? Grad;                // [n, D] gradient accumulator rows (a view of the input's, or a gathered buffer), or null
        public long Offset;                 // first column in the group
        public bool KeysOnly;               // a memory's entries: keys, never anchors, no gradient
        public long Count => X.shape[0];
        /// <summary>Gathered part: where its rows go back (embeddings tensor, image, row indices, offset in the part).</summary>
        public List<(int Input, long Item, Tensor Rows, long Offset)> Scatter = [];
    }

    /// <summary>The keys of one group, ready for its blocks.</summary>
    private sealed class GroupKeys
    {
        public required List<KeyPart> Parts;
        public required Tensor Labels;       // [N]
        public required Tensor? Views;       // [N], or null when negatives may come from any view
        public required Tensor? ColumnScale; // [1, N] 1 / max(|x_k|, eps), or null
        public long Count;
        public long Anchors;                 // columns that are also anchors (all but the extra keys)
        public bool HasExtraKeys;            // extra keys are negatives of every view: their view is -1
    }

    private const double NormEpsilon = 1e-12;

    /// <summary>
    /// The gradient accumulators, one per embeddings tensor that needs a gradient, with that tensor's shape and
    /// strides (so autograd passes them on without a copy). Their memory is taken at first use: a batch-variant
    /// group (gathered rows only) needs it only when it scatters its rows back, after its blocks.
    /// </summary>
    private sealed class Accumulators
    {
        private readonly Tensor[] _inputs;
        private readonly bool[] _allocated;

        /// <summary>Placeholders (no storage yet), created in the caller's dispose scope: they outlive the forward pass.</summary>
        public Accumulators(KernelCall call)
        {
            _inputs = call.Embeddings;
            _allocated = new bool[_inputs.Length];
            Tensors = _inputs.Select((x, i) => call.WithGradient[i] ? empty(0, x.dtype, device: x.device) : null).ToArray();
        }

        public Tensor?[] Tensors { get; }

        public bool Any => Tensors.Any(t => t is not null);

        public bool Wanted(int input) => Tensors[input] is not null;

        /// <summary>The accumulator of <paramref name="input"/>, zero-filled on first use, or null when it needs no gradient.</summary>
        public Tensor? Of(int input)
        {
            if (Tensors[input] is not { } t) return null;
            if (!_allocated[input])
            {
                using var storage = zeros_like(_inputs[input]); // same strides as the input (dense layouts)
                t.set_(storage);
                _allocated[input] = true;
            }
            return t;
        }
    }

    private static GroupKeys Keys(KernelCall call, Group group, Tensor?[] invNorms, Accumulators gradients, Constants c)
    {
        var parts = new List<KeyPart>();
        var labels = new List<Tensor>();
        var views = new List<Tensor>();
        var gathered = new List<(Segment Segment, Tensor Rows)>();
        foreach (var s in group.Segments)
        {
            var valid = call.Valid[s.Input][s.Item];
            var rows = s.Rows is { } chosen ? chosen.to_type(ScalarType.Int64).masked_select(valid.index_select(0, chosen.to_type(ScalarType.Int64)))
                : valid.all().item<bool>() ? null : valid.nonzero().squeeze(1);
            if (rows is not null)
            {
                if (rows.shape[0] > 0) gathered.Add((s, rows));
                continue;
            }
            var x = call.Embeddings[s.Input][s.Item];
            parts.Add(new KeyPart { X = x, InvNorm = invNorms[s.Input]?[s.Item], Grad = gradients.Of(s.Input)?[s.Item] });
            labels.Add(call.Labels[s.Input][s.Item]);
            if (group.ByView) views.Add(s.PixelViews ?? full(x.shape[0], c.Of(s.View), ScalarType.Int64, device: x.device));
        }
        if (gathered.Count > 0)
        {
            // One part for all gathered rows: one matrix product per block instead of one per segment.
            var total = gathered.Sum(g => g.Rows.shape[0]);
            var first = call.Embeddings[gathered[0].Segment.Input];
            var x = empty(new[] { total, first.shape[2] }, first.dtype, device: first.device);
            var part = new KeyPart { X = x, InvNorm = call.Normalize ? empty(total, ScalarType.Float32, device: first.device) : null };
            if (gathered.Any(g => gradients.Wanted(g.Segment.Input))) part.Grad = zeros_like(x);
            long offset = 0;
            foreach (var (s, rows) in gathered)
            {
                var n = rows.shape[0];
                x.narrow(0, offset, n).copy_(call.Embeddings[s.Input][s.Item].index_select(0, rows));
                part.InvNorm?.narrow(0, offset, n).copy_(invNorms[s.Input]![s.Item].index_select(0, rows));
                if (gradients.Wanted(s.Input)) part.Scatter.Add((s.Input, s.Item, rows, offset));
                labels.Add(call.Labels[s.Input][s.Item].index_select(0, rows));
                if (group.ByView) views.Add(s.PixelViews?.index_select(0, rows) ?? full(n, c.Of(s.View), ScalarType.Int64, device: x.device));
                offset += n;
            }
            parts.Add(part);
        }
        var anchors = parts.Sum(p => p.Count);
        if (anchors > 0 && group.ExtraKeys is { } extra && extra.shape[0] > 0)
        {
            var x = extra.detach().to_type(call.Embeddings[0].dtype);
            parts.Add(new KeyPart { X = x, InvNorm = call.Normalize ? x.norm(1, keepdim: false).clamp_min(c.Epsilon).reciprocal_() : null, KeysOnly = true });
            labels.Add(group.ExtraLabels!);
            if (group.ByView) views.Add(full(x.shape[0], c.Of(-1L), ScalarType.Int64, device: x.device));
        }
        if (parts.Count == 0 || anchors == 0) return new GroupKeys { Parts = parts, Labels = empty(0, ScalarType.Int64, device: call.Labels[0].device), Views = null, ColumnScale = null, Count = 0 };
        long column = 0;
        foreach (var p in parts)
        {
            p.Offset = column;
            column += p.Count;
        }
        return new GroupKeys
        {
            Parts = parts,
            Labels = labels.Count == 1 ? labels[0] : cat(labels),
            Views = group.ByView ? (views.Count == 1 ? views[0] : cat(views)) : null,
            ColumnScale = call.Normalize && parts.Count > 0 ? cat(parts.Select(p => p.InvNorm!).ToArray()).unsqueeze(0) : null,
            Count = column,
            Anchors = anchors,
            HasExtraKeys = parts.Any(p => p.KeysOnly),
        };
    }

    /// <summary>
    /// The call's Scalars (besides the process-wide <see cref="Scalars"/>), held until the call ends, and a zero of the
    /// embeddings' type for <c>softplus(m) = logaddexp(m, 0)</c> (TorchSharp's <c>softplus()</c> makes two temporary
    /// Scalars per block). Temporary Scalars are also a use-after-free hazard (see <see cref="Scalars"/>), and
    /// thousands of them, freed only by the finalizer between the blocks' freed tensors, fragment the heap (with
    /// small blocks the process grew by 100+ MB that no tensor held).
    /// </summary>
    private sealed class Constants : IDisposable
    {
        private readonly HeldScalars _held = new();
        public readonly Scalar Epsilon, InverseTemperature;
        public readonly Tensor ZeroTensor;

        public Constants(double temperature, KernelCall call)
        {
            Epsilon = _held.Of(NormEpsilon);
            InverseTemperature = _held.Of(1.0 / temperature);
            var first = call.Embeddings.FirstOrDefault();
            ZeroTensor = zeros(Array.Empty<long>(), first?.dtype ?? ScalarType.Float32, device: first?.device ?? CPU).DetachFromDisposeScope();
        }

        /// <summary>A Scalar held until the call ends.</summary>
        public Scalar Of(double value) => _held.Of(value);

        /// <inheritdoc cref="Of(double)"/>
        public Scalar Of(long value) => _held.Of(value);

        public void Dispose()
        {
            _held.Dispose();
            ZeroTensor.Dispose();
        }
    }

    /// <summary>
    /// One block of anchor rows [start, start + length) of part <paramref name="a"/>: returns the sum of their losses
    /// (mean over each anchor's positives). With gradients, adds the block's share of d loss / d y (y the normalised
    /// rows), divided by the row's norm, to the accumulators: H x to the anchor rows and H^T x_anchors to all rows,
    /// where H = d loss / d s, scaled by <paramref name="gradientScale"/> / (tau |x_p| |x_k|) (1 / tau without normalisation).
    /// </summary>
    private static double Block(GroupKeys keys, KeyPart a, long start, long length, Constants c, Scalar? gradientScale)
    {
        using var scope = NewDisposeScope();
        var anchors = a.X.narrow(0, start, length);                                              // [L, D], raw rows
        var rowScale = a.InvNorm?.narrow(0, start, length).unsqueeze(1).mul(c.InverseTemperature); // 1 / (tau |x_p|), [L, 1]
        var scaledAnchors = rowScale is null ? anchors.mul(c.InverseTemperature) : anchors.mul(rowScale);
        var logits = empty(new[] { length, keys.Count }, anchors.dtype, device: anchors.device);         // s_pk, [L, N]
        foreach (var t in keys.Parts) logits.narrow(1, t.Offset, t.Count).addmm_(scaledAnchors, t.X.t(), beta: 0);
        if (keys.ColumnScale is { } columnScale) logits.mul_(columnScale);
        scaledAnchors.Dispose();

        var labels = keys.Labels.narrow(0, a.Offset + start, length);
        var same = labels.unsqueeze(1).eq(keys.Labels.unsqueeze(0));                           // positives P(p)
        var notPositive = same.logical_not();
        Tensor notNegative = same;
        if (keys.Views is not null)
        {
            var otherView = keys.Views.narrow(0, a.Offset + start, length).unsqueeze(1).ne(keys.Views.unsqueeze(0));
            if (keys.HasExtraKeys) otherView.logical_and_(keys.Views.ne(c.Of(-1L)).unsqueeze(0)); // extra keys (view -1) are every view's negatives
            notNegative = same.logical_or(otherView);
        }
        var positives = same.sum(1, keepdim: true, type: ScalarType.Float32).clamp_min_(Scalars.One); // |P(p)| >= 1 (the self-pair)

        // exp(s_pk - max) on the negatives, 0 elsewhere; the max over N(p) keeps it in range.
        var negExp = logits.masked_fill(notNegative, Scalars.NegativeInfinity);
        var rowMax = negExp.amax(new long[] { 1 }, keepdim: true);
        rowMax.masked_fill_(rowMax.isinf(), Scalars.Zero); // no negatives: exp(-inf) = 0 below
        negExp.add_(rowMax, Scalars.MinusOne).exp_();
        var negSum = negExp.sum(1, keepdim: true);
        // logsumexp over N(p); -inf without negatives, where softplus(-inf) = 0, i.e. l_pq = -log(1).
        var logSumExp = negSum.log().add_(rowMax, Scalars.One);

        // l_pq = softplus(margin), margin = logsumexp_p - s_pq, on the positives (in the logits buffer).
        var margin = logits.neg_().add_(logSumExp, Scalars.One);
        var perPair = margin.logaddexp(c.ZeroTensor).masked_fill_(notPositive, Scalars.Zero); // softplus(margin)
        var perAnchor = perPair.sum(1, keepdim: true).div_(positives);
        var lossSum = perAnchor.to_type(ScalarType.Float64).sum().item<double>();
        perPair.Dispose();

        if (gradientScale is not null)
        {
            // Positive pairs: d l_pq / d s_pq = -sigmoid(margin), weighted 1/|P(p)|; each also moves the
            // anchor's logsumexp by gamma_p = sum of those weights, spread over N(p) by the softmax.
            // Every factor of the row p (1/|P(p)|, the group's scale, 1 / (tau |x_p|)) is applied here.
            var rowFactor = positives.reciprocal_().mul_(gradientScale);
            if (rowScale is null) rowFactor.mul_(c.InverseTemperature);
            else rowFactor.mul_(rowScale);
            var sig = margin.sigmoid_().masked_fill_(notPositive, Scalars.Zero).mul_(rowFactor);
            var gamma = sig.sum(1, keepdim: true);
            var softmaxScale = gamma.div_(negSum).masked_fill_(negSum.eq(Scalars.Zero), Scalars.Zero);
            var g = negExp.mul_(softmaxScale).add_(sig, Scalars.MinusOne);                     // H, [L, N]
            if (keys.ColumnScale is { } columnScale2) g.mul_(columnScale2);
            var anchorGrad = a.Grad?.narrow(0, start, length);
            foreach (var t in keys.Parts)
            {
                var h = g.narrow(1, t.Offset, t.Count);
                anchorGrad?.addmm_(h, t.X);     // d s_pk / d y_p = y_k / tau
                t.Grad?.addmm_(h.t(), anchors); // d s_pk / d y_k = y_p / tau
            }
        }
        return lossSum;
    }

    /// <summary>
    /// Turns the accumulated d loss / d y / |x| into d loss / d x for normalised rows y = x / max(|x|, eps):
    /// <c>dx = a - x (x . a) / max(|x|, eps)^2</c> (just <c>a</c> where the norm was clamped), in place, in chunks of rows.
    /// </summary>
    private static void NormalizationBackward(Tensor x, Tensor norms, Tensor accumulated, Constants c)
    {
        // x, accumulated: [B, P, D]; norms: [B, P] (not clamped).
        var rows = Math.Max(1, DefaultBlockElements / Math.Max(1, x.shape[2]));
        for (long b = 0; b < x.shape[0]; b++)
            for (long start = 0; start < x.shape[1]; start += rows)
            {
                using var scope = NewDisposeScope();
                var length = Math.Min(rows, x.shape[1] - start);
                var xs = x[b].narrow(0, start, length);
                var a = accumulated[b].narrow(0, start, length);
                var n = norms[b].narrow(0, start, length).unsqueeze(1);
                var radial = xs.mul(a).sum(1, keepdim: true).div_(n.clamp_min(c.Epsilon).pow(Scalars.Two)).masked_fill_(n.lt(c.Epsilon), Scalars.Zero);
                a.addcmul_(xs, radial, Scalars.MinusOne);
            }
    }

    private sealed class BlockwiseFunction : autograd.SingleTensorFunction<BlockwiseFunction>
    {
        public override string Name => "BlockwisePixelContrastive";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var call = (KernelCall)vars[^1];
            using var noGrad = no_grad();
            var inputs = call.Embeddings.Length;
            // The accumulators live on (saved for backward): created outside the scope below.
            var gradients = new Accumulators(call);
            double mean = 0;
            using (var constants = new Constants(call.Temperature, call))
            using (var scope = NewDisposeScope())
            {
                var norms = call.Normalize ? call.Embeddings.Select(x => x.norm(2, keepdim: false)).ToArray() : null;
                var invNorms = call.Embeddings.Select((_, i) => norms?[i].clamp_min(constants.Epsilon).reciprocal_()).ToArray();
                foreach (var group in call.Groups)
                {
                    using var groupScope = NewDisposeScope();
                    var keys = Keys(call, group, invNorms, gradients, constants);
                    if (keys.Anchors == 0) continue; // no valid pixel: the group's loss is 0
                    // Every valid pixel is an anchor with a positive (itself), so a group's loss is the mean over its anchors.
                    var gradientScale = gradients.Any ? constants.Of(1.0 / ((double)call.Groups.Length * keys.Anchors)) : null;
                    var blockRows = ResolveBlockSize(call.BlockSize, keys.Count);
                    double total = 0;
                    foreach (var part in keys.Parts.Where(p => !p.KeysOnly))
                        for (long start = 0; start < part.Count; start += blockRows)
                            total += Block(keys, part, start, Math.Min(blockRows, part.Count - start), constants, gradientScale);
                    foreach (var part in keys.Parts.Where(p => p.Scatter.Count > 0))
                    {
                        part.X.Dispose(); // the gathered copy is done with: free it before the accumulators take their memory
                        foreach (var (input, item, rows, offset) in part.Scatter)
                            gradients.Of(input)![item].index_add_(0, rows, part.Grad!.narrow(0, offset, rows.shape[0]), Scalars.One);
                    }
                    mean += total / keys.Anchors / call.Groups.Length;
                }
                for (var i = 0; i < inputs; i++)
                    if (gradients.Of(i) is { } g && norms is not null) NormalizationBackward(call.Embeddings[i], norms[i], g, constants);
            }
            if (gradients.Any) ctx.save_for_backward(gradients.Tensors.Select(g => g!).ToList());
            var device = call.Embeddings.Length > 0 ? call.Embeddings[0].device : CPU;
            return tensor((float)mean, dtype: ScalarType.Float32, device: device);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            if (saved.Count == 0)
                throw new InvalidOperationException("The blockwise contrastive loss was computed without gradient (no_grad or embeddings without requires_grad).");
            // The usual upstream gradient of a loss is 1: hand back the accumulated gradients themselves instead of
            // scaled copies (autograd never writes into an incoming gradient it does not own).
            var unit = gradOutput.item<float>() == 1f;
            var result = new List<Tensor>();
            foreach (var g in saved)
                result.Add(g is null ? null! : unit ? g : g.mul(gradOutput.to_type(g.dtype)));
            if (!unit) foreach (var g in saved) g?.Dispose();
            result.Add(null!); // the KernelCall
            return result;
        }
    }
}

/// <summary>
/// Rows of one image of a <see cref="PixelGroup"/>: image <paramref name="Item"/> of embeddings tensor
/// <paramref name="Input"/> in a <see cref="ContrastiveKernel"/> call, read in place.
/// </summary>
/// <param name="Input">Index of the embeddings tensor.</param>
/// <param name="Item">Batch item of that tensor.</param>
/// <param name="View">View index of these pixels: in a group with <see cref="PixelGroup.NegativesFromOwnView"/>, an anchor's negatives come only from segments of its own view.</param>
/// <param name="Rows">Int64 indices of the pixels to take (gathered into a copy), or null for all of them. Ignored pixels are left out either way.</param>
public readonly record struct GroupSegment(int Input, long Item, long View = 0, Tensor? Rows = null);

/// <summary>A pixel group of the contrastive loss, as segments of the embeddings tensors (no concatenated copy).</summary>
/// <param name="Segments">The group's rows.</param>
/// <param name="NegativesFromOwnView">Negatives only from the anchor's own view (the cross-image variant); positives from all segments.</param>
/// <param name="KeyEmbeddings">[M, D] extra keys (a memory's entries): positives and negatives of every anchor of the group, never anchors, no gradient; or null.</param>
/// <param name="KeyLabels">[M] labels of <paramref name="KeyEmbeddings"/>, or null.</param>
public sealed record PixelGroup(IReadOnlyList<GroupSegment> Segments, bool NegativesFromOwnView = false, Tensor? KeyEmbeddings = null, Tensor? KeyLabels = null);
