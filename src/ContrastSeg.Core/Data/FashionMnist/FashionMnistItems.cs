namespace ContrastSeg.Data;

/// <summary>
/// Fashion-MNIST items of one split: 28x28 grayscale images (0 = no ink) and their classes 0..9.
/// This is also the classification view for a classification-pretraining ablation.
/// </summary>
public sealed class FashionMnistItems
{
    /// <summary>Image side in pixels.</summary>
    public const int Side = 28;

    /// <summary>The ten Fashion-MNIST class names, by label 0..9.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private readonly int[][] _byClass;

    /// <summary>Pairs images with labels; throws <see cref="DatasetException"/> when they do not fit.</summary>
    /// <param name="images">28x28 images.</param>
    /// <param name="labels">One label 0..9 per image.</param>
    /// <param name="origin">Where the items come from (a folder), for messages.</param>
    public FashionMnistItems(IdxImages images, byte[] labels, string origin)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Rows != Side || images.Cols != Side)
            throw new DatasetException($"Fashion-MNIST images must be {Side}x{Side}, got {images.Rows}x{images.Cols}.", origin);
        if (images.Count != labels.Length)
            throw new DatasetException($"{images.Count} images but {labels.Length} labels.", origin);
        for (var i = 0; i < labels.Length; i++)
            if (labels[i] >= ClassNames.Count)
                throw new DatasetException($"label {labels[i]} of item {i} is outside 0..{ClassNames.Count - 1}.", origin);
        Images = images;
        Labels = labels;
        Origin = origin;
        var lists = Enumerable.Range(0, ClassNames.Count).Select(_ => new List<int>()).ToArray();
        for (var i = 0; i < labels.Length; i++) lists[labels[i]].Add(i);
        _byClass = lists.Select(l => l.ToArray()).ToArray();
    }

    /// <summary>The images.</summary>
    public IdxImages Images { get; }

    /// <summary>Class 0..9 of each image.</summary>
    public byte[] Labels { get; }

    /// <summary>The folder the items were read from.</summary>
    public string Origin { get; }

    /// <summary>Number of items.</summary>
    public int Count => Labels.Length;

    /// <summary>The 784 pixels of item <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> Image(int index) => Images.Image(index);

    /// <summary>Indices of the items of class <paramref name="label"/>, ascending.</summary>
    public IReadOnlyList<int> IndicesOfClass(int label) => _byClass[label];

    /// <summary>Item count per class 0..9.</summary>
    public int[] ClassCounts() => _byClass.Select(c => c.Length).ToArray();
}
