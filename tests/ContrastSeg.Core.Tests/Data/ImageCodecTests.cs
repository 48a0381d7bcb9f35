using System.Buffers.Binary;
using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class ImageCodecTests
{
    private static readonly string[] VocIds =
        ["2011_000003", "2011_000006", "2011_000025", "vainf_val_000001", "vainf_val_000023", "vainf_val_000114"];

    [Fact]
    public void Palette_png_indices_agree_with_skia_colours_through_the_palette()
    {
        // SkiaSharp renders the palette PNG to colours; our exact indices looked up in the file's
        // own palette must give the same colours at every pixel (real files, filter type None).
        var path = Path.Combine(SharedData.Voc2012, "SegmentationClass", "vainf_val_000023.png");
        var labels = ImageCodec.DecodeIndexPng(path);
        var palette = ImageCodec.ReadPalette(path);
        Assert.NotNull(palette);
        var rendered = ImageCodec.DecodeImage(path);
        Assert.Equal(rendered.Pixels, ImageCodec.Colorize(labels, palette!).Pixels);
        Assert.Equal([0, 17, 255], labels.Labels.Distinct().Order().Select(b => (int)b).ToArray());
    }

    [Fact]
    public void Sample_palettes_are_the_voc_palette()
    {
        foreach (var id in VocIds)
        {
            var palette = ImageCodec.ReadPalette(Path.Combine(SharedData.Voc2012, "SegmentationClass", id + ".png"))!;
            for (var i = 0; i < Math.Min(palette.Count, 21); i++) Assert.Equal(Palettes.VocColor(i), palette[i]);
        }
    }

    [Fact]
    public void Grayscale_png_with_sub_up_paeth_filters_decodes_like_skia()
    {
        // The Cityscapes labelIds PNG uses filter types 1, 2 and 4; SkiaSharp renders gray g as (g,g,g).
        var path = SharedData.File("cityscapes_sample", "gtFine", "val", "frankfurt", "frankfurt_000000_000294_gtFine_labelIds.png");
        var labels = ImageCodec.DecodeIndexPng(path);
        var rgb = ImageCodec.DecodeImage(path);
        Assert.Equal((256, 128), (labels.Width, labels.Height));
        for (var i = 0; i < labels.Labels.Length; i++)
            Assert.True(rgb.Pixels[3 * i] == labels.Labels[i] && rgb.Pixels[3 * i + 2] == labels.Labels[i], $"pixel {i}");
        Assert.Equal([1, 2, 3, 4, 7, 8, 11, 13, 17, 20, 21, 23, 24, 26], labels.Labels.Distinct().Order().Select(b => (int)b).ToArray());
    }

    [Fact]
    public void Decodes_real_jpeg_and_rgb_png()
    {
        var jpg = ImageCodec.DecodeImage(Path.Combine(SharedData.Voc2012, "JPEGImages", "2011_000003.jpg"));
        Assert.Equal((500, 338), (jpg.Width, jpg.Height));
        var png = ImageCodec.DecodeImage(SharedData.File("cityscapes_sample", "leftImg8bit", "val", "frankfurt", "frankfurt_000000_000294_leftImg8bit.png"));
        Assert.Equal((256, 128), (png.Width, png.Height));
        Assert.True(png.Pixels.Distinct().Count() > 50);
    }

    [Theory]
    [InlineData(-1)] // auto
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Index_png_round_trips_with_every_filter(int filter)
    {
        var labels = TestFiles.Labels(37, 23, classes: 21);
        foreach (var palette in new[] { Palettes.Voc, null })
        {
            var bytes = ImageCodec.EncodeIndexPng(labels, palette, (PngFilterChoice)filter);
            var back = ImageCodec.DecodeIndexPng(bytes, "memory.png");
            Assert.Equal((labels.Width, labels.Height), (back.Width, back.Height));
            Assert.Equal(labels.Labels, back.Labels);
            // An independent decoder agrees: SkiaSharp's colours are the palette (or gray) of our indices.
            var rgb = ImageCodec.DecodeImage(bytes, "memory.png");
            var expected = palette is null
                ? labels.Labels.SelectMany(v => new[] { v, v, v }).ToArray()
                : ImageCodec.Colorize(labels, palette).Pixels;
            Assert.Equal(expected, rgb.Pixels);
        }
    }

    [Fact]
    public void Image_data_split_over_several_idat_chunks_is_joined()
    {
        var labels = TestFiles.Labels(40, 30, classes: 21);
        var png = ImageCodec.EncodeIndexPng(labels, Palettes.Voc, PngFilterChoice.Paeth);
        // Re-chunk: every chunk copied, except IDAT, whose data is cut into 7-byte chunks.
        var output = new List<byte>(png[..8]);
        for (var pos = 8; pos < png.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            var type = png.AsSpan(pos + 4, 4).ToArray();
            var data = png.AsSpan(pos + 8, length).ToArray();
            foreach (var part in type.SequenceEqual("IDAT"u8.ToArray()) ? data.Chunk(7) : [data])
            {
                var head = new byte[8];
                BinaryPrimitives.WriteInt32BigEndian(head, part.Length);
                type.CopyTo(head, 4);
                var crc = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32.OfChunk(type, part));
                output.AddRange([.. head, .. part, .. crc]);
            }
            pos += 12 + length;
        }
        Assert.Equal(labels.Labels, ImageCodec.DecodeIndexPng(output.ToArray(), "chunked.png").Labels);
    }

    [Fact]
    public void WriteIndexPng_and_WriteRgbPng_write_readable_files()
    {
        using var tmp = new TempDir();
        var labels = TestFiles.Labels(20, 11, classes: 5);
        var maskPath = tmp.File("sub", "mask.png");
        ImageCodec.WriteIndexPng(maskPath, labels, Palettes.VocInfo.Palette); // 21 entries, 255 padded
        Assert.Equal(labels.Labels, ImageCodec.DecodeIndexPng(maskPath).Labels);
        Assert.Equal(256, ImageCodec.ReadPalette(maskPath)!.Count);

        var grayPath = tmp.File("gray.png");
        ImageCodec.WriteGrayscalePng(grayPath, labels);
        Assert.Equal(labels.Labels, ImageCodec.DecodeIndexPng(grayPath).Labels);
        Assert.Null(ImageCodec.ReadPalette(grayPath));

        var image = TestFiles.Pattern(20, 11);
        var rgbPath = tmp.File("rgb.png");
        ImageCodec.WriteRgbPng(rgbPath, image);
        Assert.Equal(image.Pixels, ImageCodec.DecodeImage(rgbPath).Pixels);
        Assert.Equal(3, Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories).Length); // no temp files left
    }

    [Fact]
    public void Colorize_and_overlay()
    {
        var labels = new LabelMap(3, 1, [1, 15, 255]);
        var c = ImageCodec.Colorize(labels, Palettes.VocInfo.Palette, new Rgb(1, 2, 3));
        Assert.Equal(new byte[] { 128, 0, 0, 192, 128, 128, 1, 2, 3 }, c.Pixels);
        Assert.Equal(new byte[] { 224, 224, 192 }, ImageCodec.Colorize(labels, Palettes.Voc).Pixels[6..]);

        var image = new RgbImage(3, 1, [0, 0, 0, 100, 100, 100, 50, 60, 70]);
        var o = ImageCodec.Overlay(image, labels, Palettes.VocInfo.Palette, 0.5f);
        Assert.Equal(new byte[] { 64, 0, 0, 146, 114, 114, 50, 60, 70 }, o.Pixels);
    }

    [Fact]
    public void Voc_palette_formula()
    {
        Assert.Equal(new Rgb(0, 0, 0), Palettes.VocColor(0));
        Assert.Equal(new Rgb(128, 0, 0), Palettes.VocColor(1));
        Assert.Equal(new Rgb(192, 128, 128), Palettes.VocColor(15));
        Assert.Equal(new Rgb(224, 224, 192), Palettes.VocColor(255));
        Assert.Equal(256, Palettes.Voc.Count);
        Assert.Equal(256, Palettes.Voc.Distinct().Count()); // a bijection: colours identify indices
        Assert.Equal(21, Palettes.VocInfo.NumClasses);
        Assert.Equal(19, Palettes.CityscapesInfo.NumClasses);
        Assert.Equal(new Rgb(119, 11, 32), Palettes.Cityscapes[18]);
    }

    // ---- bad input ----

    [Fact]
    public void Truncated_jpeg_is_refused_naming_the_file()
    {
        using var tmp = new TempDir();
        var good = tmp.File("good.jpg");
        TestFiles.WriteJpeg(good, 64, 48);
        var bytes = File.ReadAllBytes(good);
        var bad = tmp.File("bad.jpg");
        File.WriteAllBytes(bad, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeImage(bad));
        Assert.Equal(bad, e.Path);
        Assert.Contains("bad.jpg", e.Message);
        Assert.Contains("JPEG", e.Message);
    }

    [Fact]
    public void Corrupt_jpeg_header_is_refused_naming_the_file()
    {
        using var tmp = new TempDir();
        var bad = tmp.File("garbled.jpg");
        var bytes = new byte[600];
        new Random(1).NextBytes(bytes);
        bytes[0] = 0xFF; bytes[1] = 0xD8; bytes[2] = 0xFF; // looks like a JPEG, is not
        File.WriteAllBytes(bad, bytes);
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeImage(bad));
        Assert.Contains("garbled.jpg", e.Message);
        Assert.Contains("JPEG", e.Message);
    }

    [Fact]
    public void Text_file_is_not_a_jpeg_or_png()
    {
        using var tmp = new TempDir();
        var bad = tmp.File("page.jpg");
        File.WriteAllText(bad, "<html>404 not found</html>");
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeImage(bad));
        Assert.Contains("page.jpg", e.Message);
        Assert.Contains("not a JPEG/PNG", e.Message);
    }

    [Fact]
    public void Truncated_index_png_reports_the_idat_stream_ended_early()
    {
        using var tmp = new TempDir();
        var noisy = new byte[64 * 32];
        new Random(7).NextBytes(noisy); // incompressible, so the IDAT chunk is most of the file
        var bytes = ImageCodec.EncodeIndexPng(new LabelMap(64, 32, noisy), Palettes.Voc, PngFilterChoice.None);
        var bad = tmp.File("cut.png");
        File.WriteAllBytes(bad, bytes[..(bytes.Length - 400)]);
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng(bad));
        Assert.True(e.Message.Contains("cut.png"), e.Message);
        Assert.True(e.Message.Contains("truncated PNG: IDAT stream ended early"), e.Message);
        // SkiaSharp (photos path) refuses it too instead of returning a half-grey image.
        var e2 = Assert.Throws<DatasetException>(() => ImageCodec.DecodeImage(bad));
        Assert.Contains("truncated PNG", e2.Message);
    }

    [Fact]
    public void Rgb_png_where_an_index_mask_is_expected_is_refused()
    {
        using var tmp = new TempDir();
        var bad = tmp.File("colour_mask.png");
        ImageCodec.WriteRgbPng(bad, ImageCodec.Colorize(TestFiles.Labels(8, 8), Palettes.Voc));
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng(bad));
        Assert.Contains("colour_mask.png", e.Message);
        Assert.Contains("expected an 8-bit palette or grayscale index PNG, got RGB (colour type 2)", e.Message);
    }

    [Fact]
    public void Sixteen_bit_png_is_refused_as_index_mask()
    {
        var path = SharedData.File("cityscapes_sample", "gtFine", "val", "frankfurt", "frankfurt_000000_000294_gtFine_instanceIds.png");
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng(path));
        Assert.Contains("got 16-bit grayscale (colour type 0)", e.Message);
        var rgba = SharedData.File("cityscapes_sample", "gtFine", "val", "frankfurt", "frankfurt_000000_000294_gtFine_color.png");
        Assert.Contains("got RGBA (colour type 6)", Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng(rgba)).Message);
    }

    [Fact]
    public void Interlaced_png_and_crc_mismatch_are_refused()
    {
        var bytes = ImageCodec.EncodeIndexPng(TestFiles.Labels(8, 8), null, PngFilterChoice.None);
        // IHDR data starts at 16; interlace flag is its 13th byte. Fix the CRC so only the flag is wrong.
        var interlaced = (byte[])bytes.Clone();
        interlaced[16 + 12] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(interlaced.AsSpan(29), Crc32.OfChunk(interlaced.AsSpan(12, 4), interlaced.AsSpan(16, 13)));
        Assert.Contains("interlaced", Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng(interlaced, "i.png")).Message);

        var flipped = (byte[])bytes.Clone();
        flipped[^20] ^= 0x40; // inside IDAT
        Assert.Contains("CRC mismatch", Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng(flipped, "c.png")).Message);
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeImage("/nonexistent/x.jpg"));
        Assert.Equal("/nonexistent/x.jpg", e.Path);
        Assert.Contains("file not found", e.Message);
    }
}
