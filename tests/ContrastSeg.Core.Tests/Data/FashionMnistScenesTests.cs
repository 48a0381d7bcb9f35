using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class FashionMnistScenesTests
{
    // The committed subset: the same scenes on every machine, with or without the Debian package.
    private static readonly Lazy<FashionMnistSource> Source = new(FashionMnistSource.OpenEmbedded);

    private static FashionMnistScenes Scenes(SceneSplit split = SceneSplit.Train, int seed = 0) =>
        FashionMnistScenes.Create(split, new FashionMnistSceneOptions { Seed = seed, TrainScenes = 50, ValScenes = 20, TestScenes = 20 }, Source.Value);

    [Fact]
    public void Scene_is_a_pure_function_of_seed_split_and_index_on_any_thread()
    {
        var a = Scenes();
        var b = Scenes();
        SegmentationSample? s1 = null, s2 = null;
        var t1 = new Thread(() => s1 = a.Load(7));
        var t2 = new Thread(() => s2 = b.Load(7));
        t1.Start(); t2.Start(); t1.Join(); t2.Join();
        Assert.Equal("train-000007", s1!.Id);
        Assert.Equal(s1.Image.Pixels, s2!.Image.Pixels);
        Assert.Equal(s1.Labels!.Labels, s2.Labels!.Labels);
        Assert.Equal(s1.Image.Pixels, a.Load(7).Image.Pixels); // again, after other scenes

        var other = Scenes(seed: 1).Load(7);
        Assert.NotEqual(s1.Image.Pixels, other.Image.Pixels);
        Assert.NotEqual(s1.Image.Pixels, a.Load(8).Image.Pixels);
        Assert.NotEqual(s1.Image.Pixels, Scenes(SceneSplit.Val).Load(7).Image.Pixels);
    }

    [Fact]
    public void Labels_are_the_class_of_the_topmost_item_whose_ink_exceeds_the_threshold()
    {
        var scenes = Scenes();
        var o = scenes.Options;
        Assert.Equal(64, o.Width);
        for (var i = 0; i < 6; i++)
        {
            var s = scenes.Load(i);
            Assert.Equal((64, 64), (s.Image.Width, s.Image.Height));
            var labels = s.Labels!.Labels;
            Assert.All(labels, l => Assert.InRange(l, (byte)0, (byte)10));

            // Recompose the label map from the layout: background 0, later items over earlier ones.
            var expected = new byte[o.Width * o.Height];
            var layout = scenes.Layout(i);
            Assert.InRange(layout.Count, o.MinItems, o.MaxItems);
            foreach (var p in layout)
            {
                Assert.Equal(scenes.Items.Labels[p.ItemIndex] + 1, p.Label);
                var ink = Resample.Bilinear(scenes.Items.Image(p.ItemIndex), 28, 28, 1, p.Size, p.Size);
                for (var v = 0; v < p.Size; v++)
                    for (var u = 0; u < p.Size; u++)
                    {
                        int x = p.X + u, y = p.Y + v;
                        if (x >= 0 && y >= 0 && x < o.Width && y < o.Height && ink[v * p.Size + u] > o.InkThreshold)
                            expected[y * o.Width + x] = p.Label;
                    }
            }
            Assert.Equal(expected, labels);
            Assert.Contains(labels, l => l > 0);
            Assert.Contains(labels, l => l == 0);
        }
    }

    [Fact]
    public void Several_classes_appear_and_colour_is_not_the_class_cue()
    {
        var scenes = Scenes();
        var seen = new HashSet<byte>();
        var tints = new Dictionary<byte, HashSet<Rgb>>();
        for (var i = 0; i < 10; i++)
        {
            foreach (var l in scenes.Load(i).Labels!.Labels) seen.Add(l);
            foreach (var p in scenes.Layout(i))
            {
                if (!tints.TryGetValue(p.Label, out var set)) tints[p.Label] = set = [];
                set.Add(p.Tint);
            }
        }
        Assert.Contains((byte)0, seen);
        Assert.True(seen.Count >= 6, $"only labels {string.Join(",", seen)} in 10 scenes");
        Assert.Contains(tints.Values, t => t.Count >= 2); // the same class in different colours
    }

    [Fact]
    public void Info_ids_and_splits()
    {
        var train = Scenes();
        Assert.Equal(11, train.Info.NumClasses);
        Assert.Equal(11, train.Info.Palette.Count);
        Assert.Equal(11, train.Info.Palette.Distinct().Count());
        Assert.Equal("background", train.Info.ClassNames[0]);
        Assert.Equal("Ankle boot", train.Info.ClassNames[10]);
        Assert.Equal(50, train.Ids.Count);
        Assert.Equal("train-000049", train.Ids[^1]);

        var val = Scenes(SceneSplit.Val);
        var test = Scenes(SceneSplit.Test);
        Assert.Equal("val-000000", val.Ids[0]);
        Assert.Equal("test-000019", test.Ids[^1]);
        Assert.Same(Source.Value.Test, val.Items);
        Assert.Same(Source.Value.Train, train.Items);
        var valItems = val.ItemPool.SelectMany(p => p).ToHashSet();
        var testItems = test.ItemPool.SelectMany(p => p).ToHashSet();
        Assert.Empty(valItems.Intersect(testItems));
        Assert.Equal(Source.Value.Test.Count, valItems.Count + testItems.Count);
        Assert.All(val.Layout(3), p => Assert.Contains(p.ItemIndex, valItems));
        Assert.Throws<ArgumentOutOfRangeException>(() => val.Load(20));
    }
}
