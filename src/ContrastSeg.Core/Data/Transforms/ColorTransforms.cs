namespace ContrastSeg.Data;

/// <summary>
/// Random brightness, contrast, saturation and hue changes of the image (labels untouched), with the
/// semantics of torchvision's ColorJitter: brightness multiplies by f in [1-b, 1+b], contrast blends with
/// the mean gray by f in [1-c, 1+c], saturation blends with each pixel's gray by f in [1-s, 1+s], hue shifts
/// by d in [-h, h] of a full turn; values are clipped to [0, 1] after each step. The whole jitter happens
/// with <paramref name="Probability"/>, its four steps in a random order when <paramref name="RandomOrder"/>.
/// </summary>
/// <param name="Brightness">b: the brightness factor range half-width.</param>
/// <param name="Contrast">c: the contrast factor range half-width.</param>
/// <param name="Saturation">s: the saturation factor range half-width.</param>
/// <param name="Hue">h: the hue shift range, at most 0.5.</param>
/// <param name="Probability">Chance that the jitter is applied at all.</param>
/// <param name="RandomOrder">Shuffle the order of the four steps per image (SimCLR) or keep it fixed.</param>
public sealed record ColorJitter(double Brightness, double Contrast, double Saturation, double Hue,
    double Probability = 1.0, bool RandomOrder = true) : IJointTransform
{
    /// <summary>
    /// SimCLR's colour distortion of strength <paramref name="strength"/> (Chen et al. 2020): brightness,
    /// contrast and saturation 0.8s, hue 0.2s, applied in random order with probability 0.8. Follow it with
    /// <see cref="RandomGrayscale"/>(0.2) for the full SimCLR distortion.
    /// </summary>
    public static ColorJitter SimClr(double strength = 1.0) =>
        new(0.8 * strength, 0.8 * strength, 0.8 * strength, Math.Min(0.5, 0.2 * strength), Probability: 0.8, RandomOrder: true);

    /// <summary>A milder jitter for fine-tuning: brightness, contrast, saturation 0.25, hue 0.04, always, fixed order.</summary>
    public static ColorJitter Mild() => new(0.25, 0.25, 0.25, 0.04, Probability: 1.0, RandomOrder: false);

    /// <inheritdoc />
    public JointSample Apply(JointSample sample, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (rng.NextDouble() >= Probability) return sample;
        Span<int> order = [0, 1, 2, 3];
        if (RandomOrder) rng.Shuffle(order);
        // Draw every factor up front, in a fixed sequence, so the order shuffle does not change them.
        var b = Factor(rng, Brightness);
        var c = Factor(rng, Contrast);
        var s = Factor(rng, Saturation);
        var h = Hue > 0 ? (float)((rng.NextDouble() * 2 - 1) * Hue) : 0f;

        var img = sample.Image;
        var px = ToFloat(img.Pixels);
        foreach (var step in order)
        {
            switch (step)
            {
                case 0 when b != 1f: Scale(px, b); break;
                case 1 when c != 1f: AdjustContrast(px, c); break;
                case 2 when s != 1f: AdjustSaturation(px, s); break;
                case 3 when h != 0f: ShiftHue(px, h); break;
            }
        }
        return sample with { Image = new RgbImage(img.Width, img.Height, ToBytes(px)) };
    }

    private static float Factor(Random rng, double range) =>
        range > 0 ? (float)(Math.Max(0, 1 - range) + rng.NextDouble() * (1 + range - Math.Max(0, 1 - range))) : 1f;

    internal static float[] ToFloat(byte[] bytes)
    {
        var f = new float[bytes.Length];
        for (var i = 0; i < f.Length; i++) f[i] = bytes[i] / 255f;
        return f;
    }

    internal static byte[] ToBytes(float[] px)
    {
        var b = new byte[px.Length];
        for (var i = 0; i < b.Length; i++) b[i] = (byte)Math.Clamp((int)(px[i] * 255f + 0.5f), 0, 255);
        return b;
    }

    internal static float Gray(float r, float g, float b) => 0.299f * r + 0.587f * g + 0.114f * b;

    private static void Scale(float[] px, float f)
    {
        for (var i = 0; i < px.Length; i++) px[i] = Math.Clamp(px[i] * f, 0f, 1f);
    }

    private static void AdjustContrast(float[] px, float f)
    {
        double sum = 0;
        for (var i = 0; i < px.Length; i += 3) sum += Gray(px[i], px[i + 1], px[i + 2]);
        var mean = (float)(sum / (px.Length / 3));
        for (var i = 0; i < px.Length; i++) px[i] = Math.Clamp(mean + (px[i] - mean) * f, 0f, 1f);
    }

    private static void AdjustSaturation(float[] px, float f)
    {
        for (var i = 0; i < px.Length; i += 3)
        {
            var g = Gray(px[i], px[i + 1], px[i + 2]);
            for (var c = 0; c < 3; c++) px[i + c] = Math.Clamp(g + (px[i + c] - g) * f, 0f, 1f);
        }
    }

    private static void ShiftHue(float[] px, float d)
    {
        for (var i = 0; i < px.Length; i += 3)
        {
            var (h, s, v) = ColorSpace.RgbToHsv(px[i], px[i + 1], px[i + 2]);
            var (r, g, b) = ColorSpace.HsvToRgb(h + d, s, v);
            px[i] = r;
            px[i + 1] = g;
            px[i + 2] = b;
        }
    }
}

/// <summary>Replaces the image by its gray version (ITU-R 601 luma in all three channels) with <paramref name="Probability"/>.</summary>
/// <param name="Probability">Chance of graying (SimCLR: 0.2).</param>
public sealed record RandomGrayscale(double Probability = 0.2) : IJointTransform
{
    /// <inheritdoc />
    public JointSample Apply(JointSample sample, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (rng.NextDouble() >= Probability) return sample;
        var src = sample.Image.Pixels;
        var px = new byte[src.Length];
        for (var i = 0; i < px.Length; i += 3)
        {
            var g = (byte)Math.Clamp((int)(ColorJitter.Gray(src[i], src[i + 1], src[i + 2]) + 0.5f), 0, 255);
            px[i] = px[i + 1] = px[i + 2] = g;
        }
        return sample with { Image = new RgbImage(sample.Image.Width, sample.Image.Height, px) };
    }
}

/// <summary>Per-channel normalisation of 8-bit RGB to float: (x / 255 - mean) / std, laid out CHW.</summary>
/// <param name="Mean">Channel means in [0, 1] (R, G, B).</param>
/// <param name="Std">Channel standard deviations.</param>
public sealed record Normalization(IReadOnlyList<float> Mean, IReadOnlyList<float> Std)
{
    /// <summary>ImageNet statistics: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).</summary>
    public static Normalization ImageNet { get; } = new([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>The ImageNet mean as an 8-bit colour (124, 116, 104): padding with it normalises to ~0.</summary>
    public static Rgb ImageNetMeanColour { get; } = new(124, 116, 104);

    /// <summary>The image as normalised float32, channel-major: [3, H, W] flattened.</summary>
    public float[] ToChw(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var dst = new float[image.Pixels.Length];
        WriteChw(image, dst);
        return dst;
    }

    /// <summary>Writes the normalised [3, H, W] floats of <paramref name="image"/> into <paramref name="destination"/>.</summary>
    public void WriteChw(RgbImage image, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (Mean.Count != 3 || Std.Count != 3) throw new ArgumentException("Normalization needs 3 means and 3 standard deviations.");
        var plane = image.Width * image.Height;
        if (destination.Length < 3 * plane) throw new ArgumentException($"Destination holds {destination.Length} floats, {3 * plane} needed.");
        var src = image.Pixels;
        for (var c = 0; c < 3; c++)
        {
            var scale = 1f / (255f * Std[c]);
            var shift = Mean[c] / Std[c];
            var d = destination.Slice(c * plane, plane);
            for (var i = 0; i < plane; i++) d[i] = src[3 * i + c] * scale - shift;
        }
    }
}
