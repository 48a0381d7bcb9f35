using System.Text.Json;
using ContrastSeg.Data;
using ContrastSeg.Evaluation;
using ContrastSeg.Models;
using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>Evaluation of a trained model on a split.</summary>
/// <param name="Run">Checkpoint evaluated.</param>
/// <param name="Split">Split name.</param>
/// <param name="Metrics">mIoU, per-class IoU, accuracy.</param>
/// <param name="ClassNames">Class names by index.</param>
/// <param name="Confusion">The confusion matrix (rows = truth).</param>
public sealed record EvalReport(string Run, string Split, SegmentationMetrics Metrics, IReadOnlyList<string> ClassNames, long[][] Confusion);

/// <summary>Pseudo-labels written for the unlabelled images.</summary>
/// <param name="Folder">Folder of index PNGs.</param>
/// <param name="Images">Images labelled.</param>
/// <param name="Coverage">Fraction of their pixels that kept a label.</param>
public sealed record PseudoLabelReport(string Folder, int Images, double Coverage);

/// <summary>
/// A run from its config alone: datasets, labelled subset, augmentation, loader, model
/// initialisation, the stage's objective, training, validation. What the scripts and the ablation
/// grid call.
/// </summary>
public static class Experiment
{
    /// <summary>Trains (or resumes, or finds finished) the run described by <paramref name="config"/>; writes <c>eval.json</c>.</summary>
    public static TrainResult Train(TrainConfig config, TextWriter? console = null)
    {
        TorchRuntime.EnsureInitialized();
        config.Validate();
        console ??= Console.Out;
        var device = Devices.Choose(config.Runtime.Device); // before any work: CUDA asked for where there is none fails here
        var data = DataFactory.Open(config.Data, config.OutputRoot);
        var validating = config.Stage != TrainingStage.Contrastive;
        // Every file the run reads is checked before its first step: a bad validation image found after training would cost the run.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var check = data.CheckBeforeRun(RunParts.Training | (validating ? RunParts.Scoring : RunParts.None));
        var checkedText = check.SamplesChecked == 0 ? "" : $"; {check.SamplesChecked} samples checked in {clock.Elapsed.TotalSeconds:0.0} s";
        if (ClassUsage.Warning(config.Data) is { } unusedClasses) console.WriteLine($"[{config.RunName}] warning: {unusedClasses}");
        Seeding.SeedAll(config.Seed);
        using var model = new DeepLabV3Plus(config.Model.ToOptions(data.Info.NumClasses));
        Initialise(config, model, console);

        using ITrainingObjective objective = config.Stage == TrainingStage.Contrastive
            ? new ContrastiveObjective(config.Contrastive, config.Seed, data.Info.IgnoreLabel)
            : new CrossEntropyObjective(data.Info.IgnoreLabel);
        var d = config.Data;
        var loader = new SegmentationLoader(data.Train, TrainingPipeline(config), TrainingLoaderOptions(config, data), data.Labelled);
        console.WriteLine($"[{config.RunName}] data {data.Source}: {data.Describe(validating)}{checkedText}");

        ConfusionMatrix? lastMatrix = null;
        Func<DeepLabV3Plus, SegmentationMetrics>? validate = validating
            ? m => (lastMatrix = Evaluate(m, data.Val, d, null, data.ValScored, data.ValName)).Metrics()
            : null;
        var result = Trainer.Run(TrainingRun.Of(config, device), model, objective, start => loader.Steps(start), validate, console);
        if (result.Validation is { } metrics && lastMatrix is not null)
        {
            var report = new EvalReport(CheckpointStore.Resolve(result.RunDirectory), d.ValSplit, metrics, data.Info.ClassNames, lastMatrix.ToArray());
            WriteJson(Path.Combine(result.RunDirectory, "eval.json"), report);
        }
        File.WriteAllText(Path.Combine(result.RunDirectory, "data.txt"), data.Source + Environment.NewLine);
        return result;
    }

    /// <summary>The training augmentation of <paramref name="config"/>'s stage (contrastive or cross-entropy).</summary>
    public static TransformPipeline TrainingPipeline(TrainConfig config)
    {
        var d = config.Data;
        return config.Stage == TrainingStage.Contrastive
            ? TransformPipeline.Contrastive(d.Crop, d.ContrastiveDistortion ? d.DistortionStrength : 0, d.ScaleMin, d.ScaleMax)
            : TransformPipeline.FineTune(d.Crop, d.ScaleMin, d.ScaleMax);
    }

    /// <summary>The training loader's options: shuffled, seeded, <c>Data.Workers</c> workers (0: one per core), two views for the cross-image and batch losses.</summary>
    public static LoaderOptions TrainingLoaderOptions(TrainConfig config, RunData data) => new()
    {
        BatchSize = config.Optimizer.BatchSize,
        Shuffle = true,
        Seed = config.Seed,
        Workers = config.Data.Workers > 0 ? config.Data.Workers : ThreadPolicy.DefaultLoaderWorkers(),
        DropLast = data.Labelled.Count >= config.Optimizer.BatchSize,
        TwoViews = config.Stage == TrainingStage.Contrastive && config.Contrastive.Variant != Losses.ContrastiveVariant.WithinImage,
    };

    private static void Initialise(TrainConfig config, DeepLabV3Plus model, TextWriter console)
    {
        if (config.InitFrom is not { } init) return;
        if (File.Exists(init))
        {
            var report = PretrainedWeights.LoadEncoder(model.Backbone, init);
            WeightFit.RequireFullEncoderMatch(report, init, model.Backbone.Options, config.AllowPartialInit);
            console.WriteLine($"[{config.RunName}] encoder from {init}{(report.Missing.Count + report.ShapeMismatched.Count > 0 ? " (partial: AllowPartialInit)" : "")}: {report}");
            return;
        }
        // Fine-tuning drops the projection head (it is not trained) and starts a fresh classifier, so the
        // checkpoint's classifier is not loaded and may have another class count (pretraining on other data).
        var fineTune = config.Stage == TrainingStage.FineTune;
        var checkpoint = CheckpointStore.LoadWeights(init, model, exceptClassifier: fineTune);
        if (!fineTune)
        {
            console.WriteLine($"[{config.RunName}] weights from {checkpoint}");
            return;
        }
        model.ResetClassifier();
        var stored = WeightFit.CheckpointClasses(checkpoint);
        console.WriteLine($"[{config.RunName}] weights from {checkpoint}, all but the classifier: a fresh one for {model.NumClasses} classes" +
                          (stored is { } n && n != model.NumClasses ? $" (the checkpoint's has {n})" : ""));
    }

    /// <summary>
    /// Confusion matrix of <paramref name="model"/> on the images <paramref name="indices"/> (default: all) of
    /// <paramref name="split"/> (whole images, optional TTA), computed on the model's device.
    /// </summary>
    /// <exception cref="DatasetException">The images hold no labelled pixel: a metric over them would be NaN, not a score.</exception>
    public static ConfusionMatrix Evaluate(DeepLabV3Plus model, ISegmentationDataset split, DataSettings data, InferenceOptions? tta,
                                           IReadOnlyList<int>? indices = null, string? splitName = null)
    {
        var matrix = new ConfusionMatrix(split.Info.NumClasses, split.Info.IgnoreLabel);
        var device = Devices.Of(model);
        foreach (var loaded in EvalLoader(split, data, indices).Epoch(0))
        {
            using var scope = NewDisposeScope();
            using (loaded)
            using (var batch = loaded.To(device))
                matrix.Add(Inference.Predict(model, batch.Images, tta), batch.Labels);
        }
        if (matrix.Metrics().Pixels == 0)
            throw new DatasetException($"the {splitName ?? "split"} has no labelled pixel to score ({indices?.Count ?? split.Ids.Count} images, " +
                                       $"every label is the ignore label {split.Info.IgnoreLabel} or missing): its mIoU would be NaN");
        return matrix;
    }

    /// <summary>
    /// Evaluates the checkpoint of a run (best, else latest) on its validation split or another split name, on the device
    /// <c>config.Runtime.Device</c> resolves to (a line on <paramref name="console"/> says which).
    /// </summary>
    public static EvalReport Evaluate(string runOrCheckpoint, TrainConfig config, InferenceOptions? tta = null, string? split = null, TextWriter? console = null)
    {
        var device = StartOn(config, "evaluate", console);
        var d = split is null ? config.Data : config.Data with { ValSplit = split };
        var data = DataFactory.Open(d, config.OutputRoot);
        data.CheckBeforeRun(RunParts.Scoring);
        using var model = Trained(runOrCheckpoint, config, data.Info.NumClasses, device, out var checkpoint);
        var matrix = Evaluate(model, data.Val, d, tta, data.ValScored, data.ValName);
        return new EvalReport(checkpoint, d.ValSplit, matrix.Metrics(), data.Info.ClassNames, matrix.ToArray());
    }

    /// <summary>Writes index PNGs and colour overlays of the predictions for a split (on the device <c>config.Runtime.Device</c> resolves to).</summary>
    public static int Predict(string runOrCheckpoint, TrainConfig config, string outputFolder, InferenceOptions? tta = null, int? limit = null, TextWriter? console = null)
    {
        if (limit is <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "a positive number of images, or null for all");
        var device = StartOn(config, "predict", console);
        var data = DataFactory.Open(config.Data, config.OutputRoot);
        data.CheckBeforeRun(RunParts.ValImages);
        using var model = Trained(runOrCheckpoint, config, data.Info.NumClasses, device, out _);
        Directory.CreateDirectory(outputFolder);
        var count = 0;
        var indexOf = data.Val.Ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        foreach (var loaded in EvalLoader(data.Val, config.Data).Epoch(0))
        {
            using var scope = NewDisposeScope();
            using (loaded)
            using (var batch = loaded.To(device.Device))
            {
                var predictions = Inference.Predict(model, batch.Images, tta).to_type(ScalarType.Byte).cpu();
                for (var i = 0; i < batch.Count && (limit is null || count < limit); i++, count++)
                {
                    var sample = data.Val.Load(indexOf[batch.Ids[i]]);
                    var labels = new LabelMap((int)predictions.shape[2], (int)predictions.shape[1], predictions[i].data<byte>().ToArray());
                    ImageCodec.WriteIndexPng(Path.Combine(outputFolder, batch.Ids[i] + ".png"), labels, data.Info.Palette);
                    ImageCodec.WriteRgbPng(Path.Combine(outputFolder, batch.Ids[i] + "_overlay.png"), ImageCodec.Overlay(sample.Image, labels, data.Info.Palette, 0.5f));
                }
            }
            if (limit is not null && count >= limit) break;
        }
        return count;
    }

    /// <summary>
    /// Predicts the unlabelled training images of <paramref name="config"/>'s labelled subset with the
    /// teacher and writes pseudo-labels (confident pixels only) as index PNGs (on the device <c>config.Runtime.Device</c> resolves to).
    /// </summary>
    public static PseudoLabelReport PseudoLabel(string teacherRun, TrainConfig config, PseudoLabelOptions options, string outputFolder, TextWriter? console = null)
    {
        var device = StartOn(config, "pseudolabel", console);
        var data = DataFactory.Open(config.Data with { PseudoLabels = null }, config.OutputRoot);
        if (data.Unlabelled.Count == 0)
            throw new ConfigException("pseudo-labelling needs unlabelled images: set Data.Labelled below the training split size " +
                                      $"(or, for a folder dataset, list images without a mask in a training split file that holds the line '{FolderDataset.UnlabelledDirective}')", "Data.Labelled");
        data.CheckBeforeRun(RunParts.UnlabelledImages);
        using var model = Trained(teacherRun, config, data.Info.NumClasses, device, out _);
        Directory.CreateDirectory(outputFolder);
        var loader = new SegmentationLoader(data.Train, TransformPipeline.Eval(), EvalOptions(config.Data), data.Unlabelled);
        double kept = 0;
        var images = 0;
        foreach (var loaded in loader.Epoch(0))
        {
            using var scope = NewDisposeScope();
            using (loaded)
            using (var batch = loaded.To(device.Device))
            {
                var labels = PseudoLabels.Select(Inference.Probabilities(model, batch.Images), options, data.Info.IgnoreLabel).to_type(ScalarType.Byte).cpu();
                for (var i = 0; i < batch.Count; i++, images++)
                {
                    kept += PseudoLabels.Coverage(labels[i], data.Info.IgnoreLabel);
                    var map = new LabelMap((int)labels.shape[2], (int)labels.shape[1], labels[i].data<byte>().ToArray());
                    ImageCodec.WriteGrayscalePng(Path.Combine(outputFolder, batch.Ids[i] + ".png"), map);
                }
            }
        }
        var report = new PseudoLabelReport(outputFolder, images, images == 0 ? 0 : kept / images);
        WriteJson(Path.Combine(outputFolder, "pseudo-labels.json"), report);
        return report;
    }

    /// <summary>
    /// Softmax-input features of up to <paramref name="perClass"/> randomly chosen pixels per class of the
    /// validation split (labels nearest-resized to the feature resolution), for t-SNE and statistics. The model runs on
    /// the device <c>config.Runtime.Device</c> resolves to; the sample is returned on the CPU (a few thousand rows that
    /// plots and tables read).
    /// </summary>
    public static (Tensor Features, Tensor Labels) SampleFeatures(string runOrCheckpoint, TrainConfig config, int perClass, int seed, int maxImages = 64)
    {
        var device = StartOn(config, "features", null);
        var data = DataFactory.Open(config.Data, config.OutputRoot);
        data.CheckBeforeRun(RunParts.Scoring);
        using var model = Trained(runOrCheckpoint, config, data.Info.NumClasses, device, out _);
        model.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var feats = new List<Tensor>();
        var labels = new List<Tensor>();
        var seen = 0;
        foreach (var loaded in EvalLoader(data.Val, config.Data, data.ValScored).Epoch(0))
        {
            using (loaded)
            using (var batch = loaded.To(device.Device))
            {
                var f = model.Features(batch.Images);
                var y = Losses.PixelContrastiveLoss.ResizeLabelsNearest(batch.Labels, f.shape[2], f.shape[3]);
                feats.Add(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).cpu());
                labels.Add(y.reshape(-1).cpu());
                seen += batch.Count;
            }
            if (seen >= maxImages) break;
        }
        var all = cat(feats);
        var ally = cat(labels);
        // A CPU generator on CPU rows: the same pixels are sampled whatever device the model ran on.
        using var gen = new Generator(0, device: CPU);
        gen.manual_seed(seed);
        var chosen = new List<Tensor>();
        using var held = new HeldScalars();
        for (var c = 0; c < data.Info.NumClasses; c++)
        {
            var idx = ally.eq(held.Of(c)).nonzero().squeeze(1);
            if (idx.shape[0] == 0) continue;
            chosen.Add(idx.index_select(0, randperm(idx.shape[0], generator: gen, device: CPU).narrow(0, 0, Math.Min(perClass, idx.shape[0]))));
        }
        var pick = cat(chosen);
        return (all.index_select(0, pick).MoveToOuterDisposeScope(), ally.index_select(0, pick).MoveToOuterDisposeScope());
    }

    /// <summary>The device a command runs on (<c>config.Runtime.Device</c> resolved), said on <paramref name="console"/>.</summary>
    private static DeviceChoice StartOn(TrainConfig config, string command, TextWriter? console)
    {
        TorchRuntime.EnsureInitialized();
        var device = Devices.Choose(config.Runtime.Device);
        console?.WriteLine($"[{command}] {device}");
        return device;
    }

    /// <summary>The model of a run or checkpoint folder: weights read from its (device-independent) files, then moved to <paramref name="device"/>.</summary>
    private static DeepLabV3Plus Trained(string runOrCheckpoint, TrainConfig config, int numClasses, DeviceChoice device, out string checkpoint)
    {
        var model = new DeepLabV3Plus(config.Model.ToOptions(numClasses));
        try
        {
            checkpoint = CheckpointStore.LoadWeights(runOrCheckpoint, model);
            model.to(device.Device);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static SegmentationLoader EvalLoader(ISegmentationDataset split, DataSettings data, IReadOnlyList<int>? indices = null) =>
        new(split, TransformPipeline.Eval(), EvalOptions(data), indices);

    private static LoaderOptions EvalOptions(DataSettings data) => new()
    {
        // Scenes share one size and batch well; real photos differ in size: one at a time.
        BatchSize = DatasetRegistry.Get(data.Dataset).SameSizeImages ? 32 : 1,
        Shuffle = false,
        Workers = data.Workers > 0 ? data.Workers : ThreadPolicy.DefaultLoaderWorkers(),
    };

    private static void WriteJson<T>(string path, T value)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(value, new JsonSerializerOptions
        {
            WriteIndented = true,
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        }));
        File.Move(temp, path, true);
    }
}
