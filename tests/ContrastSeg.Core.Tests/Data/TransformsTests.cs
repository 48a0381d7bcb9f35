using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class TransformsTests
{
    /// <summary>An asymmetric test card: R encodes the label (label x 20), G the column, B the row; labels in {0, 3, 7}.</summary>
    private static JointSample Card(int w, int h)
    {
        var px = new byte[w * h * 3];
        var lb = new byte[w * h];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var l = (byte)(x < w / 3 ? 0 : (x + 2 * y) % 5 < 2 ? 3 : 7);
                var i = y * w + x;
                lb[i] = l;
                px[3 * i] = (byte)(l * 20);
                px[3 * i + 1] = (byte)x;
                px[3 * i + 2] = (byte)y;
            }
        return new JointSample(new RgbImage(w, h, px), new LabelMap(w, h, lb));
    }

    private static void AssertLabelsFollowImage(JointSample s)
    {
        var l = s.Labels!;
        for (var i = 0; i < l.Labels.Length; i++)
        {
            var r = s.Image.Pixels[3 * i];
            if (l.Labels[i] == LabelMap.Ignore) Assert.Equal(Normalization.ImageNetMeanColour.R, r);
            else Assert.Equal(l.Labels[i] * 20, r);
        }
    }

    [Fact]
    public void Random_crop_gives_the_exact_size_and_pads_the_mask_with_255()
    {
        var rng = new Random(1);
        var pipeline = new TransformPipeline([new PadToSize(40, 40), new RandomCrop(40, 40), new RandomHorizontalFlip()]);
        foreach (var (w, h) in new[] { (30, 20), (100, 80), (40, 40), (10, 90) })
        {
            for (var k = 0; k < 5; k++)
            {
                var s = pipeline.Apply(Card(w, h), rng);
                Assert.Equal((40, 40), (s.Image.Width, s.Image.Height));
                Assert.Equal((40, 40), (s.Labels!.Width, s.Labels.Height));
                AssertLabelsFollowImage(s);
            }
        }

        var padded = new PadToSize(10, 8).Apply(Card(4, 4), rng);
        Assert.Equal((10, 8), (padded.Image.Width, padded.Image.Height));
        Assert.Equal(LabelMap.Ignore, padded.Labels!.Labels[9]);           // right of the image
        Assert.Equal(LabelMap.Ignore, padded.Labels.Labels[7 * 10]);       // below it
        Assert.Equal(Card(4, 4).Labels!.Labels[0], padded.Labels.Labels[0]); // image at the top left
        Assert.Equal(new byte[] { 124, 116, 104 }, padded.Image.Pixels[(9 * 3)..(9 * 3 + 3)]);
        AssertLabelsFollowImage(padded);

        var centred = new PadToSize(8, 4, Centre: true).Apply(Card(4, 4), rng);
        Assert.Equal(LabelMap.Ignore, centred.Labels!.Labels[1]);
        Assert.Equal(Card(4, 4).Labels!.Labels[0], centred.Labels.Labels[2]);
        Assert.Throws<ArgumentException>(() => new RandomCrop(50, 50).Apply(Card(40, 40), rng));
    }

    [Fact]
    public void Flip_mirrors_image_and_labels_together()
    {
        var card = Card(7, 5);
        var f = RandomHorizontalFlip.Flip(card);
        for (var y = 0; y < 5; y++)
            for (var x = 0; x < 7; x++)
            {
                Assert.Equal(card.Labels!.Labels[y * 7 + 6 - x], f.Labels!.Labels[y * 7 + x]);
                Assert.Equal(6 - x, f.Image.Pixels[(y * 7 + x) * 3 + 1]); // G holds the original column
            }
        AssertLabelsFollowImage(f);
        Assert.Equal(card.Image.Pixels, RandomHorizontalFlip.Flip(f).Image.Pixels);

        // With p = 0.5, over a few draws both outcomes happen, and never image without labels.
        var rng = new Random(5);
        var flipped = 0;
        for (var k = 0; k < 20; k++)
        {
            var s = new RandomHorizontalFlip().Apply(card, rng);
            if (s.Image.Pixels[1] == 6) flipped++;
            AssertLabelsFollowImage(s);
        }
        Assert.InRange(flipped, 3, 17);
    }

    [Fact]
    public void Scaling_keeps_labels_in_the_original_set_and_scales_the_size()
    {
        var rng = new Random(2);
        var card = Card(20, 16);
        var sizes = new HashSet<int>();
        for (var k = 0; k < 8; k++)
        {
            var s = new RandomScale(0.5, 2.0).Apply(card, rng);
            Assert.Equal((s.Image.Width, s.Image.Height), (s.Labels!.Width, s.Labels.Height));
            Assert.InRange(s.Image.Width, 10, 40);
            Assert.Equal(s.Image.Width * 16.0 / 20, s.Image.Height, 1.0);
            Assert.All(s.Labels.Labels, l => Assert.Contains(l, new byte[] { 0, 3, 7 }));
            sizes.Add(s.Image.Width);
        }
        Assert.True(sizes.Count > 3);

        var up = Resample.Nearest(card.Labels!, 40, 32);
        Assert.Equal(card.Labels!.Labels[5 * 20 + 7], up.Labels[(2 * 5 + 1) * 40 + 2 * 7 + 1]);
        var smooth = Resample.Bilinear(new RgbImage(2, 1, [0, 0, 0, 200, 200, 200]), 4, 1);
        Assert.Equal(new byte[] { 0, 50, 150, 200 }, smooth.Pixels.Where((_, i) => i % 3 == 0));
    }

    [Fact]
    public void Colour_distortion_changes_the_image_but_not_the_labels()
    {
        var card = Card(16, 16);
        var before = card.Labels!.Labels.ToArray();
        var jitter = ColorJitter.SimClr(1.0) with { Probability = 1.0 };
        var rng = new Random(3);
        var changed = 0;
        for (var k = 0; k < 5; k++)
        {
            foreach (var t in new IJointTransform[] { jitter, new RandomGrayscale(1.0), ColorJitter.Mild() })
            {
                var s = t.Apply(card, rng);
                Assert.Same(card.Labels, s.Labels);
                if (!s.Image.Pixels.SequenceEqual(card.Image.Pixels)) changed++;
            }
        }
        Assert.Equal(before, card.Labels.Labels);
        Assert.True(changed >= 12, $"{changed} of 15 distortions changed the image");

        var gray = new RandomGrayscale(1.0).Apply(card, rng).Image.Pixels;
        for (var i = 0; i < gray.Length; i += 3) Assert.True(gray[i] == gray[i + 1] && gray[i] == gray[i + 2]);

        var off = (ColorJitter.SimClr(1.0) with { Probability = 0 }).Apply(card, rng);
        Assert.Same(card.Image, off.Image);
    }

    [Fact]
    public void Pipelines_are_deterministic_given_the_generator_and_normalise_to_chw()
    {
        var sample = new SegmentationSample("s1", Card(50, 30).Image, Card(50, 30).Labels);
        foreach (var p in new[] { TransformPipeline.Contrastive(crop: 32), TransformPipeline.FineTune(crop: 32) })
        {
            var a = p.Prepare(sample, new Random(11));
            var b = p.Prepare(sample, new Random(11));
            var c = p.Prepare(sample, new Random(12));
            Assert.Equal((32, 32), (a.Width, a.Height));
            Assert.Equal(3 * 32 * 32, a.Image.Length);
            Assert.Equal(32 * 32, a.Labels.Length);
            Assert.Equal(a.Image, b.Image);
            Assert.Equal(a.Labels, b.Labels);
            Assert.NotEqual(a.Image, c.Image);
        }

        var eval = TransformPipeline.Eval(padWidth: 60, padHeight: 40);
        var e = eval.Prepare(new SegmentationSample("u", Card(50, 30).Image, null), new Random(0));
        Assert.Equal((60, 40), (e.Width, e.Height));
        Assert.All(e.Labels, l => Assert.Equal(LabelMap.Ignore, l)); // unlabelled
        Assert.Equal(0f, e.Image[0], 0.01f);                          // mean-colour padding normalises to ~0
        var plain = TransformPipeline.Eval().Prepare(sample, new Random(0));
        // CHW: channel 1 (G) of pixel (x = 7, y = 2) is the column 7, normalised with ImageNet's G statistics.
        Assert.Equal((7 / 255f - 0.456f) / 0.224f, plain.Image[1 * 50 * 30 + 2 * 50 + 7], 1e-5f);
        Assert.Equal(sample.Labels!.Labels, plain.Labels);

        var bad = new SegmentationSample("bad-id", Card(5, 5).Image, Card(4, 5).Labels);
        Assert.Contains("bad-id", Assert.Throws<DatasetException>(() => eval.Prepare(bad, new Random(0))).Message);
    }
}
