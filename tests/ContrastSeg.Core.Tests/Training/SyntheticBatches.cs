using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Training;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// A deterministic batch source for trainer tests: micro-batch k is a pure function of k (so resume
/// can be checked exactly). Images are noise with a bright square; labels mark the square as class 1
/// (some pixels 255) and the rest 0.
/// </summary>
internal static class SyntheticBatches
{
    public const int NumClasses = 3;

    public static Batch At(long index, int batchSize = 2, int size = 32)
    {
        using var gen = new Generator(0, CPU);
        gen.manual_seed(1000 + index);
        var images = randn(new long[] { batchSize, 3, size, size }, generator: gen);
        var labels = zeros(new long[] { batchSize, size, size }, ScalarType.Int64);
        for (var b = 0; b < batchSize; b++)
        {
            var y0 = randint(0, size / 2, new long[] { 1 }, generator: gen).item<long>();
            var x0 = randint(0, size / 2, new long[] { 1 }, generator: gen).item<long>();
            var cls = 1 + randint(0, NumClasses - 1, new long[] { 1 }, generator: gen).item<long>();
            images[b, .., (int)y0..(int)(y0 + size / 3), (int)x0..(int)(x0 + size / 3)].add_(2.0 * cls);
            labels[b, (int)y0..(int)(y0 + size / 3), (int)x0..(int)(x0 + size / 3)] = tensor(cls);
            labels[b, 0, ..] = tensor(255L);
        }
        return new Batch(Enumerable.Range(0, batchSize).Select(i => $"synthetic-{index}-{i}").ToArray(), images, labels,
            images.flip(3), labels.flip(2));
    }

    public static Func<long, IEnumerable<Batch>> Source(Func<long, bool>? failAt = null) => start => Stream(start, failAt);

    private static IEnumerable<Batch> Stream(long start, Func<long, bool>? failAt)
    {
        for (var k = start; ; k++)
        {
            if (failAt?.Invoke(k) == true) throw new IOException($"simulated crash at micro-batch {k}");
            yield return At(k);
        }
    }

    public static TrainConfig Config(string root, TrainingStage stage = TrainingStage.CrossEntropy, int steps = 8) => new()
    {
        Stage = stage,
        Seed = 3,
        OutputRoot = root,
        Name = "synthetic",
        Model = new ModelSettings { WidthMultiplier = 0.125, AsppChannels = 16, LowLevelChannels = 8, DecoderChannels = 16, ProjectionChannels = 16 },
        Optimizer = new OptimizerSettings { LearningRate = 0.05, Steps = steps, BatchSize = 2, WarmupSteps = 1 },
        Contrastive = new ContrastiveSettings { ResizeTo = 8, Temperature = 0.2 },
        LogEvery = 2,
        CheckpointEvery = 3,
        KeepLast = 2,
    };

    public static DeepLabV3Plus Model(TrainConfig config)
    {
        ContrastSeg.Runtime.Seeding.SeedAll(config.Seed);
        return new DeepLabV3Plus(config.Model.ToOptions(NumClasses));
    }
}
