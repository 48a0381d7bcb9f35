using System.Collections.Concurrent;
using ContrastSeg.Data;
using ContrastSeg.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Data;

public class SegmentationLoaderTests
{
    /// <summary>A small in-memory dataset; sample <c>failAt</c> throws like a broken file.</summary>
    private sealed class TinyDataset(int count, int width = 8, int height = 6, int? failAt = null, bool labelled = true, bool varySize = false)
        : ISegmentationDataset
    {
        public ConcurrentDictionary<Thread, bool> Threads { get; } = new();

        public DatasetInfo Info { get; } = new("tiny", ["a", "b", "c"], [new(0, 0, 0), new(255, 0, 0), new(0, 255, 0)]);

        public IReadOnlyList<string> Ids { get; } = Enumerable.Range(0, count).Select(i => $"s{i}").ToArray();

        public SegmentationSample Load(int index)
        {
            Threads[Thread.CurrentThread] = true;
            if (index == failAt) throw new DatasetException("broken PNG stream", $"/data/s{index}.png");
            var w = varySize ? width + index % 2 : width;
            var px = new byte[w * height * 3];
            var lb = new byte[w * height];
            for (var p = 0; p < lb.Length; p++)
            {
                lb[p] = (byte)((p + index) % 3);
                px[3 * p] = (byte)(index * 10);
                px[3 * p + 1] = (byte)p;
                px[3 * p + 2] = lb[p];
            }
            return new SegmentationSample(Ids[index], new RgbImage(w, height, px), labelled ? new LabelMap(w, height, lb) : null);
        }
    }

    private static byte[] Bytes(Tensor t) => t.bytes.ToArray();

    [Fact]
    public void Batches_have_the_contract_shapes_and_types()
    {
        TorchFixture.Init();
        var loader = new SegmentationLoader(new TinyDataset(10), TransformPipeline.Eval(),
            new LoaderOptions { BatchSize = 4, Shuffle = false, Workers = 2, TwoViews = true });
        Assert.Equal(3, loader.BatchesPerEpoch);
        var batches = loader.Epoch(0).ToList();
        try
        {
            Assert.Equal([4, 4, 2], batches.Select(b => b.Count));
            var first = batches[0];
            Assert.Equal(["s0", "s1", "s2", "s3"], first.Ids);
            Assert.Equal(new long[] { 4, 3, 6, 8 }, first.Images.shape);
            Assert.Equal(ScalarType.Float32, first.Images.dtype);
            Assert.Equal(new long[] { 4, 6, 8 }, first.Labels.shape);
            Assert.Equal(ScalarType.Int64, first.Labels.dtype);
            Assert.Equal(new long[] { 4, 3, 6, 8 }, first.Images2!.shape);
            Assert.Equal(new long[] { 4, 6, 8 }, first.Labels2!.shape);
            // Sample s1, pixel 9 (row 1, column 1): label (9 + 1) % 3 = 1; red channel 10, normalised.
            Assert.Equal(1L, first.Labels[1, 1, 1].item<long>());
            Assert.Equal((10 / 255f - 0.485f) / 0.229f, first.Images[1, 0, 1, 1].item<float>(), 1e-5f);
        }
        finally { batches.ForEach(b => b.Dispose()); }

        var dropped = new SegmentationLoader(new TinyDataset(10), TransformPipeline.Eval(), new LoaderOptions { BatchSize = 4, DropLast = true });
        Assert.Equal(2, dropped.BatchesPerEpoch);
        var subset = new SegmentationLoader(new TinyDataset(10), TransformPipeline.Eval(), new LoaderOptions { BatchSize = 4 }, [9, 3]);
        using var only = subset.Epoch(0).Single();
        Assert.Equal(["s3", "s9"], only.Ids.Order());

        using var unlabelled = new SegmentationLoader(new TinyDataset(3, labelled: false), TransformPipeline.Eval(), new LoaderOptions { BatchSize = 3 })
            .Epoch(0).Single();
        Assert.True((unlabelled.Labels == 255).all().item<bool>());
    }

    [Fact]
    public void Same_seed_gives_identical_batches_with_1_or_3_workers()
    {
        TorchFixture.Init();
        var scenes = FashionMnistScenes.Create(SceneSplit.Train,
            new FashionMnistSceneOptions { TrainScenes = 10, Width = 32, Height = 32 }, FashionMnistSource.OpenEmbedded());
        List<byte[]> Run(int workers, int seed)
        {
            var loader = new SegmentationLoader(scenes, TransformPipeline.Contrastive(crop: 24),
                new LoaderOptions { BatchSize = 3, Seed = seed, Workers = workers, Prefetch = 2, TwoViews = true });
            var all = new List<byte[]>();
            foreach (var epoch in new[] { 0, 1 })
                foreach (var b in loader.Epoch(epoch))
                    using (b)
                    {
                        all.Add(Bytes(b.Images));
                        all.Add(Bytes(b.Labels));
                        all.Add(Bytes(b.Images2!));
                        all.Add(Bytes(b.Labels2!));
                        all.Add(System.Text.Encoding.UTF8.GetBytes(string.Join(",", b.Ids)));
                    }
            return all;
        }
        var one = Run(1, seed: 4);
        var three = Run(3, seed: 4);
        Assert.Equal(one.Count, three.Count);
        for (var i = 0; i < one.Count; i++) Assert.True(one[i].SequenceEqual(three[i]), $"tensor {i} differs between 1 and 3 workers");
        Assert.False(one[0].SequenceEqual(one[2]), "the two views should differ");
        Assert.False(one.Zip(Run(1, seed: 5)).All(p => p.First.SequenceEqual(p.Second)), "another seed should differ");
    }

    [Fact]
    public void Steps_resume_at_step_k_with_the_same_batches_and_reshuffle_each_epoch()
    {
        TorchFixture.Init();
        var loader = new SegmentationLoader(new TinyDataset(7), TransformPipeline.FineTune(crop: 6),
            new LoaderOptions { BatchSize = 3, Seed = 9, Workers = 2 });
        Assert.Equal(3, loader.BatchesPerEpoch); // 3 + 3 + 1

        (string Ids, byte[] Images, byte[] Labels) Key(Batch b) { using (b) return (string.Join(",", b.Ids), Bytes(b.Images), Bytes(b.Labels)); }
        var fromZero = loader.Steps(0).Take(8).Select(Key).ToList();
        var fromFive = loader.Steps(5).Take(3).Select(Key).ToList(); // starts mid-epoch 1, crosses into epoch 2
        for (var k = 0; k < 3; k++)
        {
            Assert.Equal(fromZero[5 + k].Ids, fromFive[k].Ids);
            Assert.Equal(fromZero[5 + k].Images, fromFive[k].Images);
            Assert.Equal(fromZero[5 + k].Labels, fromFive[k].Labels);
        }

        var e0 = loader.Order(0);
        var e1 = loader.Order(1);
        Assert.Equal(Enumerable.Range(0, 7), e0.Order());
        Assert.Equal(Enumerable.Range(0, 7), e1.Order());
        Assert.NotEqual(e0, e1);
        Assert.Equal(string.Join(",", e1[..3].Select(i => $"s{i}")), fromZero[3].Ids);
    }

    [Fact]
    public void Worker_failure_reaches_the_consumer_with_the_sample_id_and_file_and_stops_the_workers()
    {
        TorchFixture.Init();
        var data = new TinyDataset(12, failAt: 5);
        var loader = new SegmentationLoader(data, TransformPipeline.Eval(), new LoaderOptions { BatchSize = 2, Shuffle = false, Workers = 3 });
        var seen = 0;
        var e = Assert.Throws<DatasetException>(() =>
        {
            foreach (var b in loader.Epoch(0)) using (b) seen++;
        });
        Assert.Contains("'s5'", e.Message);
        Assert.Contains("/data/s5.png", e.Message);
        Assert.Contains("broken PNG stream", e.Message);
        Assert.Equal("/data/s5.png", e.Path);
        Assert.IsType<DatasetException>(e.InnerException);
        Assert.InRange(seen, 0, 2);
        Assert.NotEmpty(data.Threads.Keys);
        Assert.All(data.Threads.Keys, t => Assert.False(t.IsAlive, $"{t.Name} still running"));

        // Leaving an infinite stream early also ends its workers.
        var stream = new TinyDataset(6);
        var steps = new SegmentationLoader(stream, TransformPipeline.Eval(), new LoaderOptions { BatchSize = 2, Workers = 2 });
        foreach (var b in steps.Steps(0).Take(4)) b.Dispose();
        Assert.All(stream.Threads.Keys, t => Assert.False(t.IsAlive, $"{t.Name} still running"));
    }

    [Fact]
    public void Samples_of_different_sizes_in_one_batch_are_named()
    {
        TorchFixture.Init();
        var loader = new SegmentationLoader(new TinyDataset(4, varySize: true), TransformPipeline.Eval(), new LoaderOptions { BatchSize = 2, Shuffle = false });
        var e = Assert.Throws<DatasetException>(() => loader.Epoch(0).First().Dispose());
        Assert.Contains("'s0' 8x6", e.Message);
        Assert.Contains("'s1' 9x6", e.Message);

        var padded = new SegmentationLoader(new TinyDataset(4, varySize: true), TransformPipeline.Eval(padWidth: 9, padHeight: 6), new LoaderOptions { BatchSize = 2 });
        foreach (var b in padded.Epoch(0)) using (b) Assert.Equal(new long[] { 2, 3, 6, 9 }, b.Images.shape);
    }

    [Fact]
    public void Disposed_batches_leave_no_live_tensors()
    {
        TorchFixture.Init();
        var loader = new SegmentationLoader(new TinyDataset(9), TransformPipeline.FineTune(crop: 6),
            new LoaderOptions { BatchSize = 2, Workers = 2, TwoViews = true });
        foreach (var b in loader.Steps(0).Take(2)) b.Dispose(); // warm-up
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var counts = new List<long>();
        foreach (var b in loader.Steps(0).Take(12))
        {
            using (b) Assert.Equal(b.Count, b.Images.shape[0]);
            counts.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
        Assert.All(counts, c => Assert.Equal(before, c));
    }
}
