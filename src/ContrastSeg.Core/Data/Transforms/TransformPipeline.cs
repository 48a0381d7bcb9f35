namespace ContrastSeg.Data;

/// <summary>A sample after the transforms: normalised CHW floats and byte labels (255 = ignore) of one size.</summary>
/// <param name="Id">The sample's id.</param>
/// <param name="Width">Width after the transforms.</param>
/// <param name="Height">Height after the transforms.</param>
/// <param name="Image">[3, Height, Width] float32, normalised.</param>
/// <param name="Labels">[Height, Width] labels; all 255 for an unlabelled sample.</param>
public sealed record PreparedSample(string Id, int Width, int Height, float[] Image, byte[] Labels);

/// <summary>
/// A sequence of joint transforms followed by normalisation. Presets follow the paper's recipe:
/// <see cref="Contrastive"/> (scale, pad, crop, flip, SimCLR colour distortion), <see cref="FineTune"/>
/// (the same geometry, milder photometric jitter) and <see cref="Eval"/> (no randomness).
/// </summary>
public sealed class TransformPipeline
{
    /// <summary>Creates the pipeline; <paramref name="normalization"/> defaults to ImageNet statistics.</summary>
    public TransformPipeline(IEnumerable<IJointTransform> steps, Normalization? normalization = null)
    {
        ArgumentNullException.ThrowIfNull(steps);
        Steps = steps.ToArray();
        Normalization = normalization ?? Normalization.ImageNet;
    }

    /// <summary>The transforms, in order.</summary>
    public IReadOnlyList<IJointTransform> Steps { get; }

    /// <summary>The final normalisation.</summary>
    public Normalization Normalization { get; }

    /// <summary>
    /// Contrastive-stage augmentation: random scale [<paramref name="minScale"/>, <paramref name="maxScale"/>], pad to
    /// the crop (mean colour / 255), random <paramref name="crop"/> x <paramref name="crop"/> crop, horizontal flip (0.5),
    /// then SimCLR colour distortion of <paramref name="strength"/> and random grayscale (0.2).
    /// Strength 0 switches colour distortion off (the paper's distortion ablation).
    /// </summary>
    public static TransformPipeline Contrastive(int crop = 513, double strength = 1.0, double minScale = 0.5, double maxScale = 2.0)
    {
        var steps = Geometry(crop, minScale, maxScale);
        if (strength > 0)
        {
            steps.Add(ColorJitter.SimClr(strength));
            steps.Add(new RandomGrayscale(0.2));
        }
        return new TransformPipeline(steps);
    }

    /// <summary>Fine-tuning augmentation: the same geometry as <see cref="Contrastive"/>, then <see cref="ColorJitter.Mild"/>.</summary>
    public static TransformPipeline FineTune(int crop = 513, double minScale = 0.5, double maxScale = 2.0, bool colour = true)
    {
        var steps = Geometry(crop, minScale, maxScale);
        if (colour) steps.Add(ColorJitter.Mild());
        return new TransformPipeline(steps);
    }

    /// <summary>
    /// Evaluation: no randomness; when <paramref name="padWidth"/>/<paramref name="padHeight"/> are given, images are
    /// padded evenly on both sides to at least that size (mean colour / 255) so that a batch has one size.
    /// </summary>
    public static TransformPipeline Eval(int? padWidth = null, int? padHeight = null)
    {
        var steps = new List<IJointTransform>();
        if (padWidth is not null || padHeight is not null)
            steps.Add(new PadToSize(padWidth ?? 1, padHeight ?? padWidth ?? 1, Centre: true));
        return new TransformPipeline(steps);
    }

    private static List<IJointTransform> Geometry(int crop, double minScale, double maxScale)
    {
        if (crop < 1) throw new ArgumentException($"Crop size must be positive, got {crop}.");
        var steps = new List<IJointTransform>();
        if (minScale != 1.0 || maxScale != 1.0) steps.Add(new RandomScale(minScale, maxScale));
        steps.Add(new PadToSize(crop, crop));
        steps.Add(new RandomCrop(crop, crop));
        steps.Add(new RandomHorizontalFlip(0.5));
        return steps;
    }

    /// <summary>Runs the joint transforms (no normalisation).</summary>
    public JointSample Apply(JointSample sample, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        foreach (var step in Steps) sample = step.Apply(sample, rng);
        return sample;
    }

    /// <summary>Transforms and normalises one sample; unlabelled samples get all-255 labels.</summary>
    /// <exception cref="DatasetException">The label map's size differs from the image's (the message names the id).</exception>
    public PreparedSample Prepare(SegmentationSample sample, Random rng)
    {
        ArgumentNullException.ThrowIfNull(sample);
        if (sample.Labels is { } l && (l.Width != sample.Image.Width || l.Height != sample.Image.Height))
            throw new DatasetException(
                $"sample '{sample.Id}': label map is {l.Width}x{l.Height} but the image is {sample.Image.Width}x{sample.Image.Height}.");
        var done = Apply(new JointSample(sample.Image, sample.Labels), rng);
        var img = done.Image;
        byte[] labels;
        if (done.Labels is { } dl) labels = dl.Labels;
        else
        {
            labels = new byte[img.Width * img.Height];
            Array.Fill(labels, LabelMap.Ignore);
        }
        return new PreparedSample(sample.Id, img.Width, img.Height, Normalization.ToChw(img), labels);
    }
}
