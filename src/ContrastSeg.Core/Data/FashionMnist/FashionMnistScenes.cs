using System.Globalization;

namespace ContrastSeg.Data;

/// <summary>A split of the Fashion-MNIST scenes.</summary>
public enum SceneSplit
{
    /// <summary>Scenes of Fashion-MNIST training items.</summary>
    Train,

    /// <summary>Scenes of the even-position Fashion-MNIST test items.</summary>
    Val,

    /// <summary>Scenes of the odd-position Fashion-MNIST test items (disjoint from <see cref="Val"/>).</summary>
    Test,
}

/// <summary>How <see cref="FashionMnistScenes"/> composes its scenes.</summary>
public sealed record FashionMnistSceneOptions
{
    /// <summary>Which split (and so which Fashion-MNIST items) the scenes use.</summary>
    public SceneSplit Split { get; init; } = SceneSplit.Train;

    /// <summary>Canvas width in pixels.</summary>
    public int Width { get; init; } = 64;

    /// <summary>Canvas height in pixels.</summary>
    public int Height { get; init; } = 64;

    /// <summary>Fewest items per scene.</summary>
    public int MinItems { get; init; } = 2;

    /// <summary>Most items per scene.</summary>
    public int MaxItems { get; init; } = 4;

    /// <summary>Smallest item scale (1 = 28 px).</summary>
    public double MinScale { get; init; } = 0.6;

    /// <summary>Largest item scale.</summary>
    public double MaxScale { get; init; } = 1.6;

    /// <summary>Number of training scenes.</summary>
    public int TrainScenes { get; init; } = 2000;

    /// <summary>Number of validation scenes.</summary>
    public int ValScenes { get; init; } = 500;

    /// <summary>Number of test scenes.</summary>
    public int TestScenes { get; init; } = 500;

    /// <summary>Seed of the scene generator; scene i of a split depends only on (Seed, Split, i) and the items.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// A pixel belongs to an item where the item's ink (its grayscale value after scaling, 0..255) exceeds this.
    /// Default 26 (0.1 x 255): on the Fashion-MNIST test set, 0.2 x 255 would drop 13 % of the inked pixels
    /// (dark garments fall apart into fragments; a quarter of the items lose more than 15 %), 0.1 x 255 drops 7 %,
    /// while the faint halo of resampled edges (a few units) stays outside.
    /// </summary>
    public byte InkThreshold { get; init; } = 26;

    /// <summary>Scene count of <see cref="Split"/>.</summary>
    public int SceneCount => Split switch
    {
        SceneSplit.Train => TrainScenes,
        SceneSplit.Val => ValScenes,
        _ => TestScenes,
    };

    internal void Validate()
    {
        if (Width < 8 || Height < 8) throw new ArgumentException($"Scene canvas must be at least 8x8, got {Width}x{Height}.");
        if (MinItems < 0 || MaxItems < MinItems) throw new ArgumentException($"Bad item count range {MinItems}..{MaxItems}.");
        if (!(MinScale > 0) || MaxScale < MinScale) throw new ArgumentException($"Bad item scale range {MinScale}..{MaxScale}.");
        if (TrainScenes < 0 || ValScenes < 0 || TestScenes < 0) throw new ArgumentException("Scene counts must not be negative.");
    }
}

/// <summary>Where one item lies in a scene, in painting order (later items cover earlier ones).</summary>
/// <param name="ItemIndex">Index into the split's Fashion-MNIST items (<see cref="FashionMnistSource.Train"/> or <see cref="FashionMnistSource.Test"/>).</param>
/// <param name="Label">Scene label of the item: its Fashion-MNIST class + 1.</param>
/// <param name="X">Left column of the scaled item (may be negative: items can leave the canvas).</param>
/// <param name="Y">Top row of the scaled item.</param>
/// <param name="Size">Side of the scaled item in pixels.</param>
/// <param name="Tint">The item's colour.</param>
public readonly record struct ScenePlacement(int ItemIndex, byte Label, int X, int Y, int Size, Rgb Tint);

/// <summary>
/// Multi-object segmentation scenes composed from real Fashion-MNIST items: 2-4 items (by default) of random
/// class, scale, position and colour, painted in order over a textured background (smooth colour noise,
/// stripes, soft blobs, pixel noise). Labels: 0 background, 1..10 the Fashion-MNIST classes, where the
/// item's scaled ink exceeds <see cref="FashionMnistSceneOptions.InkThreshold"/>. Scene i is a pure
/// function of (seed, split, i) and the source's items: any thread may render any scene, in any order.
/// Ids: <c>train-000123</c>, <c>val-000012</c>, <c>test-000007</c>.
/// </summary>
public sealed class FashionMnistScenes : ISegmentationDataset
{
    /// <summary>Classes and palette: background + the ten Fashion-MNIST classes.</summary>
    public static DatasetInfo SceneInfo { get; } = new(
        "fashion-mnist-scenes",
        ["background", .. FashionMnistItems.ClassNames],
        [
            new(0, 0, 0), new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189),
            new(140, 86, 75), new(227, 119, 194), new(127, 127, 127), new(188, 189, 34), new(23, 190, 207),
        ]);

    private readonly Lazy<int[][]> _pools;
    private readonly string[] _ids;

    /// <summary>Scenes of <paramref name="options"/>' split from <paramref name="source"/> (default: <see cref="FashionMnistSource.Open"/>).</summary>
    public FashionMnistScenes(FashionMnistSceneOptions? options = null, FashionMnistSource? source = null)
    {
        Options = options ?? new FashionMnistSceneOptions();
        Options.Validate();
        Source = source ?? FashionMnistSource.Open();
        var prefix = Options.Split.ToString().ToLowerInvariant();
        _ids = Enumerable.Range(0, Options.SceneCount).Select(i => $"{prefix}-{i.ToString("D6", CultureInfo.InvariantCulture)}").ToArray();
        _pools = new(BuildPools, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Scenes of <paramref name="split"/> with otherwise the given (or default) options.</summary>
    public static FashionMnistScenes Create(SceneSplit split, FashionMnistSceneOptions? options = null, FashionMnistSource? source = null) =>
        new((options ?? new FashionMnistSceneOptions()) with { Split = split }, source);

    /// <summary>The options in force.</summary>
    public FashionMnistSceneOptions Options { get; }

    /// <summary>The Fashion-MNIST files the items come from (record its <see cref="FashionMnistSource.Description"/>).</summary>
    public FashionMnistSource Source { get; }

    /// <inheritdoc />
    public DatasetInfo Info => SceneInfo;

    /// <inheritdoc />
    public IReadOnlyList<string> Ids => _ids;

    /// <summary>The Fashion-MNIST items this split draws from (train items, or one half of the test items).</summary>
    public FashionMnistItems Items => Options.Split == SceneSplit.Train ? Source.Train : Source.Test;

    /// <summary>Indices into <see cref="Items"/> usable by this split, per class 0..9.</summary>
    public IReadOnlyList<IReadOnlyList<int>> ItemPool => _pools.Value;

    /// <inheritdoc />
    public SegmentationSample Load(int index)
    {
        CheckIndex(index);
        var (image, labels) = Render(index);
        return new SegmentationSample(_ids[index], image, labels);
    }

    /// <summary>The items of scene <paramref name="index"/> in painting order.</summary>
    public IReadOnlyList<ScenePlacement> Layout(int index)
    {
        CheckIndex(index);
        var o = Options;
        var rng = SeedHash.Random(o.Seed, (int)o.Split, index, 1);
        var pools = _pools.Value;
        var count = rng.Next(o.MinItems, o.MaxItems + 1);
        var items = new ScenePlacement[count];
        for (var k = 0; k < count; k++)
        {
            var cls = rng.Next(pools.Length);
            var pool = pools[cls];
            var item = pool[rng.Next(pool.Length)];
            var scale = o.MinScale + rng.NextDouble() * (o.MaxScale - o.MinScale);
            var size = Math.Max(4, (int)Math.Round(FashionMnistItems.Side * scale));
            // At least three quarters of the item's box stays on the canvas along each axis (when it fits).
            var x = Position(rng, size, o.Width);
            var y = Position(rng, size, o.Height);
            var tint = Hsv(rng.NextDouble(), 0.45 + 0.55 * rng.NextDouble(), 0.45 + 0.55 * rng.NextDouble());
            items[k] = new ScenePlacement(item, (byte)(cls + 1), x, y, size, tint);
        }
        return items;
    }

    private static int Position(Random rng, int size, int canvas)
    {
        var lo = -size / 4;
        var hi = canvas - size + size / 4;
        return hi <= lo ? (canvas - size) / 2 : rng.Next(lo, hi + 1);
    }

    private (RgbImage, LabelMap) Render(int index)
    {
        var o = Options;
        int w = o.Width, h = o.Height;
        var canvas = Background(SeedHash.Random(o.Seed, (int)o.Split, index, 2), w, h);
        var labels = new byte[w * h];
        var items = Items;
        float t = o.InkThreshold;
        foreach (var p in Layout(index))
        {
            var ink = Resample.Bilinear(items.Image(p.ItemIndex), FashionMnistItems.Side, FashionMnistItems.Side, 1, p.Size, p.Size);
            for (var v = Math.Max(0, -p.Y); v < p.Size && p.Y + v < h; v++)
            {
                for (var u = Math.Max(0, -p.X); u < p.Size && p.X + u < w; u++)
                {
                    var a = ink[v * p.Size + u];
                    if (a == 0) continue;
                    var pix = (p.Y + v) * w + p.X + u;
                    if (a > o.InkThreshold) labels[pix] = p.Label;
                    // Opacity ramps from 0 at half the threshold to 1 at 1.5x the threshold: the visible
                    // edge is where the label changes. Shade keeps the item's own texture.
                    var alpha = Math.Clamp((a - 0.5f * t) / Math.Max(1f, t), 0f, 1f);
                    if (alpha <= 0) continue;
                    var shade = 0.35f + 0.65f * a / 255f;
                    Blend(canvas, pix * 3, p.Tint.R * shade, p.Tint.G * shade, p.Tint.B * shade, alpha);
                }
            }
        }
        var bytes = new byte[w * h * 3];
        for (var i = 0; i < bytes.Length; i++) bytes[i] = (byte)Math.Clamp((int)(canvas[i] + 0.5f), 0, 255);
        return (new RgbImage(w, h, bytes), new LabelMap(w, h, labels));
    }

    private static void Blend(float[] canvas, int at, float r, float g, float b, float alpha)
    {
        canvas[at] += (r - canvas[at]) * alpha;
        canvas[at + 1] += (g - canvas[at + 1]) * alpha;
        canvas[at + 2] += (b - canvas[at + 2]) * alpha;
    }

    /// <summary>Smooth two-colour noise, then optional stripes, soft blobs and pixel noise; RGB floats 0..255.</summary>
    private static float[] Background(Random rng, int w, int h)
    {
        var c1 = RandomColour(rng);
        var c2 = RandomColour(rng);
        var cell = 8 + rng.Next(12);
        int gw = w / cell + 2, gh = h / cell + 2;
        var grid = new float[gw * gh];
        for (var i = 0; i < grid.Length; i++) grid[i] = (float)rng.NextDouble();

        var px = new float[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            var gy = (float)y / cell;
            int iy = (int)gy;
            var fy = Smooth(gy - iy);
            for (var x = 0; x < w; x++)
            {
                var gx = (float)x / cell;
                int ix = (int)gx;
                var fx = Smooth(gx - ix);
                var top = grid[iy * gw + ix] + (grid[iy * gw + ix + 1] - grid[iy * gw + ix]) * fx;
                var bottom = grid[(iy + 1) * gw + ix] + (grid[(iy + 1) * gw + ix + 1] - grid[(iy + 1) * gw + ix]) * fx;
                var n = top + (bottom - top) * fy;
                var o = (y * w + x) * 3;
                px[o] = c1.R + (c2.R - c1.R) * n;
                px[o + 1] = c1.G + (c2.G - c1.G) * n;
                px[o + 2] = c1.B + (c2.B - c1.B) * n;
            }
        }

        if (rng.NextDouble() < 0.6)
        {
            var c = RandomColour(rng);
            var angle = rng.NextDouble() * Math.PI;
            var period = 5 + rng.NextDouble() * 15;
            var phase = rng.NextDouble() * 2 * Math.PI;
            var strength = (float)(0.2 + 0.4 * rng.NextDouble());
            double cx = Math.Cos(angle), sy = Math.Sin(angle);
            for (var y = 0; y < h; y++)
                for (var x = 0; x < w; x++)
                {
                    var s = 0.5 + 0.5 * Math.Sin(2 * Math.PI * (x * cx + y * sy) / period + phase);
                    Blend(px, (y * w + x) * 3, c.R, c.G, c.B, strength * (float)s);
                }
        }

        var blobs = rng.Next(4);
        for (var k = 0; k < blobs; k++)
        {
            var c = RandomColour(rng);
            double bx = rng.NextDouble() * w, by = rng.NextDouble() * h;
            double rx = 4 + rng.NextDouble() * 12, ry = 4 + rng.NextDouble() * 12;
            var opacity = (float)(0.4 + 0.5 * rng.NextDouble());
            for (var y = 0; y < h; y++)
                for (var x = 0; x < w; x++)
                {
                    double dx = (x - bx) / rx, dy = (y - by) / ry;
                    var d2 = dx * dx + dy * dy;
                    if (d2 > 9) continue;
                    Blend(px, (y * w + x) * 3, c.R, c.G, c.B, opacity * (float)Math.Exp(-d2));
                }
        }

        var noise = (float)(4 + 10 * rng.NextDouble());
        for (var i = 0; i < px.Length; i++) px[i] += noise * (float)(rng.NextDouble() + rng.NextDouble() - 1);
        return px;
    }

    private static float Smooth(float f) => f * f * (3 - 2 * f);

    private static Rgb RandomColour(Random rng) => new((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));

    private static Rgb Hsv(double hue, double sat, double val)
    {
        var (r, g, b) = ColorSpace.HsvToRgb((float)hue, (float)sat, (float)val);
        return new Rgb((byte)Math.Round(r * 255), (byte)Math.Round(g * 255), (byte)Math.Round(b * 255));
    }

    private int[][] BuildPools()
    {
        var items = Items;
        var pools = new List<int>[FashionMnistItems.ClassNames.Count];
        for (var c = 0; c < pools.Length; c++) pools[c] = new List<int>();
        for (var i = 0; i < items.Count; i++)
        {
            var use = Options.Split switch
            {
                SceneSplit.Train => true,
                SceneSplit.Val => i % 2 == 0,
                _ => i % 2 == 1,
            };
            if (use) pools[items.Labels[i]].Add(i);
        }
        for (var c = 0; c < pools.Length; c++)
            if (pools[c].Count == 0)
                throw new DatasetException($"no Fashion-MNIST item of class {c} ({FashionMnistItems.ClassNames[c]}) for the {Options.Split} scenes.", items.Origin);
        return pools.Select(p => p.ToArray()).ToArray();
    }

    private void CheckIndex(int index)
    {
        if ((uint)index >= (uint)_ids.Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"scene {index} of {_ids.Length} ({Options.Split})");
    }
}
