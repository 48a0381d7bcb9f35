namespace ContrastSeg.Data;

/// <summary>An 8-bit RGB image, row-major, interleaved (H x W x 3 bytes).</summary>
public sealed class RgbImage
{
    /// <summary>Wraps pixel bytes; throws when the length is not width x height x 3.</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width < 1 || height < 1) throw new ArgumentException($"Image size must be positive, got {width}x{height}.");
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.Length != checked(width * height * 3))
            throw new ArgumentException($"A {width}x{height} RGB image needs {width * height * 3} bytes, got {pixels.Length}.");
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Interleaved RGB bytes, row-major.</summary>
    public byte[] Pixels { get; }
}

/// <summary>Per-pixel class indices, row-major; <see cref="Ignore"/> marks void pixels.</summary>
public sealed class LabelMap
{
    /// <summary>The void/ignore label of VOC and Cityscapes trainIds.</summary>
    public const byte Ignore = 255;

    /// <summary>Wraps label bytes; throws when the length is not width x height.</summary>
    public LabelMap(int width, int height, byte[] labels)
    {
        if (width < 1 || height < 1) throw new ArgumentException($"Label map size must be positive, got {width}x{height}.");
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Length != checked(width * height))
            throw new ArgumentException($"A {width}x{height} label map needs {width * height} bytes, got {labels.Length}.");
        Width = width;
        Height = height;
        Labels = labels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Class index per pixel, row-major.</summary>
    public byte[] Labels { get; }
}

/// <summary>One image with its label map (null for an unlabelled image).</summary>
/// <param name="Id">The dataset's id of the image (e.g. a VOC id or a Cityscapes frame name).</param>
/// <param name="Image">The image.</param>
/// <param name="Labels">Its label map, the same size as the image, or null when unlabelled.</param>
public sealed record SegmentationSample(string Id, RgbImage Image, LabelMap? Labels);

/// <summary>What a dataset's labels mean.</summary>
/// <param name="Name">Dataset name, e.g. "voc2012".</param>
/// <param name="ClassNames">Class names by index; the class count is their number.</param>
/// <param name="Palette">Display colour per class index (same length as <paramref name="ClassNames"/>).</param>
/// <param name="IgnoreLabel">The label that is in no loss and no metric (255).</param>
public sealed record DatasetInfo(string Name, IReadOnlyList<string> ClassNames, IReadOnlyList<Rgb> Palette, byte IgnoreLabel = LabelMap.Ignore)
{
    /// <summary>Number of classes.</summary>
    public int NumClasses => ClassNames.Count;
}

/// <summary>An RGB colour.</summary>
/// <param name="R">Red.</param>
/// <param name="G">Green.</param>
/// <param name="B">Blue.</param>
public readonly record struct Rgb(byte R, byte G, byte B);

/// <summary>
/// A list of segmentation samples. Implementations load lazily, are safe to call from several
/// threads at once, and throw <see cref="DatasetException"/> naming the file and the problem.
/// </summary>
public interface ISegmentationDataset
{
    /// <summary>Classes, palette, ignore label.</summary>
    DatasetInfo Info { get; }

    /// <summary>Sample ids in order; <see cref="Load"/> takes an index into this list.</summary>
    IReadOnlyList<string> Ids { get; }

    /// <summary>Loads sample <paramref name="index"/>.</summary>
    SegmentationSample Load(int index);
}

/// <summary>Bad or missing data; the message names the file (or list) and what is wrong with it.</summary>
public sealed class DatasetException : Exception
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public DatasetException(string message, string? path = null, Exception? inner = null)
        : base(path is null ? message : $"{path}: {message}", inner) => Path = path;

    /// <summary>The file or folder at fault, when there is one.</summary>
    public string? Path { get; }
}
