using System.Diagnostics;
using System.Text.Json.Nodes;
using ContrastSeg.Data;
using ContrastSeg.Runtime;
using ContrastSeg.Training;

namespace ContrastSeg.Bench;

/// <summary>
/// The training loader of a preset, built as <c>Runs.Train</c> builds it: the preset's datasets
/// (<see cref="DataFactory.Open"/>), its stage's augmentation (<see cref="TransformPipeline.FineTune"/> for the
/// cross-entropy stages, <see cref="TransformPipeline.Contrastive"/> for the contrastive one), its batch size, and
/// a second view when the contrastive variant needs one.
/// </summary>
internal sealed record LoaderSetup(ISegmentationDataset Dataset, TransformPipeline Pipeline, LoaderOptions Options, IReadOnlyList<int> Indices, string Description)
{
    /// <summary>
    /// From a case spec: <c>data=scenes</c> (the <c>cpu</c> preset: embedded Fashion-MNIST scenes) or <c>data=voc</c>
    /// (the <c>voc</c> preset on the folder <c>root=</c>), <c>stage=baseline|contrastive</c>, <c>views=1|2</c> (two
    /// views: the cross-image variant), <c>workers=</c>.
    /// </summary>
    public static LoaderSetup FromSpec(IReadOnlyDictionary<string, string> spec, string outputRoot)
    {
        var stage = spec.GetValueOrDefault("stage") == "contrastive" ? TrainingStage.Contrastive : TrainingStage.CrossEntropy;
        var config = spec["data"] switch
        {
            "scenes" => TrainPresets.Get("cpu", stage),
            "voc" => TrainPresets.Get("voc", stage, spec["root"]),
            var other => throw new ArgumentException($"unknown loader data '{other}'"),
        };
        if (spec.GetValueOrDefault("views") == "2")
            config = config with { Contrastive = config.Contrastive with { Variant = Losses.ContrastiveVariant.CrossImage } };
        config = config with { Data = config.Data with { Workers = int.Parse(spec["workers"]) } };
        var data = DataFactory.Open(config.Data, outputRoot);
        // The loader Runs.Train builds for this config.
        var pipeline = RunSession.TrainingPipeline(config);
        var options = RunSession.TrainingLoaderOptions(config, data);
        var description = $"{data.Source.Split(':')[0]}: {data.Labelled.Count} images, {string.Join(" > ", pipeline.Steps.Select(StepName))}, batch {options.BatchSize}" +
                          (options.TwoViews ? ", two views" : "");
        return new LoaderSetup(data.Train, pipeline, options, data.Labelled, description);
    }

    public static string StepName(IJointTransform step) => step switch
    {
        RandomScale s => $"scale {s.MinScale}-{s.MaxScale}",
        PadToSize p => $"pad {p.Width}",
        RandomCrop c => $"crop {c.Width}",
        RandomHorizontalFlip => "flip",
        ColorJitter j => $"jitter {j.Brightness:0.##}/{j.Contrast:0.##}/{j.Saturation:0.##}/{j.Hue:0.##} p{j.Probability:0.##}",
        RandomGrayscale g => $"gray p{g.Probability:0.##}",
        _ => step.GetType().Name,
    };
}

/// <summary>
/// The child-process side of a loader case: images per second delivered by <see cref="SegmentationLoader"/>
/// (decoded, augmented, normalised, stacked into batch tensors on this thread), median over repetitions of
/// <c>batches=</c> consecutive batches each (every repetition a fresh pass of the worker threads, at another
/// place in the epochs). With <c>profile=1</c>, also the serial cost of each stage per sample.
/// </summary>
internal static class LoaderCase
{
    public static JsonObject Run(IReadOnlyDictionary<string, string> spec)
    {
        var status = TorchRuntime.EnsureInitialized();
        var scratch = Directory.CreateTempSubdirectory("contrastseg-bench-loader-");
        try
        {
            var setup = LoaderSetup.FromSpec(spec, scratch.FullName);
            var reps = int.Parse(spec["reps"]);
            var batches = int.Parse(spec["batches"]);
            var loader = new SegmentationLoader(setup.Dataset, setup.Pipeline, setup.Options, setup.Indices);

            // Warm-up: JIT, codec initialisation, the thread pool of the first tensors.
            Consume(loader, 0, Math.Min(3, loader.BatchesPerEpoch));
            var rates = new List<double>();
            var times = new List<double>();
            var (gen0, gen2, pause, allocated) = (GC.CollectionCount(0), GC.CollectionCount(2), GC.GetTotalPauseDuration(), GC.GetTotalAllocatedBytes());
            long start = loader.BatchesPerEpoch; // past the warm-up's batches
            for (var r = 0; r < reps; r++)
            {
                var (images, seconds) = Consume(loader, start, batches);
                start += batches;
                rates.Add(images / seconds);
                times.Add(seconds);
            }
            var totalSeconds = times.Sum();
            var result = new JsonObject
            {
                ["gc"] = new JsonObject
                {
                    ["gen0_collections"] = GC.CollectionCount(0) - gen0,
                    ["gen2_collections"] = GC.CollectionCount(2) - gen2,
                    ["pause_fraction"] = Math.Round((GC.GetTotalPauseDuration() - pause).TotalSeconds / totalSeconds, 4),
                    ["allocated_mb_per_image"] = Math.Round((GC.GetTotalAllocatedBytes() - allocated) / 1e6 / (reps * batches * setup.Options.BatchSize), 2),
                },
                ["data"] = spec["data"],
                ["stage"] = spec.GetValueOrDefault("stage") ?? "baseline",
                ["views"] = setup.Options.TwoViews ? 2 : 1,
                ["workers"] = loader.Workers,
                ["batch"] = setup.Options.BatchSize,
                ["description"] = setup.Description,
                ["images_per_rep"] = batches * setup.Options.BatchSize,
                ["rep_seconds"] = Measure.ToJson(times),
                ["images_per_s_samples"] = Measure.ToJson(rates),
                ["images_per_s"] = Math.Round(Measure.Median(rates), 2),
                ["threads"] = status.Threads,
            };
            if (spec.GetValueOrDefault("profile") == "1") result["profile_ms_per_sample"] = Profile(setup, samples: int.Parse(spec.GetValueOrDefault("profile_samples") ?? "40"));
            return result;
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    /// <summary>Takes <paramref name="batches"/> batches from global step <paramref name="first"/> on; images delivered (both views count once) and seconds.</summary>
    private static (int Images, double Seconds) Consume(SegmentationLoader loader, long first, int batches)
    {
        var watch = Stopwatch.StartNew();
        var images = 0;
        var taken = 0;
        foreach (var batch in loader.Steps(first))
        {
            images += batch.Count;
            batch.Dispose();
            if (++taken == batches) break;
        }
        var seconds = watch.Elapsed.TotalSeconds;
        return (images, seconds);
    }

    /// <summary>
    /// Serial cost per sample of each stage on this thread, in ms, averaged over samples (so a step applied with
    /// probability p counts p times its cost): loading (JPEG/PNG decoding, or rendering a scene), each augmentation
    /// step, the normalisation to CHW floats. Not included: stacking into batch tensors.
    /// </summary>
    private static JsonObject Profile(LoaderSetup setup, int samples)
    {
        var stages = new Dictionary<string, List<double>> { ["load (decode / render)"] = [] };
        foreach (var step in setup.Pipeline.Steps) stages[LoaderSetup.StepName(step)] = [];
        stages["normalise to CHW"] = [];
        stages["total"] = [];
        for (var k = 0; k < samples; k++)
        {
            var index = setup.Indices[k % setup.Indices.Count];
            var rng = SegmentationLoader.SampleRandom(setup.Options.Seed, 0, index, 0);
            var total = Stopwatch.StartNew();
            var watch = Stopwatch.StartNew();
            var sample = setup.Dataset.Load(index);
            stages["load (decode / render)"].Add(watch.Elapsed.TotalMilliseconds);
            var joint = new JointSample(sample.Image, sample.Labels);
            foreach (var step in setup.Pipeline.Steps)
            {
                watch.Restart();
                joint = step.Apply(joint, rng);
                stages[LoaderSetup.StepName(step)].Add(watch.Elapsed.TotalMilliseconds);
            }
            watch.Restart();
            setup.Pipeline.Normalization.ToChw(joint.Image);
            stages["normalise to CHW"].Add(watch.Elapsed.TotalMilliseconds);
            stages["total"].Add(total.Elapsed.TotalMilliseconds);
        }
        var result = new JsonObject();
        foreach (var (name, values) in stages) result[name] = Math.Round(values.Average(), 3);
        return result;
    }
}
