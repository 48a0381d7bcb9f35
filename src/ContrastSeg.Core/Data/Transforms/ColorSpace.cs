namespace ContrastSeg.Data;

/// <summary>HSV conversions on floats in [0, 1] (hue as a fraction of the full turn).</summary>
internal static class ColorSpace
{
    public static (float R, float G, float B) HsvToRgb(float h, float s, float v)
    {
        h = (h - MathF.Floor(h)) * 6f;
        var i = (int)h % 6;
        var f = h - MathF.Floor(h);
        float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
        return i switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
    }

    public static (float H, float S, float V) RgbToHsv(float r, float g, float b)
    {
        var max = MathF.Max(r, MathF.Max(g, b));
        var min = MathF.Min(r, MathF.Min(g, b));
        var d = max - min;
        var s = max > 0 ? d / max : 0;
        if (d <= 0) return (0, s, max);
        float h;
        if (max == r) h = (g - b) / d;
        else if (max == g) h = 2 + (b - r) / d;
        else h = 4 + (r - g) / d;
        h /= 6f;
        if (h < 0) h += 1;
        return (h, s, max);
    }
}
