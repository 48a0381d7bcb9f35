using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

/// <summary>
/// The paper's loss of one group written the plain way (float64, the released code's exponentials and per-positive
/// denominators, the full anchor x key matrix, autograd for gradients), with keys that are not anchors (a memory's entries,
/// view -1: every anchor's negatives). The oracle of the peer options' tests; independent of the blockwise kernel.
/// </summary>
internal static class PeerOracle
{
    /// <summary>One group's pixels: rows of an embeddings tensor, their labels and view tags.</summary>
    public sealed record Pixels(Tensor Rows, long[] Labels, long[] Views);

    /// <summary>
    /// The mean over anchors of the mean over positives of <c>-log(exp(s_pq) / (exp(s_pq) + sum_N exp(s_pk)))</c>, anchors
    /// being <paramref name="anchors"/> (normalised here), keys the anchors plus <paramref name="memory"/> (unit rows).
    /// </summary>
    public static Tensor GroupLoss(Pixels anchors, Tensor? memory, long[] memoryLabels, bool negativesFromOwnView, double temperature)
    {
        var x = anchors.Rows.to_type(ScalarType.Float64);
        x = x / x.norm(1, keepdim: true);
        var keys = memory is null ? x : cat(new[] { x, memory.to_type(ScalarType.Float64) });
        var keyLabels = anchors.Labels.Concat(memoryLabels).ToArray();
        var keyViews = anchors.Views.Concat(memoryLabels.Select(_ => -1L)).ToArray();
        var s = x.mm(keys.t()) / temperature;
        var a = x.shape[0];
        var n = keys.shape[0];
        var positive = new double[a * n];
        var negative = new double[a * n];
        for (var p = 0; p < a; p++)
            for (var k = 0; k < n; k++)
            {
                var same = anchors.Labels[p] == keyLabels[k];
                positive[p * n + k] = same ? 1 : 0;
                negative[p * n + k] = !same && (!negativesFromOwnView || keyViews[k] == -1 || keyViews[k] == anchors.Views[p]) ? 1 : 0;
            }
        var pos = tensor(positive).reshape(a, n);
        var neg = tensor(negative).reshape(a, n);
        var e = s.exp();
        var negSum = (e * neg).sum(1, keepdim: true);
        var l = -(e / (e + negSum)).log();
        var perAnchor = (l * pos).sum(1) / pos.sum(1);
        return perAnchor.mean();
    }

    /// <summary>The valid pixels of image <paramref name="item"/> (or those of <paramref name="rows"/>) of a [B, D, h, w] map as a group part.</summary>
    public static Pixels Part(Tensor embeddings, Tensor labels, long item, long view, long[]? rows = null, long ignore = 255)
    {
        var flat = embeddings[item].flatten(1).t();                       // [P, D]
        var y = labels[item].flatten().data<long>().ToArray();
        var chosen = (rows ?? Enumerable.Range(0, y.Length).Select(i => (long)i).ToArray()).Where(p => y[p] != ignore).ToArray();
        return new Pixels(flat.index_select(0, tensor(chosen)), chosen.Select(p => y[p]).ToArray(), chosen.Select(_ => view).ToArray());
    }

    /// <summary>Parts concatenated into one group.</summary>
    public static Pixels Join(params Pixels[] parts) =>
        new(cat(parts.Select(p => p.Rows).ToArray()), parts.SelectMany(p => p.Labels).ToArray(), parts.SelectMany(p => p.Views).ToArray());
}
