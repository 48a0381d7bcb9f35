using ContrastSeg.Data;
using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class ClassificationPretrainingTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "contrastseg-classification-" + Guid.NewGuid().ToString("N"));

    public ClassificationPretrainingTests() => TorchFixture.Init();

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private static readonly EncoderOptions Encoder = new(ResNetDepth.ResNet18, OutputStride: 8, WidthMultiplier: 0.125, Stem: EncoderStem.Small);
    private static readonly ClassificationPretrainingOptions Options = new(Steps: 6, BatchSize: 8, Canvas: 30, CheckpointEvery: 2);

    [Fact]
    public void It_trains_through_the_Trainer_and_a_stopped_run_resumes_to_the_same_weights()
    {
        var source = TinySource();
        var whole = Path.Combine(_root, "whole.safetensors");
        var accuracy = ClassificationPretraining.Run(Encoder, source, Options, whole, TextWriter.Null);
        Assert.InRange(accuracy, 0, 1);
        var run = ClassificationPretraining.RunDirectory(whole);
        Assert.Equal(Path.Combine(_root, "whole"), run);
        Assert.Contains("\"kind\":\"train\"", File.ReadAllText(Path.Combine(run, "metrics.jsonl")));
        Assert.Contains("\"CheckpointEvery\": 2", File.ReadAllText(Path.Combine(run, "config.json")));
        Assert.Equal(new[] { 4, 6 }, new CheckpointStore(run).List().Select(c => c.Step));

        // The same run stopped after its step-4 checkpoint, before it wrote the weights.
        var stopped = Path.Combine(_root, "stopped.safetensors");
        var stoppedRun = ClassificationPretraining.RunDirectory(stopped);
        CopyFolder(run, stoppedRun);
        var checkpoints = new CheckpointStore(stoppedRun);
        Directory.Delete(checkpoints.List()[^1].Path, true);
        Directory.Delete(checkpoints.BestDirectory, true);
        var log = new StringWriter();
        ClassificationPretraining.Run(Encoder, source, Options, stopped, log);
        Assert.Contains("resuming at step 4/6", log.ToString());
        Assert.Equal(File.ReadAllBytes(whole), File.ReadAllBytes(stopped));

        // A finished file is reused.
        log = new StringWriter();
        Assert.True(double.IsNaN(ClassificationPretraining.Run(Encoder, source, Options, stopped, log)));
        Assert.Contains("reusing", log.ToString());
    }

    [Fact]
    public void The_weights_file_is_named_by_every_setting_that_changes_the_weights()
    {
        string File(EncoderOptions e, ClassificationPretrainingOptions o, string root = "items") => ClassificationPretraining.WeightsFile(_root, e, o, root);
        var reference = File(Encoder, Options);
        // Pinned: a renamed file would train again on every machine that has it (names of b9f0dbb).
        Assert.Equal(Path.Combine(_root, "fmnist-classification_r18w0.125-small_6st_s0_bf103e.safetensors"), reference);
        Assert.EndsWith("_be6477.safetensors", File(Encoder, Options, @"C:\items"));
        // A finished file is reused as it is: before, LR, batch, canvas, stem and items mapped to the same name.
        var others = new[]
        {
            File(Encoder, Options with { LearningRate = 0.1 }), File(Encoder, Options with { BatchSize = 16 }),
            File(Encoder, Options with { Canvas = 32 }), File(Encoder with { Stem = EncoderStem.ImageNet }, Options),
            File(Encoder with { OutputStride = 16 }, Options), File(Encoder, Options with { Seed = 1 }),
            File(Encoder, Options with { Steps = 7 }), File(Encoder, Options, "other-items"),
        };
        Assert.Equal(others.Length + 1, others.Append(reference).Distinct().Count());
        // The checkpoint cadence does not change the weights (the run's identity leaves it out too).
        Assert.Equal(reference, File(Encoder, Options with { CheckpointEvery = 5 }));
    }

    [Fact]
    public void A_run_folder_of_other_settings_is_not_resumed()
    {
        var source = TinySource();
        var file = Path.Combine(_root, "weights.safetensors");
        ClassificationPretraining.Run(Encoder, source, Options with { Steps = 2 }, file, TextWriter.Null);
        File.Delete(file);
        var e = Assert.Throws<ConfigException>(() => ClassificationPretraining.Run(Encoder, source, Options with { Steps = 2, LearningRate = 0.01 }, file, TextWriter.Null));
        Assert.Contains("other settings", e.Message);
        // The checkpoint cadence is not a setting of the weights.
        ClassificationPretraining.Run(Encoder, source, Options with { Steps = 2, CheckpointEvery = 5 }, file, TextWriter.Null);
    }

    [Fact]
    public void It_trains_on_the_device_it_is_given_and_records_it_outside_the_run_identity()
    {
        var source = TinySource();
        var file = Path.Combine(_root, "cpu.safetensors");
        var log = new StringWriter();
        ClassificationPretraining.Run(Encoder, source, Options with { Steps = 2 }, file, log, device: "cpu");
        Assert.Contains("device: cpu (Runtime.Device=cpu)", log.ToString());
        var run = ClassificationPretraining.RunDirectory(file);
        Assert.Contains("\"Device\": \"cpu\"", File.ReadAllText(Path.Combine(run, "config.json")));
        // The same run on another device setting is the same run: it resumes (here: finds its last step) instead of refusing.
        File.Delete(file);
        log = new StringWriter();
        ClassificationPretraining.Run(Encoder, source, Options with { Steps = 2 }, file, log, device: "auto");
        Assert.Contains("resuming at step 2/2", log.ToString());
        Assert.Throws<ConfigException>(() => ClassificationPretraining.Run(Encoder, source, Options, Path.Combine(_root, "x.safetensors"), log, device: "gpu"));
    }

    /// <summary>A Fashion-MNIST folder of 80 training and 40 test items of noise (the mechanics, not the accuracy, are tested).</summary>
    private FashionMnistSource TinySource()
    {
        var folder = Path.Combine(_root, "items");
        Directory.CreateDirectory(folder);
        var random = new Random(5);
        foreach (var (split, count) in new[] { ("train", 80), ("t10k", 40) })
        {
            var pixels = new byte[count * 28 * 28];
            random.NextBytes(pixels);
            Idx.WriteImages(Path.Combine(folder, $"{split}-images-idx3-ubyte"), new IdxImages(count, 28, 28, pixels), gzip: false);
            Idx.WriteLabels(Path.Combine(folder, $"{split}-labels-idx1-ubyte"), Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray(), gzip: false);
        }
        return FashionMnistSource.Open(folder);
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
