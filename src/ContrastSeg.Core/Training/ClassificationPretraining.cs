using System.Text.Json;
using System.Text.Json.Serialization;
using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Runtime;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>Settings of the external classification pretraining (the CPU-scale stand-in for ImageNet).</summary>
/// <param name="Steps">SGD steps.</param>
/// <param name="BatchSize">Items per step.</param>
/// <param name="LearningRate">Initial learning rate (cosine decay).</param>
/// <param name="Seed">Seed (weights, order, augmentation).</param>
/// <param name="Canvas">Items are placed at a random offset on a canvas of this size (28 = no shift).</param>
/// <param name="CheckpointEvery">Steps between checkpoints (a killed run resumes from the last one).</param>
public sealed record ClassificationPretrainingOptions(int Steps = 1500, int BatchSize = 64, double LearningRate = 0.05, int Seed = 0, int Canvas = 32,
    int CheckpointEvery = 250);

/// <summary>
/// The paper's "ImageNet-pretrained" ablation at CPU scale: the encoder is first trained to classify
/// single Fashion-MNIST items with all their labels, then saved like torchvision weights
/// (<c>conv1.*</c> ... <c>layer4.*</c>, <c>fc.*</c>) in a safetensors file that segmentation runs load
/// with <see cref="TrainConfig.InitFrom"/>. It trains through <see cref="Trainer"/> like every stage: its run
/// folder (next to the file, named like it) holds config.json, metrics.jsonl and checkpoints, and a run that
/// was stopped resumes exactly.
/// </summary>
public static class ClassificationPretraining
{
    private const double Momentum = 0.9, WeightDecay = 4e-5;

    /// <summary>
    /// Trains and writes <paramref name="outputFile"/>; a finished file is reused. Returns test accuracy (NaN when reused).
    /// <paramref name="device"/> is a device setting (<c>auto</c>, <c>cpu</c>, <c>cuda:N</c>; see <see cref="Devices"/>).
    /// </summary>
    public static double Run(EncoderOptions encoderOptions, FashionMnistSource source, ClassificationPretrainingOptions o, string outputFile, TextWriter? console = null,
        string device = Devices.Auto)
    {
        TorchRuntime.EnsureInitialized();
        console ??= Console.Out;
        if (File.Exists(outputFile))
        {
            console.WriteLine($"[classification-pretraining] reusing {outputFile}");
            return double.NaN;
        }
        if (o.Steps < 1 || o.BatchSize < 1 || !(o.LearningRate > 0) || o.Canvas < FashionMnistItems.Side || o.CheckpointEvery < 1)
            throw new ConfigException($"classification pretraining settings {o} are invalid: Steps, BatchSize, LearningRate and CheckpointEvery must be positive, Canvas at least {FashionMnistItems.Side}.", "Classification");
        var full = Path.GetFullPath(outputFile);
        var run = Describe(encoderOptions, source, o, RunDirectory(outputFile), Devices.Choose(device));

        Seeding.SeedAll(o.Seed);
        using var model = new EncoderClassifier(encoderOptions, FashionMnistItems.ClassNames.Count);
        using var objective = new ClassificationObjective();
        Trainer.Run(run, model, objective, start => Batches(source.Train, o, start), null, console);

        var accuracy = Accuracy(model, source.Test, o.Canvas);
        console.WriteLine($"[classification-pretraining] test accuracy {100 * accuracy:F1} % on {source.Test.Labels.Length} items");
        // The weight file is written from CPU copies, whatever device trained (the safetensors writer reads host memory).
        using var scope = NewDisposeScope();
        var weights = model.Backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.cpu());
        weights["fc.weight"] = model.Fc.weight!.cpu();
        weights["fc.bias"] = model.Fc.bias!.cpu();
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = outputFile + ".tmp";
        Safetensors.SaveStateDict(temp, weights);
        File.Move(temp, outputFile, true);
        return accuracy;
    }

    /// <summary>
    /// The weights file of a classification pretraining under <paramref name="folder"/>, e.g.
    /// <c>fmnist-classification_r18w0.25-small_1500st_s0_1a2b3c.safetensors</c>: the main settings readably, then a hash
    /// of every setting that changes the weights (the whole encoder, the options but the checkpoint cadence, the
    /// items' root), so a run with another LR, batch, canvas or stem never reuses a file it did not train
    /// (<see cref="Run"/> reuses a finished file as it is).
    /// </summary>
    public static string WeightsFile(string folder, EncoderOptions encoder, ClassificationPretrainingOptions o, string? itemsRoot)
    {
        var identity = JsonSerializer.Serialize(new { Encoder = encoder, Options = o with { CheckpointEvery = 1 }, Items = itemsRoot ?? "" }, TrainConfig.Json);
        // The identity as written (a Windows items path keeps its backslashes): files made before keep their names.
        var stem = encoder.Stem == EncoderStem.Small ? "-small" : "";
        return Path.Combine(folder, $"fmnist-classification_r{(int)encoder.Depth}w{RunNames.Number(encoder.WidthMultiplier)}{stem}_{o.Steps}st_s{o.Seed}_{RunNames.Digest(identity, 3)}.safetensors");
    }

    /// <summary>The run folder of the training that writes <paramref name="outputFile"/>: next to it, with its name without the extension.</summary>
    public static string RunDirectory(string outputFile)
    {
        var full = Path.GetFullPath(outputFile);
        return Path.Combine(Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full));
    }

    /// <summary>
    /// What the run's config.json records: the encoder, the settings, which Fashion-MNIST set is read, and the device the
    /// run computed on (not part of its identity; absent in configs written before it was recorded).
    /// </summary>
    private sealed record RunConfig(EncoderOptions Encoder, ClassificationPretrainingOptions Options, string Items,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Device = null);

    private static TrainingRun Describe(EncoderOptions encoder, FashionMnistSource source, ClassificationPretrainingOptions o, string directory, DeviceChoice device)
    {
        var json = JsonSerializer.Serialize(new RunConfig(encoder, o, source.Kind.ToString(), device.Name), TrainConfig.Json);
        return new TrainingRun
        {
            Name = Path.GetFileName(directory),
            Directory = directory,
            Stage = "classification-pretraining",
            Optimizer = new OptimizerSettings { LearningRate = o.LearningRate, Momentum = Momentum, WeightDecay = WeightDecay, Steps = o.Steps, WarmupSteps = 0, BatchSize = o.BatchSize },
            LogEvery = 50,
            CheckpointEvery = o.CheckpointEvery,
            ConfigJson = json,
            Device = device,
            // The checkpoint cadence and the device do not change the weights.
            Identity = stored => JsonSerializer.Deserialize<RunConfig>(stored, TrainConfig.Json) is { } c
                ? JsonSerializer.Serialize(c with { Options = c.Options with { CheckpointEvery = 1 }, Device = null }, TrainConfig.Json)
                : stored,
        };
    }

    /// <summary>
    /// Batch k of the training items: indices, offsets and flips drawn from one <see cref="Random"/> seeded with
    /// the run's seed, in the order of the steps; a run resumed at step k replays the draws of the k steps before
    /// (no images are made for them), so it sees the same batches as a run that was never stopped.
    /// </summary>
    private static IEnumerable<Batch> Batches(FashionMnistItems items, ClassificationPretrainingOptions o, long start)
    {
        var rng = new Random(o.Seed);
        for (long k = 0; k < start; k++) Draw(items, o.BatchSize, o.Canvas, rng);
        while (true)
        {
            var draw = Draw(items, o.BatchSize, o.Canvas, rng);
            var (x, y) = Images(items, draw, o.Canvas);
            yield return new Batch(draw.Indices.Select(i => $"item-{i}").ToArray(), x, y);
        }
    }

    private sealed record Placement(int[] Indices, (int X, int Y, bool Flip)[] Offsets);

    private static Placement Draw(FashionMnistItems items, int count, int canvas, Random rng)
    {
        var indices = Enumerable.Range(0, count).Select(_ => rng.Next(items.Labels.Length)).ToArray();
        var max = canvas - FashionMnistItems.Side;
        var offsets = new (int, int, bool)[count];
        for (var b = 0; b < count; b++) offsets[b] = (rng.Next(max + 1), rng.Next(max + 1), rng.Next(2) == 1);
        return new Placement(indices, offsets);
    }

    private static double Accuracy(EncoderClassifier model, FashionMnistItems test, int canvas)
    {
        model.eval();
        using var noGrad = no_grad();
        var device = Devices.Of(model);
        long correct = 0;
        var centred = (canvas - FashionMnistItems.Side) / 2;
        for (var start = 0; start < test.Labels.Length; start += 256)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(256, test.Labels.Length - start)).ToArray();
            var (x, y) = Images(test, new Placement(idx, idx.Select(_ => (centred, centred, false)).ToArray()), canvas);
            correct += model.call(x.to(device)).argmax(1).eq(y.to(device)).sum().item<long>();
        }
        return (double)correct / test.Labels.Length;
    }

    /// <summary>Items as normalised 3-channel images on a canvas, at the given offsets.</summary>
    private static (Tensor x, Tensor y) Images(FashionMnistItems items, Placement placement, int canvas)
    {
        const int side = FashionMnistItems.Side;
        var n = placement.Indices.Length;
        var pixels = new float[n * canvas * canvas];
        var labels = new long[n];
        for (var b = 0; b < n; b++)
        {
            var image = items.Image(placement.Indices[b]);
            labels[b] = items.Labels[placement.Indices[b]];
            var (ox, oy, flip) = placement.Offsets[b];
            for (var r = 0; r < side; r++)
                for (var c = 0; c < side; c++)
                    pixels[b * canvas * canvas + (oy + r) * canvas + ox + (flip ? side - 1 - c : c)] = image[r * side + c] / 255f;
        }
        using var scope = NewDisposeScope();
        // Made in host memory like every loader's batch; the trainer moves each batch to the model's device once per step.
        var gray = tensor(pixels, device: CPU).reshape(n, 1, canvas, canvas);
        var mean = tensor(new[] { 0.485f, 0.456f, 0.406f }, device: CPU).reshape(1, 3, 1, 1);
        var std = tensor(new[] { 0.229f, 0.224f, 0.225f }, device: CPU).reshape(1, 3, 1, 1);
        return (((gray.expand(n, 3, canvas, canvas) - mean) / std).MoveToOuterDisposeScope(), tensor(labels, device: CPU).MoveToOuterDisposeScope());
    }

    private sealed class ClassificationObjective : ITrainingObjective<EncoderClassifier>
    {
        public string Term => "cross_entropy";

        public Generator? Generator => null;

        public Tensor Loss(EncoderClassifier model, Batch batch)
        {
            using var scope = NewDisposeScope();
            return nn.functional.cross_entropy(model.call(batch.Images), batch.Labels).MoveToOuterDisposeScope();
        }

        // The encoder's parameters, then the classifier's.
        public IEnumerable<Parameter> Parameters(EncoderClassifier model) => model.parameters();

        public void Dispose() { }
    }
}

/// <summary>The encoder with a linear classifier on its globally averaged layer4 features (the classification pretraining's network).</summary>
public sealed class EncoderClassifier : nn.Module<Tensor, Tensor>
{
    private readonly ResNetEncoder backbone;
    private readonly Linear fc;

    /// <summary>An encoder of <paramref name="options"/> and a classifier for <paramref name="classes"/> classes (made in that order: the seed decides both).</summary>
    public EncoderClassifier(EncoderOptions options, int classes) : base(nameof(EncoderClassifier))
    {
        backbone = new ResNetEncoder(options);
        fc = nn.Linear(backbone.HighLevelChannels, classes);
        RegisterComponents();
    }

    /// <summary>The encoder (what the exported weights hold, with torchvision's names).</summary>
    public ResNetEncoder Backbone => backbone;

    /// <summary>The classifier.</summary>
    public Linear Fc => fc;

    /// <inheritdoc/>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        return fc.call(backbone.call(images).HighLevel.mean(new long[] { 2, 3 })).MoveToOuterDisposeScope();
    }
}
