using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Runtime;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>Settings of the external classification pretraining (the CPU-scale stand-in for ImageNet).</summary>
/// <param name="Steps">SGD steps.</param>
/// <param name="BatchSize">Items per step.</param>
/// <param name="LearningRate">Initial learning rate (cosine decay).</param>
/// <param name="Seed">Seed (weights, order, augmentation).</param>
/// <param name="Canvas">Items are placed at a random offset on a canvas of this size (28 = no shift).</param>
public sealed record ClassificationPretrainingOptions(int Steps = 1500, int BatchSize = 64, double LearningRate = 0.05, int Seed = 0, int Canvas = 32);

/// <summary>
/// The paper's "ImageNet-pretrained" ablation at CPU scale: the encoder is first trained to classify
/// single Fashion-MNIST items with all their labels, then saved like torchvision weights
/// (<c>conv1.*</c> ... <c>layer4.*</c>, <c>fc.*</c>) in a safetensors file that segmentation runs load
/// with <see cref="TrainConfig.InitFrom"/>.
/// </summary>
public static class ClassificationPretraining
{
    /// <summary>Trains and writes <paramref name="outputFile"/>; a finished file is reused. Returns test accuracy (NaN when reused).</summary>
    public static double Run(EncoderOptions encoderOptions, FashionMnistSource source, ClassificationPretrainingOptions o, string outputFile, TextWriter? console = null)
    {
        TorchRuntime.EnsureInitialized();
        console ??= Console.Out;
        if (File.Exists(outputFile))
        {
            console.WriteLine($"[classification-pretraining] reusing {outputFile}");
            return double.NaN;
        }
        Seeding.SeedAll(o.Seed);
        using var encoder = new ResNetEncoder(encoderOptions);
        using var fc = nn.Linear(encoder.HighLevelChannels, FashionMnistItems.ClassNames.Count);
        var parameters = encoder.parameters().Concat(fc.parameters()).ToList();
        using var optimizer = new SgdOptimizer(parameters, o.LearningRate, 0.9, 4e-5);
        var rng = new Random(o.Seed);
        var train = source.Train;
        ProgressDisplay.Run("[classification-pretraining]", o.Steps, 0, console, report =>
        {
            for (var step = 0; step < o.Steps; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.LearningRate = LearningRateSchedule.At(step, o.Steps, o.LearningRate);
                encoder.train();
                var (x, y) = Batch(train, Enumerable.Range(0, o.BatchSize).Select(_ => rng.Next(train.Labels.Length)).ToArray(), o.Canvas, rng);
                optimizer.ZeroGrad();
                var logits = fc.call(encoder.call(x).HighLevel.mean(new long[] { 2, 3 }));
                var loss = nn.functional.cross_entropy(logits, y);
                loss.backward();
                optimizer.Step();
                if ((step + 1) % 50 == 0 || step + 1 == o.Steps) report(step + 1, $"loss {loss.item<float>():F3}");
            }
        });

        var accuracy = Accuracy(encoder, fc, source.Test, o.Canvas);
        console.WriteLine($"[classification-pretraining] test accuracy {100 * accuracy:F1} % on {source.Test.Labels.Length} items");
        var weights = encoder.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        weights["fc.weight"] = fc.weight!;
        weights["fc.bias"] = fc.bias!;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outputFile))!);
        var temp = outputFile + ".tmp";
        Safetensors.SaveStateDict(temp, weights);
        File.Move(temp, outputFile, true);
        return accuracy;
    }

    private static double Accuracy(ResNetEncoder encoder, TorchSharp.Modules.Linear fc, FashionMnistItems test, int canvas)
    {
        encoder.eval();
        using var noGrad = no_grad();
        long correct = 0;
        for (var start = 0; start < test.Labels.Length; start += 256)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(256, test.Labels.Length - start)).ToArray();
            var (x, y) = Batch(test, idx, canvas, null);
            correct += (fc.call(encoder.call(x).HighLevel.mean(new long[] { 2, 3 })).argmax(1) == y).sum().item<long>();
        }
        return (double)correct / test.Labels.Length;
    }

    /// <summary>Items as normalised 3-channel images on a canvas (random offset when <paramref name="rng"/> is given, centred otherwise).</summary>
    private static (Tensor x, Tensor y) Batch(FashionMnistItems items, int[] indices, int canvas, Random? rng)
    {
        var n = indices.Length;
        var pixels = new float[n * canvas * canvas];
        var labels = new long[n];
        for (var b = 0; b < n; b++)
        {
            var image = items.Image(indices[b]);
            labels[b] = items.Labels[indices[b]];
            var max = canvas - 28;
            var (ox, oy) = rng is null ? (max / 2, max / 2) : (rng.Next(max + 1), rng.Next(max + 1));
            var flip = rng is not null && rng.Next(2) == 1;
            for (var r = 0; r < 28; r++)
                for (var c = 0; c < 28; c++)
                    pixels[b * canvas * canvas + (oy + r) * canvas + ox + (flip ? 27 - c : c)] = image[r * 28 + c] / 255f;
        }
        var gray = tensor(pixels).reshape(n, 1, canvas, canvas);
        var mean = tensor(new[] { 0.485f, 0.456f, 0.406f }).reshape(1, 3, 1, 1);
        var std = tensor(new[] { 0.229f, 0.224f, 0.225f }).reshape(1, 3, 1, 1);
        return ((gray.expand(n, 3, canvas, canvas) - mean) / std, tensor(labels));
    }
}
