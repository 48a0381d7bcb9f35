namespace ContrastSeg.Data;

/// <summary>Turns label maps into colour images for previews and figures.</summary>
public static class LabelColouring
{
    /// <summary>The colour of the ignore label in previews (VOC's convention).</summary>
    public static Rgb IgnoreColour { get; } = new(224, 224, 192);

    /// <summary>Colours each pixel by <paramref name="palette"/>; labels outside it (255 included) get <see cref="IgnoreColour"/>.</summary>
    public static RgbImage Colourise(LabelMap labels, IReadOnlyList<Rgb> palette)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(palette);
        var px = new byte[labels.Width * labels.Height * 3];
        for (var i = 0; i < labels.Labels.Length; i++)
        {
            var l = labels.Labels[i];
            var c = l < palette.Count ? palette[l] : IgnoreColour;
            px[3 * i] = c.R;
            px[3 * i + 1] = c.G;
            px[3 * i + 2] = c.B;
        }
        return new RgbImage(labels.Width, labels.Height, px);
    }
}
