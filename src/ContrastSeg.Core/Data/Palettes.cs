namespace ContrastSeg.Data;

/// <summary>Class names and display colours of the supported datasets.</summary>
public static class Palettes
{
    /// <summary>The PASCAL VOC colour of index <paramref name="index"/> by the devkit's bit formula (255 gives (224,224,192)).</summary>
    public static Rgb VocColor(int index)
    {
        if (index is < 0 or > 255) throw new ArgumentOutOfRangeException(nameof(index), index, "A VOC palette index is 0..255.");
        int r = 0, g = 0, b = 0;
        for (var j = 0; j < 8; j++)
        {
            var c = index >> (3 * j);
            r |= (c & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
        }
        return new Rgb((byte)r, (byte)g, (byte)b);
    }

    /// <summary>The full 256-entry VOC palette (what VOC's SegmentationClass PNGs carry); index 255 = (224,224,192).</summary>
    public static IReadOnlyList<Rgb> Voc { get; } = Enumerable.Range(0, 256).Select(VocColor).ToArray();

    /// <summary>The 21 VOC class names (0 = background).</summary>
    public static IReadOnlyList<string> VocClassNames { get; } =
    [
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ];

    /// <summary>The 19 Cityscapes evaluation classes, by trainId.</summary>
    public static IReadOnlyList<string> CityscapesClassNames { get; } =
    [
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation", "terrain",
        "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    ];

    /// <summary>The official Cityscapes colours of the 19 trainIds.</summary>
    public static IReadOnlyList<Rgb> Cityscapes { get; } =
    [
        new(128, 64, 128), new(244, 35, 232), new(70, 70, 70), new(102, 102, 156), new(190, 153, 153),
        new(153, 153, 153), new(250, 170, 30), new(220, 220, 0), new(107, 142, 35), new(152, 251, 152),
        new(70, 130, 180), new(220, 20, 60), new(255, 0, 0), new(0, 0, 142), new(0, 0, 70),
        new(0, 60, 100), new(0, 80, 100), new(0, 0, 230), new(119, 11, 32),
    ];

    /// <summary>VOC 2012 class table: 21 classes with the first 21 VOC palette colours, ignore 255.</summary>
    public static DatasetInfo VocInfo { get; } = new("voc2012", VocClassNames, Voc.Take(21).ToArray());

    /// <summary>Cityscapes class table: 19 trainId classes with their official colours, ignore 255.</summary>
    public static DatasetInfo CityscapesInfo { get; } = new("cityscapes", CityscapesClassNames, Cityscapes);
}
