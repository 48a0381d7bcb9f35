using ContrastSeg.Data;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// An image or mask whose header claims more pixels than <c>Data.MaxImagePixels</c> is refused before decoding, naming
/// the file, its size and the setting: a 420 KB PNG of 12000x12000 trained silently at 3.42 GB peak memory.
/// </summary>
public class PixelLimitTests
{
    private const int Side = 9000; // 81 megapixels, above the default of 8192x8192

    [Fact]
    public void A_small_file_of_more_pixels_than_the_limit_is_refused_from_its_header_naming_the_file_the_size_and_the_setting()
    {
        using var data = new TempFolderDataset(["a", "b"]);
        var bomb = TestFiles.BlankGrayscalePng(Side, Side);
        Assert.True(bomb.Length < 200_000, $"{bomb.Length} bytes");
        File.Delete(data.Image("b"));
        var image = data.File("images", "b.png");
        File.WriteAllBytes(image, bomb);
        File.WriteAllBytes(data.Mask("a"), bomb); // a valid 8-bit grayscale index PNG, too

        // Header checks first: they cost nothing before the fix as well, where they returned the size.
        var e = Assert.Throws<DatasetException>(() => ImageCodec.ProbeImage(image));
        Assert.Equal(image, e.Path);
        Assert.Equal(DatasetProblem.TooManyPixels, Problems.ToIssue(e, image).Problem);
        Assert.Contains("9000x9000 = 81,000,000 pixels", e.Message);
        Assert.Contains("limit of 67,108,864 pixels (Data.MaxImagePixels", e.Message);
        Assert.Contains("--set Data.MaxImagePixels=81000000", e.Message);
        Assert.Equal(DatasetProblem.TooManyPixels, Problems.ToIssue(Assert.Throws<DatasetException>(() => ImageCodec.DecodeImage(image)), image).Problem);
        var m = Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng(data.Mask("a")));
        Assert.Equal(data.Mask("a"), m.Path);
        Assert.Contains("index PNG of 9000x9000", m.Message);

        // The validator, the check before a run and loading all say it, for the image and the mask.
        var options = new FolderOptions { Split = "train" };
        var report = DatasetValidator.ValidateFolder(data.Root, options, maxParallelism: 2);
        Assert.Equal(new[] { data.Mask("a"), image }.Order(), report.Issues.Select(i => i.File).Order());
        Assert.All(report.Issues, i => Assert.Equal(DatasetProblem.TooManyPixels, i.Problem));
        var ds = new FolderDataset(data.Root, options);
        var check = DatasetValidator.CheckBeforeRun([new DataPart("training split 'train'", ds, [0, 1], NeedsLabels: true)], maxParallelism: 2);
        Assert.Equal(new[] { data.Mask("a"), image }.Order(), check.Issues.Select(i => i.File).Order());
        Assert.Contains("9000x9000", Assert.Throws<DatasetException>(() => ds.Load(1)).Message);

        // A user with genuinely large images raises the limit.
        Assert.Equal((Side, Side), ImageCodec.ProbeImage(image, maxPixels: Side * Side));
    }

    [Fact]
    public void The_limit_is_the_setting_Data_MaxImagePixels_which_reaches_the_readers_and_changes_no_run_name()
    {
        using var data = new TempFolderDataset(["a", "b"], ["c"]); // 24x20 = 480 pixels each
        var d = new DataSettings { Dataset = "folder", Root = data.Root };
        Assert.Equal(PixelLimit.Default, d.MaxImagePixels);

        var (train, _, _) = DatasetRegistry.Get("folder").Open(d with { MaxImagePixels = 479 });
        var e = Assert.Throws<DatasetException>(() => train.Load(0));
        Assert.Contains("JPEG image of 24x20 = 480 pixels, above the limit of 479 pixels", e.Message);
        Assert.Equal(4, DatasetRegistry.Get("folder").Validate!(data.Root, "train", 479).OfKind(DatasetProblem.TooManyPixels).Count);
        Assert.True(DatasetRegistry.Get("folder").Validate!(data.Root, "train", 480).IsValid);
        Assert.Equal(24, DatasetRegistry.Get("folder").Open(d with { MaxImagePixels = 480 }).Train.Load(0).Image.Width);

        // Not part of what a run is: an image above the limit is refused, never resized.
        var config = new TrainConfig { Data = d };
        var raised = ConfigOverrides.Apply(config, ["Data.MaxImagePixels=200000000"]);
        Assert.Equal(200_000_000, raised.Data.MaxImagePixels);
        Assert.Equal(config.RunName, raised.RunName);
        Assert.DoesNotContain("MaxImagePixels", config.WeightsDefiningJson());
        foreach (var bad in new[] { 0, PixelLimit.Max + 1 })
        {
            var ex = Assert.Throws<ConfigException>(() => (config with { Data = d with { MaxImagePixels = bad } }).Validate());
            Assert.Equal("Data.MaxImagePixels", ex.Field);
        }
    }
}
