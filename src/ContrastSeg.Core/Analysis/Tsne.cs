using ContrastSeg.Runtime;
using static TorchSharp.torch;

namespace ContrastSeg.Analysis;

/// <summary>t-SNE settings (defaults as in scikit-learn's exact method).</summary>
/// <param name="Perplexity">Effective number of neighbours.</param>
/// <param name="Iterations">Gradient steps.</param>
/// <param name="EarlyExaggeration">P is multiplied by this for the first 250 steps.</param>
/// <param name="PcaDimensions">Inputs with more dimensions are first reduced by PCA to this many (0: never).</param>
/// <param name="Seed">Seed of the initial embedding.</param>
public sealed record TsneOptions(double Perplexity = 30, int Iterations = 750, double EarlyExaggeration = 12, int PcaDimensions = 50, long Seed = 0);

/// <summary>
/// Exact t-SNE (van der Maaten and Hinton 2008) on tensors: O(N^2) memory, meant for the few
/// thousand sampled pixels of the feature-space plots.
/// </summary>
public static class Tsne
{
    /// <summary>Embeds [N, D] points into [N, 2], on the points' device.</summary>
    public static Tensor Embed(Tensor points, TsneOptions? options = null)
    {
        TorchRuntime.EnsureInitialized();
        options ??= new TsneOptions();
        var n = points.shape[0];
        if (points.dim() != 2 || n < 5) throw new ArgumentException($"t-SNE needs [N, D] points with N >= 5, got [{string.Join(", ", points.shape)}].");
        if (options.Perplexity <= 0 || options.Perplexity >= n) throw new ArgumentException($"perplexity must be in (0, N = {n}), got {options.Perplexity}.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        var x = points.to_type(ScalarType.Float64);
        x = x - x.mean(new long[] { 0 }, keepdim: true);
        if (options.PcaDimensions > 0 && x.shape[1] > options.PcaDimensions)
        {
            var (_, _, v) = linalg.svd(x, fullMatrices: false);
            x = x.mm(v[..options.PcaDimensions].t());
        }
        var p = JointProbabilities(x, options.Perplexity);
        var device = x.device;
        var eye = TorchSharp.torch.eye(n, dtype: ScalarType.Bool, device: device);

        // The start is drawn by a CPU generator and moved: the same embedding start on every device.
        using var gen = new Generator(0, device: CPU);
        gen.manual_seed(options.Seed);
        var y = randn(new[] { n, 2L }, ScalarType.Float64, generator: gen, device: CPU).to(device).mul(held.Of(1e-4));
        var update = zeros_like(y);
        var gains = ones_like(y);
        var learningRate = held.Of(Math.Max(n / options.EarlyExaggeration / 4, 50));
        var (earlyExaggeration, earlyMomentum, momentum) = (held.Of(options.EarlyExaggeration), held.Of(0.5), held.Of(0.8));
        var (four, minimumQ, gainDecay, gainGrowth, minimumGain) = (held.Of(4.0), held.Of(1e-12), held.Of(0.8), held.Of(0.2), held.Of(0.01));
        // The two N x N matrices of a step live in buffers allocated once: a fresh N x N allocation per step
        // (about ten of them) let glibc's heap grow by tens of MB per step, to 20 GB RSS for 550 points.
        var num = empty(new[] { n, n }, ScalarType.Float64, device: device);
        var w = empty(new[] { n, n }, ScalarType.Float64, device: device);
        for (var it = 0; it < options.Iterations; it++)
        {
            using var step = NewDisposeScope();
            var exaggeration = it < 250 ? earlyExaggeration : Scalars.One;
            var stepMomentum = it < 250 ? earlyMomentum : momentum;
            var sq = y.pow(Scalars.Two).sum(1);
            // num = 1 / (1 + |y_i - y_j|^2), zero diagonal
            num.addmm_(y, y.t(), beta: 0, alpha: -2).add_(sq.unsqueeze(1), Scalars.One).add_(sq.unsqueeze(0), Scalars.One).clamp_min_(Scalars.Zero)
               .add_(Scalars.One, Scalars.One).reciprocal_().masked_fill_(eye, Scalars.Zero);
            var total = num.sum();
            // w = (exaggeration * P - Q) * num with Q = max(num / total, 1e-12)
            w.copy_(num).div_(total).clamp_min_(minimumQ).neg_().add_(p, exaggeration).mul_(num);
            var grad = (w.sum(1, keepdim: true) * y - w.mm(y)).mul(four); // dC/dy_i
            // Adaptive gains as in the reference implementation.
            var sameSign = grad.gt(Scalars.Zero) == update.gt(Scalars.Zero);
            gains.copy_(where(sameSign, gains.mul(gainDecay), gains.add(gainGrowth, Scalars.One)).clamp_min(minimumGain));
            update.copy_(update.mul(stepMomentum) - gains.mul(learningRate) * grad);
            y.add_(update, Scalars.One);
        }
        return (y - y.mean(new long[] { 0 }, keepdim: true)).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Symmetric P with per-point Gaussian bandwidths found by bisection to match the perplexity.</summary>
    private static Tensor JointProbabilities(Tensor x, double perplexity)
    {
        var n = x.shape[0];
        using var held = new HeldScalars();
        var sq = x.pow(Scalars.Two).sum(1);
        var d = (sq.unsqueeze(1).add(sq.unsqueeze(0), Scalars.One) - x.mm(x.t()).mul(Scalars.Two)).clamp_min(Scalars.Zero);
        var eye = TorchSharp.torch.eye(n, dtype: ScalarType.Bool, device: x.device);
        var target = held.Of(Math.Log(perplexity));
        var (tiny, unbounded) = (held.Of(1e-300), held.Of(1e19));
        var lo = full(new[] { n, 1L }, held.Of(1e-20), ScalarType.Float64, device: x.device);
        var hi = full(new[] { n, 1L }, held.Of(1e20), ScalarType.Float64, device: x.device);
        var beta = ones(new[] { n, 1L }, ScalarType.Float64, device: x.device);
        Tensor conditional = null!;
        const int bisections = 64;
        for (var i = 0; i < bisections; i++)
        {
            // One scope per bisection step: only the bounds (and the last step's rows) outlive it.
            using var stepScope = NewDisposeScope();
            var logits = (-d * beta).masked_fill(eye, Scalars.NegativeInfinity);
            var rows = logits.softmax(1);
            var entropy = -(rows * rows.clamp_min(tiny).log()).sum(1, keepdim: true);
            var tooFlat = entropy.gt(target); // entropy too high: narrow the Gaussian (raise beta)
            var (newLo, newHi) = (where(tooFlat, beta, lo), where(tooFlat, hi, beta));
            var newBeta = where(newHi.ge(unbounded), beta.mul(Scalars.Two), newLo.add(newHi, Scalars.One).div(Scalars.Two));
            lo.Dispose(); hi.Dispose(); beta.Dispose();
            (lo, hi, beta) = (newLo.MoveToOuterDisposeScope(), newHi.MoveToOuterDisposeScope(), newBeta.MoveToOuterDisposeScope());
            if (i == bisections - 1) conditional = rows.MoveToOuterDisposeScope();
        }
        var p = conditional.add(conditional.t(), Scalars.One).div(held.Of(2.0 * n));
        return p.clamp_min(held.Of(1e-12));
    }
}
