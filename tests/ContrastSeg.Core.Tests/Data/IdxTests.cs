using System.IO.Compression;
using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public sealed class IdxTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("idx-tests").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IdxImages Sample()
    {
        var pixels = new byte[3 * 4 * 5];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7);
        return new IdxImages(3, 4, 5, pixels);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Images_and_labels_round_trip_gzip_and_raw(bool gzip)
    {
        var images = Sample();
        var ip = Path.Combine(_dir, "img.idx");
        var lp = Path.Combine(_dir, "lab.idx");
        Idx.WriteImages(ip, images, gzip);
        Idx.WriteLabels(lp, [9, 0, 4], gzip);

        var back = Idx.ReadImages(ip);
        Assert.Equal((3, 4, 5), (back.Count, back.Rows, back.Cols));
        Assert.Equal(images.Pixels, back.Pixels);
        Assert.Equal(images.Image(2).ToArray(), back.Image(2).ToArray());
        Assert.Equal(new byte[] { 9, 0, 4 }, Idx.ReadLabels(lp));

        var head = File.ReadAllBytes(ip)[..4];
        if (gzip) Assert.Equal(new byte[] { 0x1f, 0x8b }, head[..2]);
        else Assert.Equal(new byte[] { 0, 0, 8, 3 }, head); // 2051, big-endian
    }

    [Fact]
    public void Bad_magic_is_named_with_the_file()
    {
        var lp = Path.Combine(_dir, "labels.gz");
        Idx.WriteLabels(lp, [1, 2, 3]);
        var e = Assert.Throws<DatasetException>(() => Idx.ReadImages(lp));
        Assert.Contains(lp, e.Message);
        Assert.Contains("magic", e.Message);
        Assert.Contains("2049", e.Message);
        Assert.Equal(lp, e.Path);

        var junk = Path.Combine(_dir, "junk.bin");
        File.WriteAllBytes(junk, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        Assert.Contains("magic", Assert.Throws<DatasetException>(() => Idx.ReadLabels(junk)).Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Truncated_file_is_reported(bool gzip)
    {
        var ip = Path.Combine(_dir, "img");
        var raw = Path.Combine(_dir, "raw");
        Idx.WriteImages(raw, Sample(), gzip: false);
        var bytes = File.ReadAllBytes(raw)[..^7];
        if (gzip)
        {
            // A complete gzip stream of truncated content, and a gzip stream cut in the middle.
            using (var f = File.Create(ip))
            using (var z = new GZipStream(f, CompressionLevel.Fastest)) z.Write(bytes);
            var cut = Path.Combine(_dir, "cut.gz");
            Idx.WriteImages(cut, Sample(), gzip: true);
            File.WriteAllBytes(cut, File.ReadAllBytes(cut)[..^12]);
            var ce = Assert.Throws<DatasetException>(() => Idx.ReadImages(cut));
            Assert.Contains(cut, ce.Message);
        }
        else File.WriteAllBytes(ip, bytes);

        var e = Assert.Throws<DatasetException>(() => Idx.ReadImages(ip));
        Assert.Contains(ip, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Missing_file_is_named()
    {
        var p = Path.Combine(_dir, "nope.gz");
        Assert.Contains(p, Assert.Throws<DatasetException>(() => Idx.ReadLabels(p)).Message);
    }
}
