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
    /// The group loss computed in blocks of anchor rows. The loss is a scalar, so the same pass over the
    /// blocks also accumulates its gradient for a unit upstream gradient (an [N, D] tensor); backward only
    /// scales it. Neither pass holds more than O(block x N) extra memory, and no block is computed twice.
    /// </summary>
    /// <param name="embeddings">[N, D] pixel embeddings (float32; gradients flow to it).</param>
    /// <param name="labels">[N] integer labels.</param>
    /// <param name="valid">[N] bool, false for pixels with an ignored label.</param>
    /// <param name="views">[N] view index per pixel, or null. When given, negatives come only from the anchor's own view.</param>
    /// <param name="temperature">tau &gt; 0.</param>
    /// <param name="blockSize">Anchor rows per block (0: automatic).</param>
    public static Tensor Blockwise(Tensor embeddings, Tensor labels, Tensor valid, Tensor? views, double temperature, int blockSize = 0)
    {
        if (!valid.all().item<bool>())
        {
            // Ignored pixels take part in no pair: drop them, so the kernel needs no validity masks.
            // index_select routes the gradient back (zero for the dropped rows).
            using var scope = NewDisposeScope();
            var keep = valid.nonzero().squeeze(1);
            return Blockwise(embeddings.index_select(0, keep), labels.index_select(0, keep), ones(keep.shape[0], ScalarType.Bool, keep.device),
                views?.index_select(0, keep), temperature, blockSize).MoveToOuterDisposeScope();
        }
        var settings = new KernelSettings(temperature, ResolveBlockSize(blockSize, embeddings.shape[0]),
            WithGradient: embeddings.requires_grad && is_grad_enabled());
        return BlockwiseFunction.apply(embeddings, labels, views!, settings);
    }

    /// <summary>
    /// Reference implementation with the full N x N matrix and plain autograd: a direct transcription of
    /// the released code (exponentials, per-positive denominators, divide-no-nan), with row-max
    /// subtraction for range. Memory is quadratic in N: for tests and benchmarks.
    /// </summary>
    public static Tensor FullMatrix(Tensor embeddings, Tensor labels, Tensor valid, Tensor? views, double temperature)
    {
        using var scope = NewDisposeScope();
        var logits = embeddings.mm(embeddings.t()) / temperature;
        var pairValid = valid.unsqueeze(1) & valid.unsqueeze(0);
        var same = labels.unsqueeze(1) == labels.unsqueeze(0);
        var positive = (same & pairValid).to_type(ScalarType.Float32);
        var negativeMask = ~same & pairValid;
        if (views is not null) negativeMask = negativeMask & (views.unsqueeze(1) == views.unsqueeze(0));
        var negative = negativeMask.to_type(ScalarType.Float32);
        var validity = pairValid.to_type(ScalarType.Float32);

        // Subtracting a per-row constant leaves every ratio below unchanged.
        var rowMax = logits.masked_fill(~pairValid, double.NegativeInfinity).max(1, keepdim: true).values.detach();
        rowMax = rowMax.masked_fill(rowMax.isinf(), 0.0);
        var exp = (logits - rowMax).exp() * validity;
        var denominator = exp + (exp * negative).sum(1, keepdim: true);
        var ratio = where(denominator > 0, exp / denominator.clamp_min(1e-38), zeros_like(exp));
        var nll = -(ratio * validity + (1 - validity)).log();

        var positives = positive.sum(1, keepdim: true);
        var perAnchor = (nll * positive / positives.clamp_min(1e-6)).sum(1);
        var anchorValid = (positives.squeeze(1) > 0).to_type(ScalarType.Float32);
        var loss = (perAnchor * anchorValid).sum() / anchorValid.sum().clamp_min(1e-6);
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
            var norm = x.norm(1, keepdim: true);
            var clamped = norm < eps; // there y = x / eps, whose gradient is g / eps
            var divisor = norm.clamp_min_(eps);
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
                var radial = (g * x).sum(1, keepdim: true).div_(divisor).div_(divisor).masked_fill_(clamped, 0.0);
                dx = x.mul(radial.neg_()).add_(g).div_(divisor).MoveToOuterDisposeScope();
            }
            foreach (var t in saved) t.Dispose();
            return new List<Tensor> { dx, null! };
        }
    }

    internal sealed record KernelSettings(double Temperature, int BlockSize, bool WithGradient);

    /// <summary>
    /// One block of anchor rows [start, start + length) of a group without ignored pixels: returns the sum of
    /// their losses (mean over each anchor's positives) and how many have a positive. When <paramref name="grad"/>
    /// is given, adds this block's share of d loss / d x to it: G x to the anchor rows and G^T x_anchors to all
    /// rows, with G = tau * (number of anchors) * d loss / d s for the block (the caller divides by both at the end).
    /// </summary>
    private static (double LossSum, long Anchors) Block(Tensor x, Tensor labels, Tensor? views, long start, long length, double temperature, Tensor? grad)
    {
        using var scope = NewDisposeScope();
        var anchors = x.narrow(0, start, length);
        var logits = anchors.mm(x.t()).div_(temperature);                              // s_pk, [L, N]
        var same = labels.narrow(0, start, length).unsqueeze(1) == labels.unsqueeze(0); // positives P(p)
        var notPositive = same.logical_not();
        var notNegative = views is null ? same : same.logical_or(views.narrow(0, start, length).unsqueeze(1) != views.unsqueeze(0));
        var positives = same.sum(1, keepdim: true, type: ScalarType.Float32);

        // exp(s_pk - max) on the negatives, 0 elsewhere; the max over N(p) keeps it in range.
        var negExp = logits.masked_fill(notNegative, double.NegativeInfinity);
        var rowMax = negExp.amax(new long[] { 1 }, keepdim: true);
        rowMax.masked_fill_(rowMax.isinf(), 0.0); // no negatives: exp(-inf) = 0 below
        negExp.sub_(rowMax).exp_();
        var negSum = negExp.sum(1, keepdim: true);
        // logsumexp over N(p); -inf without negatives, where softplus(-inf) = 0, i.e. l_pq = -log(1).
        var logSumExp = negSum.log().add_(rowMax);

        // l_pq = softplus(margin), margin = logsumexp_p - s_pq, on the positives (in the logits buffer).
        var margin = logits.neg_().add_(logSumExp);
        var perPair = nn.functional.softplus(margin).masked_fill_(notPositive, 0.0);
        var perAnchor = perPair.sum(1, keepdim: true).div_(positives.clamp_min(1.0));
        var lossSum = perAnchor.to_type(ScalarType.Float64).sum().item<double>();
        var anchorCount = (positives > 0).sum().item<long>();
        perPair.Dispose();

        if (grad is not null)
        {
            // Positive pairs: d l_pq / d s_pq = -sigmoid(margin), weighted 1/|P(p)|; each also moves the
            // anchor's logsumexp by gamma_p = sum of those weights, spread over N(p) by the softmax.
            var sig = margin.sigmoid_().masked_fill_(notPositive, 0.0).div_(positives.clamp_min(1.0));
            var gamma = sig.sum(1, keepdim: true);
            var softmaxScale = gamma.div_(negSum).masked_fill_(negSum == 0, 0.0);
            var g = negExp.mul_(softmaxScale).sub_(sig);                                  // G, [L, N]
            grad.narrow(0, start, length).addmm_(g, x);  // d s_pk / d x_p = x_k / tau
            grad.addmm_(g.t(), anchors);                 // d s_pk / d x_k = x_p / tau
        }
        return (lossSum, anchorCount);
    }

    private sealed class BlockwiseFunction : autograd.SingleTensorFunction<BlockwiseFunction>
    {
        public override string Name => "BlockwisePixelContrastive";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, labels, views, settings) = ((Tensor)vars[0], (Tensor)vars[1], vars[2] as Tensor, (KernelSettings)vars[3]);
            using var noGrad = no_grad();
            var n = x.shape[0];
            var grad = settings.WithGradient ? zeros_like(x) : null;
            double total = 0;
            long validAnchors = 0;
            for (long start = 0; start < n; start += settings.BlockSize)
            {
                var (lossSum, anchors) = Block(x, labels, views, start, Math.Min(settings.BlockSize, n - start), settings.Temperature, grad);
                total += lossSum;
                validAnchors += anchors;
            }
            if (grad is not null)
            {
                grad.div_(Math.Max(1, validAnchors) * settings.Temperature);
                ctx.save_for_backward(new List<Tensor> { grad });
            }
            return tensor((float)(total / Math.Max(1, validAnchors)), dtype: ScalarType.Float32, device: x.device);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            if (saved.Count == 0)
                throw new InvalidOperationException("The blockwise contrastive loss was computed without gradient (no_grad or embeddings without requires_grad).");
            // The usual upstream gradient of a loss is 1: hand back the saved gradient itself instead of
            // a scaled copy (autograd never writes into an incoming gradient it does not own).
            var grad = gradOutput.item<float>() == 1f ? saved[0] : saved[0].mul(gradOutput.to_type(ScalarType.Float32));
            foreach (var t in saved) if (!ReferenceEquals(t, grad)) t.Dispose();
            return new List<Tensor> { grad, null!, null!, null! };
        }
    }
}
