using ContrastSeg.Data;

namespace ContrastSeg.Tests.Data;

/// <summary>A small folder dataset (images/, masks/, classes.txt with 3 classes, splits/) in a temp folder, good unless a test breaks it.</summary>
internal sealed class TempFolderDataset : IDisposable
{
    public const int Classes = 3;
    private readonly TempDir _dir = new();

    /// <summary>Writes a good image and mask for every id of both splits, and the split files.</summary>
    public TempFolderDataset(string[] train, string[]? val = null, int width = 24, int height = 20)
    {
        System.IO.File.WriteAllLines(_dir.File("classes.txt"), ["background", "thing", "other"]);
        Directory.CreateDirectory(Path.Combine(Root, "masks"));
        foreach (var id in train.Concat(val ?? [])) AddGood(id, width, height);
        WriteSplit("train", train);
        if (val is not null) WriteSplit("val", val);
    }

    public string Root => _dir.Path;

    public string Image(string id) => _dir.File("images", id + ".jpg");

    public string Mask(string id) => _dir.File("masks", id + ".png");

    public string File(params string[] parts) => _dir.File(parts);

    public string Split(string name) => _dir.File("splits", name + ".txt");

    public void AddGood(string id, int width = 24, int height = 20)
    {
        TestFiles.WriteJpeg(Image(id), width, height);
        ImageCodec.WriteGrayscalePng(Mask(id), TestFiles.Labels(width, height, Classes));
    }

    public void WriteSplit(string name, params string[] lines) => System.IO.File.WriteAllLines(Split(name), lines);

    public void Dispose() => _dir.Dispose();
}
