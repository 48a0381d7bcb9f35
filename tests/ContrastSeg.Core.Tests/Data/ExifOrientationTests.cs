using ContrastSeg.Data;
using SkiaSharp;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// Photos are loaded as displayed: an EXIF orientation is applied, as viewers and annotation tools apply it, and masks are
/// never turned. Before, a JPEG stored turned (Orientation 6) whose mask matched the displayed view validated with "no
/// problems" and trained with image and mask 90 degrees apart (mIoU 0.80 %), and a non-square one got a size error with no hint.
/// </summary>
public class ExifOrientationTests
{
    private static readonly Rgb Red = new(255, 0, 0), Blue = new(0, 0, 255), Green = new(0, 255, 0), Gray = new(128, 128, 128);

    /// <summary>A stored 32x16 photo in quadrants: red, blue on top, green, gray below.</summary>
    private static RgbImage Quadrants()
    {
        const int w = 32, h = 16;
        var px = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        for (var x = 0; x < w; x++)
        {
            var c = (x < w / 2, y < h / 2) switch { (true, true) => Red, (false, true) => Blue, (true, false) => Green, _ => Gray };
            (px[3 * (y * w + x)], px[3 * (y * w + x) + 1], px[3 * (y * w + x) + 2]) = (c.R, c.G, c.B);
        }
        return new RgbImage(w, h, px);
    }

    private static void AssertColour(RgbImage image, int x, int y, Rgb expected)
    {
        var i = 3 * (y * image.Width + x);
        var got = new Rgb(image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]);
        Assert.True(Math.Abs(got.R - expected.R) < 40 && Math.Abs(got.G - expected.G) < 40 && Math.Abs(got.B - expected.B) < 40,
            $"pixel ({x}, {y}) of the {image.Width}x{image.Height} image is {got}, expected about {expected}");
    }

    /// <summary>A folder dataset with one photo, p, stored as <see cref="Quadrants"/> with Orientation 6, and a mask of <paramref name="maskWidth"/> x <paramref name="maskHeight"/>.</summary>
    private static TempFolderDataset TurnedPhoto(int maskWidth, int maskHeight)
    {
        var data = new TempFolderDataset(["a"]);
        File.WriteAllBytes(data.Image("p"), TestFiles.WithExifOrientation(TestFiles.Jpeg(Quadrants()), 6));
        ImageCodec.WriteGrayscalePng(data.Mask("p"), TestFiles.Labels(maskWidth, maskHeight));
        data.WriteSplit("train", "a", "p");
        return data;
    }

    [Fact]
    public void A_photo_stored_turned_is_loaded_as_displayed_and_the_validator_says_so()
    {
        using var data = TurnedPhoto(16, 32); // the mask drawn on the displayed, portrait view
        var options = new FolderOptions { Split = "train" };

        var report = DatasetValidator.ValidateFolder(data.Root, options, maxParallelism: 2);
        Assert.True(report.IsValid, report.ToString());
        var note = Assert.Single(report.Notes);
        Assert.Contains("1 image carries an EXIF orientation", note);
        Assert.Contains($"{data.Image("p")}: EXIF Orientation 6: turned 90° clockwise, loaded as 16x32", note);
        Assert.Contains("Masks are never turned", note);
        Assert.Contains("note: 1 image carries", report.ToString());

        var ds = new FolderDataset(data.Root, options);
        var check = DatasetValidator.CheckBeforeRun([new DataPart("training split 'train'", ds, [0, 1], NeedsLabels: true)], maxParallelism: 2);
        Assert.True(check.IsValid, check.ToString());
        Assert.Single(check.Notes);
        Assert.Equal((16, 32), ImageCodec.ProbeImage(data.Image("p")));

        // Turned 90° clockwise: the stored left column is the displayed top row, read right to left.
        var sample = ds.Load(1);
        Assert.Equal((16, 32), (sample.Image.Width, sample.Image.Height));
        AssertColour(sample.Image, 4, 4, Green);   // stored bottom-left
        AssertColour(sample.Image, 12, 4, Red);    // stored top-left
        AssertColour(sample.Image, 4, 28, Gray);   // stored bottom-right
        AssertColour(sample.Image, 12, 28, Blue);  // stored top-right
        Assert.Equal(TestFiles.Labels(16, 32).Labels, sample.Labels!.Labels); // the mask as stored
    }

    [Fact]
    public void A_mask_that_fits_the_stored_pixels_gets_a_size_error_naming_the_orientation()
    {
        using var data = TurnedPhoto(32, 16);
        var report = DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }, maxParallelism: 2);
        var issue = Assert.Single(report.Issues);
        Assert.Equal(DatasetProblem.SizeMismatch, issue.Problem);
        Assert.Equal(data.Mask("p"), issue.File);
        Assert.Contains($"mask is 32x16 but its image {data.Image("p")} is 16x32 as displayed", issue.Message);
        Assert.Contains("EXIF Orientation 6: turned 90° clockwise", issue.Message);
        Assert.Contains("masks are never turned", issue.Message);

        var e = Assert.Throws<DatasetException>(() => new FolderDataset(data.Root, new FolderOptions { Split = "train" }).Load(1));
        Assert.Contains("EXIF Orientation 6", e.Message);
    }

    [Fact]
    public void A_turned_photo_loaded_resized_is_checked_for_size_as_displayed_and_keeps_its_note()
    {
        // One check result carries both the orientation (the note) and the size before Data.Resize (ImageTooSmall's message).
        using var data = TurnedPhoto(16, 32);
        var ds = new ResizedDataset(new FolderDataset(data.Root, new FolderOptions { Split = "train" }), 0.25);

        var check = DatasetValidator.CheckBeforeRun([new DataPart("training split 'train'", ds, [0, 1], NeedsLabels: true)],
            maxParallelism: 2, minimum: MinimumImageSize.OfModel(8, resize: 0.25));

        var small = Assert.Single(check.OfKind(DatasetProblem.ImageTooSmall), i => i.File == data.Image("p"));
        Assert.Contains("image is 16x32 pixels, 4x8 after Data.Resize = 0.25", small.Message);
        Assert.Contains("EXIF Orientation 6", Assert.Single(check.Notes));
    }

    // A 3x2 image a b c / d e f, as each orientation displays it (the EXIF specification's eight cases).
    [Theory]
    [InlineData(1, 3, "abcdef")]
    [InlineData(2, 3, "cbafed")] // mirrored left-right
    [InlineData(3, 3, "fedcba")] // turned 180°
    [InlineData(4, 3, "defabc")] // mirrored top-bottom
    [InlineData(5, 2, "adbecf")] // transposed
    [InlineData(6, 2, "daebfc")] // turned 90° clockwise
    [InlineData(7, 2, "fcebda")] // transversed
    [InlineData(8, 2, "cfbead")] // turned 90° counter-clockwise
    public void Every_orientation_turns_the_pixels_as_viewers_do_and_skia_reads_the_tag(int orientation, int width, string shown)
    {
        var stored = new RgbImage(3, 2, "abcdef".SelectMany(ch => new[] { (byte)ch, (byte)ch, (byte)ch }).ToArray());
        var displayed = ExifOrientation.Apply(stored, (SKEncodedOrigin)orientation);
        Assert.Equal((width, 6 / width), (displayed.Width, displayed.Height));
        Assert.Equal(shown, new string(displayed.Pixels.Where((_, i) => i % 3 == 0).Select(b => (char)b).ToArray()));

        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("p.jpg"), TestFiles.WithExifOrientation(TestFiles.Jpeg(Quadrants()), orientation));
        Assert.Equal(orientation >= 5 ? (16, 32) : (32, 16), ImageCodec.ProbeImage(dir.File("p.jpg")));
    }
}
