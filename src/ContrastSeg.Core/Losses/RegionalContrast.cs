using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Losses;

/// <summary>
/// Which pixels the regional contrast of one batch reads: per class present, its queries and each query's negative keys
/// (indices into the batch's valid pixels), drawn by <see cref="RegionalContrast.Sample"/>.
/// </summary>
/// <param name="Classes">The classes present, ascending.</param>
/// <param name="Queries">Per class: [Q] query rows, or null when the class has no hard pixel (it still counts in the mean, as in ReCo).</param>
/// <param name="Negatives">Per class: [Q, K] negative key rows (pixels of other classes), or null with <paramref name="Queries"/>.</param>
public sealed record RegionalSample(long[] Classes, Tensor?[] Queries, Tensor?[] Negatives);

/// <summary>
/// ReCo's regional contrast (Liu et al., ICLR 2022, <c>compute_reco_loss</c>) on a batch's valid pixels: for each class c
/// present, Q queries drawn (with replacement) from its hard pixels, those whose predicted probability of c is below a
/// threshold; one positive key, the class mean of c; K negative keys per query, pixels of other classes, each class drawn
/// with probability <c>softmax_j(cos(mean_c, mean_j) / tau)</c> and a pixel uniformly within it. The loss of a query is
/// <c>-log softmax(cos(q, keys) / tau)[positive]</c>; the result is the sum over classes of their mean over queries,
/// divided by the number of classes present. Keys carry no gradient (ReCo builds them under no_grad); a batch with fewer
/// than two classes gives 0.
/// </summary>
public static class RegionalContrast
{
    /// <summary>
    /// Draws the queries and negative keys. Every draw is a uniform number from <paramref name="generator"/> (a CPU
    /// generator, checkpointed): per class, Q for the queries, then 2 x Q x K for the negatives' classes and pixels.
    /// </summary>
    /// <param name="x">[N, D] embeddings of the valid pixels (read without gradient).</param>
    /// <param name="labels">[N] their labels.</param>
    /// <param name="ownProbability">[N] predicted probability of each pixel's own label, or null (every pixel may be a query).</param>
    /// <param name="threshold">Queries only where <paramref name="ownProbability"/> is below this (0 or no probabilities: every pixel).</param>
    /// <param name="queries">Q, queries per class.</param>
    /// <param name="negatives">K, negative keys per query.</param>
    /// <param name="temperature">tau of the class-similarity softmax.</param>
    /// <param name="generator">The draws.</param>
    public static RegionalSample Sample(Tensor x, Tensor labels, Tensor? ownProbability, double threshold, int queries, int negatives,
        double temperature, Generator generator)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var y = labels.cpu().data<long>().ToArray();
        var hardProbability = threshold > 0 ? ownProbability?.to_type(ScalarType.Float64).cpu().data<double>().ToArray() : null;
        var classes = y.Distinct().OrderBy(c => c).ToArray();
        var rows = classes.Select(c => Enumerable.Range(0, y.Length).Where(p => y[p] == c).Select(p => (long)p).ToArray()).ToArray();
        var queryRows = new Tensor?[classes.Length];
        var negativeRows = new Tensor?[classes.Length];
        if (classes.Length < 2) return new RegionalSample(classes, queryRows, negativeRows);

        var means = ClassMeans(x.detach(), rows);
        var similarity = Unit(means).mm(Unit(means).t()).to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        for (var i = 0; i < classes.Length; i++)
        {
            var hard = hardProbability is null ? rows[i] : rows[i].Where(p => hardProbability[p] < threshold).ToArray();
            if (hard.Length == 0) continue;
            var u = Uniform(queries, generator);
            var q = new long[queries];
            for (var k = 0; k < queries; k++) q[k] = hard[Pick(u[k], hard.Length)];

            // The other classes in ReCo's order (i+1, ..., last, 0, ..., i-1) and their softmax weights.
            var others = Enumerable.Range(1, classes.Length - 1).Select(k => (i + k) % classes.Length).ToArray();
            var logits = others.Select(j => similarity[i * classes.Length + j] / temperature).ToArray();
            var top = logits.Max();
            var weights = logits.Select(l => Math.Exp(l - top)).ToArray();
            var cumulative = new double[weights.Length];
            double sum = 0;
            for (var j = 0; j < weights.Length; j++) cumulative[j] = sum += weights[j];
            var draws = Uniform(2 * queries * negatives, generator);
            var n = new long[queries * negatives];
            for (var k = 0; k < n.Length; k++)
            {
                var target = draws[2 * k] * sum;
                var j = 0;
                while (j < cumulative.Length - 1 && target >= cumulative[j]) j++;
                var pool = rows[others[j]];
                n[k] = pool[Pick(draws[2 * k + 1], pool.Length)];
            }
            queryRows[i] = tensor(q, ScalarType.Int64, device: x.device).MoveToOuterDisposeScope();
            negativeRows[i] = tensor(n, new long[] { queries, negatives }, ScalarType.Int64, device: x.device).MoveToOuterDisposeScope();
        }
        return new RegionalSample(classes, queryRows, negativeRows);
    }

    /// <summary>The loss of <paramref name="sample"/> on <paramref name="x"/> ([N, D], gradients flow to the queries' rows).</summary>
    public static Tensor Loss(Tensor x, Tensor labels, RegionalSample sample, double temperature)
    {
        using var scope = NewDisposeScope();
        using var held = new HeldScalars();
        if (sample.Classes.Length < 2) return x.sum().mul(Scalars.Zero).MoveToOuterDisposeScope(); // nothing to contrast; keeps the graph
        var y = labels.cpu().data<long>().ToArray();
        var rows = sample.Classes.Select(c => Enumerable.Range(0, y.Length).Where(p => y[p] == c).Select(p => (long)p).ToArray()).ToArray();
        var keys = Unit(x.detach());
        var means = Unit(ClassMeans(x.detach(), rows));
        var inverseTemperature = held.Of(1.0 / temperature);
        Tensor? total = null;
        for (var i = 0; i < sample.Classes.Length; i++)
        {
            if (sample.Queries[i] is not { } q || sample.Negatives[i] is not { } n) continue;
            var queries = Unit(x.index_select(0, q));                                           // [Q, D]
            var positive = queries.mm(means[i].unsqueeze(1)).squeeze(1);                         // [Q]
            // Similarities to every pixel, then the drawn ones: O(Q x N) memory for backward instead of a [Q, K, D] copy of the keys.
            var negative = queries.mm(keys.t()).gather(1, n);                                   // [Q, K]
            var logits = cat(new[] { positive.unsqueeze(1), negative }, 1).mul(inverseTemperature);
            var perQuery = logits.logsumexp(1).add(logits.select(1, 0), Scalars.MinusOne);
            var mean = perQuery.mean();
            total = total is null ? mean : total.add(mean, Scalars.One);
        }
        var loss = total is null ? x.sum().mul(Scalars.Zero) : total.div(held.Of((double)sample.Classes.Length));
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Rows divided by their norm (at least 1e-8, as cosine similarity clamps).</summary>
    private static Tensor Unit(Tensor rows)
    {
        using var held = new HeldScalars();
        return rows.div(rows.norm(1, keepdim: true).clamp_min(held.Of(1e-8)));
    }

    private static Tensor ClassMeans(Tensor x, long[][] rows) =>
        stack(rows.Select(r => x.index_select(0, tensor(r, ScalarType.Int64, device: x.device)).mean(new long[] { 0 })).ToArray());

    private static double[] Uniform(int count, Generator generator)
    {
        // A CPU generator: the same draws on every device.
        using var u = rand(new long[] { count }, ScalarType.Float64, device: CPU, generator: generator);
        return u.data<double>().ToArray();
    }

    private static int Pick(double u, int count) => Math.Min(count - 1, (int)(u * count));
}
