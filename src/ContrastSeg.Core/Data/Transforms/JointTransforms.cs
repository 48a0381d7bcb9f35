namespace ContrastSeg.Data;

/// <summary>An image and its label map (null for an unlabelled image), as they pass through the transforms.</summary>
/// <param name="Image">The image.</param>
/// <param name="Labels">Its labels, the same size as the image, or null.</param>
public readonly record struct JointSample(RgbImage Image, LabelMap? Labels);

/// <summary>
/// A transform of an image and its labels together, drawing its randomness only from the
/// <see cref="Random"/> it is given, so results depend only on that generator's seed.
/// Geometric transforms move labels with the image; photometric ones leave labels untouched.
/// </summary>
public interface IJointTransform
{
    /// <summary>Applies the transform; never mutates its input.</summary>
    JointSample Apply(JointSample sample, Random rng);
}

/// <summary>Random isotropic rescaling: bilinear for the image, nearest neighbour for the labels.</summary>
/// <param name="MinScale">Smallest factor (the paper's recipe: 0.5).</param>
/// <param name="MaxScale">Largest factor (2.0).</param>
public sealed record RandomScale(double MinScale = 0.5, double MaxScale = 2.0) : IJointTransform
{
    /// <inheritdoc />
    public JointSample Apply(JointSample sample, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(MinScale > 0) || MaxScale < MinScale) throw new ArgumentException($"Bad scale range {MinScale}..{MaxScale}.");
        var s = MinScale + rng.NextDouble() * (MaxScale - MinScale);
        var img = sample.Image;
        var w = Math.Max(1, (int)Math.Round(img.Width * s));
        var h = Math.Max(1, (int)Math.Round(img.Height * s));
        if (w == img.Width && h == img.Height) return sample;
        return new JointSample(Resample.Bilinear(img, w, h), sample.Labels is { } l ? Resample.Nearest(l, w, h) : null);
    }
}

/// <summary>
/// Pads to at least <paramref name="Width"/> x <paramref name="Height"/>: the image with <paramref name="Fill"/>
/// (by default the ImageNet mean colour, which normalises to ~0), the labels with <paramref name="LabelFill"/>
/// (255, ignored). Padding goes right and bottom, or evenly on both sides when <paramref name="Centre"/>.
/// </summary>
/// <param name="Width">Minimum width.</param>
/// <param name="Height">Minimum height.</param>
/// <param name="Fill">Image fill colour; null = <see cref="Normalization.ImageNetMeanColour"/>.</param>
/// <param name="LabelFill">Label of padded pixels.</param>
/// <param name="Centre">Pad both sides evenly instead of right/bottom.</param>
public sealed record PadToSize(int Width, int Height, Rgb? Fill = null, byte LabelFill = LabelMap.Ignore, bool Centre = false) : IJointTransform
{
    /// <inheritdoc />
    public JointSample Apply(JointSample sample, Random rng)
    {
        var img = sample.Image;
        var w = Math.Max(Width, img.Width);
        var h = Math.Max(Height, img.Height);
        if (w == img.Width && h == img.Height) return sample;
        var ox = Centre ? (w - img.Width) / 2 : 0;
        var oy = Centre ? (h - img.Height) / 2 : 0;
        var fill = Fill ?? Normalization.ImageNetMeanColour;

        var px = new byte[w * h * 3];
        for (var i = 0; i < w * h; i++)
        {
            px[3 * i] = fill.R;
            px[3 * i + 1] = fill.G;
            px[3 * i + 2] = fill.B;
        }
        for (var y = 0; y < img.Height; y++)
            img.Pixels.AsSpan(y * img.Width * 3, img.Width * 3).CopyTo(px.AsSpan(((oy + y) * w + ox) * 3));

        LabelMap? labels = null;
        if (sample.Labels is { } l)
        {
            var lb = new byte[w * h];
            Array.Fill(lb, LabelFill);
            for (var y = 0; y < l.Height; y++)
                l.Labels.AsSpan(y * l.Width, l.Width).CopyTo(lb.AsSpan((oy + y) * w + ox));
            labels = new LabelMap(w, h, lb);
        }
        return new JointSample(new RgbImage(w, h, px), labels);
    }
}

/// <summary>A crop of exactly <paramref name="Width"/> x <paramref name="Height"/> at a uniformly random offset (pad first).</summary>
/// <param name="Width">Crop width.</param>
/// <param name="Height">Crop height.</param>
public sealed record RandomCrop(int Width, int Height) : IJointTransform
{
    /// <inheritdoc />
    public JointSample Apply(JointSample sample, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var img = sample.Image;
        if (img.Width < Width || img.Height < Height)
            throw new ArgumentException($"Cannot crop {Width}x{Height} from a {img.Width}x{img.Height} image; put a PadToSize before the crop.");
        var x = rng.Next(img.Width - Width + 1);
        var y = rng.Next(img.Height - Height + 1);
        return Crop(sample, x, y, Width, Height);
    }

    /// <summary>The <paramref name="w"/> x <paramref name="h"/> window at (<paramref name="x"/>, <paramref name="y"/>) of image and labels.</summary>
    public static JointSample Crop(JointSample sample, int x, int y, int w, int h)
    {
        var img = sample.Image;
        if (x == 0 && y == 0 && w == img.Width && h == img.Height) return sample;
        var px = new byte[w * h * 3];
        for (var r = 0; r < h; r++)
            img.Pixels.AsSpan(((y + r) * img.Width + x) * 3, w * 3).CopyTo(px.AsSpan(r * w * 3));
        LabelMap? labels = null;
        if (sample.Labels is { } l)
        {
            var lb = new byte[w * h];
            for (var r = 0; r < h; r++)
                l.Labels.AsSpan((y + r) * l.Width + x, w).CopyTo(lb.AsSpan(r * w));
            labels = new LabelMap(w, h, lb);
        }
        return new JointSample(new RgbImage(w, h, px), labels);
    }
}

/// <summary>Mirrors image and labels left-right with probability <paramref name="Probability"/>.</summary>
/// <param name="Probability">Chance of a flip (0.5).</param>
public sealed record RandomHorizontalFlip(double Probability = 0.5) : IJointTransform
{
    /// <inheritdoc />
    public JointSample Apply(JointSample sample, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        return rng.NextDouble() < Probability ? Flip(sample) : sample;
    }

    /// <summary>The mirrored image and labels.</summary>
    public static JointSample Flip(JointSample sample)
    {
        var img = sample.Image;
        int w = img.Width, h = img.Height;
        var px = new byte[img.Pixels.Length];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var s = (y * w + x) * 3;
                var d = (y * w + w - 1 - x) * 3;
                px[d] = img.Pixels[s];
                px[d + 1] = img.Pixels[s + 1];
                px[d + 2] = img.Pixels[s + 2];
            }
        LabelMap? labels = null;
        if (sample.Labels is { } l)
        {
            var lb = new byte[l.Labels.Length];
            for (var y = 0; y < l.Height; y++)
                for (var x = 0; x < l.Width; x++)
                    lb[y * l.Width + l.Width - 1 - x] = l.Labels[y * l.Width + x];
            labels = new LabelMap(l.Width, l.Height, lb);
        }
        return new JointSample(new RgbImage(w, h, px), labels);
    }
}
