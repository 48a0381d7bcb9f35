using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Losses;

/// <summary>
/// Per-class anchor budgets and hard-anchor sampling, after ContrastiveSeg (Wang et al. 2021, <c>_hard_anchor_sampling</c>):
/// a fixed number of anchors per image and class present, shrunk to fit a cap on the whole group, and optionally a share
/// of each class's anchors from the pixels the classifier gets wrong (the rest from those it gets right, either side filling
/// in when the other runs short). Unlike ContrastiveSeg, a class with fewer pixels than its budget keeps all of them instead
/// of being dropped, so small classes (the scenes' items) still take part.
/// </summary>
public static class AnchorSampling
{
    /// <summary>
    /// The anchors of each image of a group, as ascending pixel indices.
    /// </summary>
    /// <param name="labels">Per image: the label of every pixel.</param>
    /// <param name="valid">Per image: false for pixels with an ignored label (never chosen).</param>
    /// <param name="predicted">Per image: the classifier's predicted class of every pixel, or null (needed when <paramref name="hardFraction"/> &gt; 0).</param>
    /// <param name="perClass">Anchors per image and class present (&gt;= 1).</param>
    /// <param name="maxAnchors">Cap on the group's anchors (0: none): the per-class budget becomes <c>min(perClass, max(1, maxAnchors / pairs))</c>
    /// with <c>pairs</c> the (image, class) pairs present.</param>
    /// <param name="hardFraction">Share of each class's budget from mistaken pixels (0: uniform).</param>
    /// <param name="generator">The draws (the loss's CPU generator, checkpointed).</param>
    public static long[][] Choose(IReadOnlyList<long[]> labels, IReadOnlyList<bool[]> valid, IReadOnlyList<long[]>? predicted,
        int perClass, int maxAnchors, double hardFraction, Generator generator)
    {
        if (perClass < 1) throw new ArgumentException($"perClass must be >= 1, got {perClass}.", nameof(perClass));
        if (hardFraction > 0 && (predicted is null || predicted.Count != labels.Count))
            throw new ArgumentException("Hard anchors need the classifier's predictions of every image (the logits).", nameof(predicted));
        var pools = labels.Select((l, i) => ClassPools(l, valid[i])).ToList();
        var pairs = pools.Sum(p => p.Count);
        var budget = BudgetPerClass(perClass, maxAnchors, pairs);
        var result = new long[labels.Count][];
        for (var i = 0; i < labels.Count; i++)
        {
            var chosen = new List<long>();
            foreach (var (label, pixels) in pools[i])
            {
                if (hardFraction > 0)
                {
                    var guess = predicted![i];
                    var hard = pixels.Where(p => guess[p] != label).ToList();
                    var easy = pixels.Where(p => guess[p] == label).ToList();
                    var (takeHard, takeEasy) = Split(budget, hardFraction, hard.Count, easy.Count);
                    chosen.AddRange(Draw(hard, takeHard, generator));
                    chosen.AddRange(Draw(easy, takeEasy, generator));
                }
                else chosen.AddRange(Draw(pixels, Math.Min(budget, pixels.Count), generator));
            }
            chosen.Sort();
            result[i] = chosen.ToArray();
        }
        return result;
    }

    /// <summary>The anchors per (image, class) pair: <paramref name="perClass"/>, shrunk to fit <paramref name="maxAnchors"/> over <paramref name="pairs"/> pairs (at least 1).</summary>
    public static int BudgetPerClass(int perClass, int maxAnchors, int pairs) =>
        maxAnchors > 0 && pairs > 0 ? Math.Max(1, Math.Min(perClass, maxAnchors / pairs)) : perClass;

    /// <summary>
    /// How many of a class's <paramref name="budget"/> anchors come from its <paramref name="hard"/> (mistaken) and
    /// <paramref name="easy"/> pixels: <c>floor(budget x fraction)</c> hard, the rest easy; when one side has too few, the
    /// other fills in as far as it can (ContrastiveSeg's rule, for any fraction).
    /// </summary>
    public static (int Hard, int Easy) Split(int budget, double fraction, int hard, int easy)
    {
        var wantHard = (int)Math.Floor(budget * fraction + 1e-9);
        var takeHard = Math.Min(wantHard, hard);
        var takeEasy = Math.Min(budget - takeHard, easy);
        takeHard = Math.Min(budget - takeEasy, hard);
        return (takeHard, takeEasy);
    }

    /// <summary>Valid pixels by label, labels ascending.</summary>
    private static SortedDictionary<long, List<long>> ClassPools(long[] labels, bool[] valid)
    {
        var pools = new SortedDictionary<long, List<long>>();
        for (long p = 0; p < labels.Length; p++)
        {
            if (!valid[p]) continue;
            if (!pools.TryGetValue(labels[p], out var list)) pools[labels[p]] = list = [];
            list.Add(p);
        }
        return pools;
    }

    /// <summary><paramref name="take"/> of <paramref name="pool"/> without replacement (all of it without a draw when it has no more).</summary>
    private static IEnumerable<long> Draw(List<long> pool, int take, Generator generator)
    {
        if (take <= 0) return [];
        if (take >= pool.Count) return pool;
        // A CPU generator: the same draws on every device (the indices are moved to the features' device by the caller).
        using var order = randperm(pool.Count, generator: generator, device: CPU);
        return order.data<long>().Take(take).Select(k => pool[(int)k]).ToArray();
    }
}
