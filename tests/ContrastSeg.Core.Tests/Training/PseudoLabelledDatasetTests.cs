using ContrastSeg.Data;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

public sealed class PseudoLabelledDatasetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("contrastseg-pseudo-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed class TinyDataset : ISegmentationDataset
    {
        public DatasetInfo Info { get; } = new("tiny", new[] { "bg", "thing" }, new[] { new Rgb(0, 0, 0), new Rgb(255, 0, 0) });
        public IReadOnlyList<string> Ids { get; } = new[] { "a", "b" };
        public SegmentationSample Load(int index) =>
            new(Ids[index], new RgbImage(4, 3, new byte[4 * 3 * 3]), new LabelMap(4, 3, new byte[12]));
    }

    [Fact]
    public void Pseudo_labels_replace_the_labels_of_images_that_have_them()
    {
        var pseudo = Enumerable.Range(0, 12).Select(i => (byte)(i % 3 == 0 ? 255 : 1)).ToArray();
        ImageCodec.WriteGrayscalePng(Path.Combine(_dir, "b.png"), new LabelMap(4, 3, pseudo));
        var ds = new PseudoLabelledDataset(new TinyDataset(), _dir);
        Assert.False(ds.HasPseudoLabels(0));
        Assert.True(ds.HasPseudoLabels(1));
        Assert.All(ds.Load(0).Labels!.Labels, v => Assert.Equal(0, v));
        Assert.Equal(pseudo, ds.Load(1).Labels!.Labels);
    }

    [Fact]
    public void A_pseudo_label_map_of_the_wrong_size_is_named()
    {
        ImageCodec.WriteGrayscalePng(Path.Combine(_dir, "a.png"), new LabelMap(5, 3, new byte[15]));
        var ex = Assert.Throws<DatasetException>(() => new PseudoLabelledDataset(new TinyDataset(), _dir).Load(0));
        Assert.Contains("a.png", ex.Message);
        Assert.Contains("5x3", ex.Message);
        Assert.Throws<DatasetException>(() => new PseudoLabelledDataset(new TinyDataset(), Path.Combine(_dir, "missing")));
    }
}
