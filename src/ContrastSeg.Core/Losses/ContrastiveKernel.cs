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
    /// The group loss computed in blocks of anchor rows, with a backward pass that recomputes each
    /// block's similarities, so neither pass holds more than O(block x N) extra memory.
    /// </summary>
    /// <param name="embeddings">[N, D] pixel embeddings (float32; gradients flow to it).</param>
    /// <param name="labels">[N] integer labels.</param>
    /// <param name="valid">[N] bool, false for pixels with an ignored label.</param>
    /// <param name="views">[N] view index per pixel, or null. When given, negatives come only from the anchor's own view.</param>
    /// <param name="temperature">tau &gt; 0.</param>
    /// <param name="blockSize">Anchor rows per block (0: automatic).</param>
    public static Tensor Blockwise(Tensor embeddings, Tensor labels, Tensor valid, Tensor? views, double temperature, int blockSize = 0)
    {
        var settings = new KernelSettings(temperature, ResolveBlockSize(blockSize, embeddings.shape[0]));
        return BlockwiseFunction.apply(embeddings, labels, valid, views!, settings);
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

    internal sealed record KernelSettings(double Temperature, int BlockSize);

    /// <summary>Masks and the softplus argument of one block of anchor rows.</summary>
    private readonly struct Block
    {
        public readonly Tensor Positive, NegativeLogits, LogSumExp, Margin;

        public Block(Tensor x, Tensor labels, Tensor valid, Tensor? views, long start, long length, double temperature)
        {
            var logits = x.narrow(0, start, length).mm(x.t()).div_(temperature);
            var labelsA = labels.narrow(0, start, length).unsqueeze(1);
            var pairValid = valid.narrow(0, start, length).unsqueeze(1) & valid.unsqueeze(0);
            var same = labelsA == labels.unsqueeze(0);
            Positive = same & pairValid;
            var negative = same.logical_not_().logical_and_(pairValid);
            if (views is not null) negative.logical_and_(views.narrow(0, start, length).unsqueeze(1) == views.unsqueeze(0));
            NegativeLogits = logits.masked_fill(negative.logical_not(), double.NegativeInfinity);
            // -inf for anchors without negatives: softplus(-inf) = 0, i.e. l_pq = -log(1).
            LogSumExp = NegativeLogits.logsumexp(1, keepdim: true);
            Margin = LogSumExp - logits;
        }
    }

    private sealed class BlockwiseFunction : autograd.SingleTensorFunction<BlockwiseFunction>
    {
        public override string Name => "BlockwisePixelContrastive";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, labels, valid, views, settings) = Unpack(vars);
            var n = x.shape[0];
            double total = 0;
            long validAnchors = 0;
            for (long start = 0; start < n; start += settings.BlockSize)
            {
                using var scope = NewDisposeScope();
                var length = Math.Min(settings.BlockSize, n - start);
                var b = new Block(x, labels, valid, views, start, length, settings.Temperature);
                var positives = b.Positive.sum(1, type: ScalarType.Float32);
                var perPair = nn.functional.softplus(b.Margin).masked_fill_(b.Positive.logical_not(), 0.0);
                var perAnchor = perPair.sum(1).div_(positives.clamp_min(1.0));
                total += perAnchor.to_type(ScalarType.Float64).sum().item<double>();
                validAnchors += (positives > 0).sum().item<long>();
            }
            ctx.save_for_backward(new List<Tensor> { x, labels, valid, views! });
            ctx.save_data("settings", settings);
            ctx.save_data("validAnchors", validAnchors);
            return tensor((float)(total / Math.Max(1, validAnchors)), dtype: ScalarType.Float32, device: x.device);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var settings = (KernelSettings)ctx.get_data("settings");
            var validAnchors = (long)ctx.get_data("validAnchors");
            Tensor grad;
            using (var scope = NewDisposeScope())
            {
                var (x, labels, valid) = (saved[0], saved[1], saved[2]);
                var views = saved.Count > 3 && saved[3] is { IsInvalid: false } v ? v : null;
                var n = x.shape[0];
                // d loss / d s_pq, scaled by the upstream gradient and the anchor weight 1/#valid anchors.
                var scale = gradOutput.to_type(ScalarType.Float32) / (Math.Max(1, validAnchors) * settings.Temperature);
                grad = zeros_like(x);
                for (long start = 0; start < n; start += settings.BlockSize)
                {
                    using var blockScope = NewDisposeScope();
                    var length = Math.Min(settings.BlockSize, n - start);
                    var b = new Block(x, labels, valid, views, start, length, settings.Temperature);
                    var inverseCount = b.Positive.sum(1, keepdim: true, type: ScalarType.Float32).clamp_min_(1.0).reciprocal_();
                    // Positive pairs: d l_pq / d s_pq = -sigmoid(margin); each also moves the anchor's logsumexp.
                    var sig = b.Margin.sigmoid().masked_fill_(b.Positive.logical_not(), 0.0).mul_(inverseCount);
                    var gamma = sig.sum(1, keepdim: true);
                    var safeLse = b.LogSumExp.masked_fill(b.LogSumExp.isinf(), 0.0);
                    // Negative pairs: gamma_p * softmax over N(p); zero elsewhere (exp(-inf) = 0).
                    var g = (b.NegativeLogits - safeLse).exp_().mul_(gamma).sub_(sig).mul_(scale);
                    var anchors = x.narrow(0, start, length);
                    grad.narrow(0, start, length).add_(g.mm(x));
                    grad.add_(g.t().mm(anchors));
                }
                grad.MoveToOuterDisposeScope();
            }
            foreach (var t in saved) t?.Dispose();
            return new List<Tensor> { grad, null!, null!, null!, null! };
        }

        private static (Tensor x, Tensor labels, Tensor valid, Tensor? views, KernelSettings settings) Unpack(object[] vars) =>
            ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], vars[3] as Tensor, (KernelSettings)vars[4]);
    }
}
