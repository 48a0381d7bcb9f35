using ContrastSeg.Data;
using ContrastSeg.Evaluation;
using ContrastSeg.Models;
using ContrastSeg.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>
/// A run's data and device, opened once, and what can be done with them: train a stage, evaluate, predict,
/// pseudo-label, sample features. A grid cell makes one per data setting its stages share, so that its
/// stages, its pseudo-labels and its final evaluation read the datasets opened (and checked) once; a
/// command of the CLI makes one for itself (<see cref="Runs"/>).
/// </summary>
/// <remarks>
/// What the session opens is defined by the settings of <see cref="DataSettings"/> that choose images and labels
/// (<see cref="OpeningOf"/>); a stage whose other data settings differ (those marked <see cref="ShapesBatchesOnlyAttribute"/>:
/// crop, scale range, colour distortion, pseudo-labels) runs in the same session. Each part of the data (training images, scored
/// validation images, ...) is checked once, before the first command that reads it.
/// </remarks>
public sealed class RunSession
{
    private readonly DataSettings _opening;
    private readonly string _outputRoot;
    private readonly RunData _data;
    private readonly Dictionary<string, RunData> _otherSplits = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RunData> _withPseudoLabels = new(StringComparer.Ordinal);
    // Per data, each part checked and the largest model minimum (image side) it was checked against.
    private readonly Dictionary<RunData, Dictionary<RunParts, int>> _checked = new(ReferenceEqualityComparer.Instance);
    private static readonly RunParts[] SingleParts = [RunParts.Training, RunParts.Scoring, RunParts.ValImages, RunParts.UnlabelledImages];

    private RunSession(DataSettings data, string outputRoot, DeviceChoice device)
    {
        _opening = OpeningOf(data);
        _outputRoot = outputRoot;
        Device = device;
        _data = DataFactory.Open(_opening, outputRoot);
        Opened = 1;
    }

    /// <summary>
    /// Resolves the device of <paramref name="config"/> (before any work: CUDA asked for where there is none fails
    /// here) and opens its data (without pseudo-labels: stages that train on them add them).
    /// </summary>
    public static RunSession Open(TrainConfig config) => Open(config, trains: false);

    /// <summary>
    /// <see cref="Open(TrainConfig)"/>; with <paramref name="trains"/>, <c>OutputRoot</c> is checked writable after the device
    /// and before the data is opened (which writes the labelled subset's list under it).
    /// </summary>
    /// <exception cref="OutputFolderException">With <paramref name="trains"/>: OutputRoot cannot be written.</exception>
    public static RunSession Open(TrainConfig config, bool trains)
    {
        TorchRuntime.EnsureInitialized();
        var device = Devices.Choose(config.Runtime.Device);
        if (trains) OutputFolder.RequireWritable(config.OutputRoot, "OutputRoot, where runs are written", "set another OutputRoot (--set OutputRoot=<folder>)");
        return new RunSession(config.Data, config.OutputRoot, device);
    }

    /// <summary>The device every command of the session runs on.</summary>
    public DeviceChoice Device { get; }

    /// <summary>The data opened: the training split, its labelled subset, the validation split.</summary>
    public RunData Data => _data;

    /// <summary>How many times the session has opened a dataset (the data, then once per other evaluation split): what a test counts.</summary>
    public int Opened { get; private set; }

    /// <summary>
    /// The settings of <paramref name="d"/> that choose which images and labels are opened: every data setting but those
    /// marked <see cref="ShapesBatchesOnlyAttribute"/>, which are set to their defaults.
    /// </summary>
    public static DataSettings OpeningOf(DataSettings d)
    {
        var opening = d with { };
        foreach (var p in BatchShapingSettings) p.SetValue(opening, p.GetValue(DataDefaults));
        return opening;
    }

    private static readonly DataSettings DataDefaults = new();

    private static readonly System.Reflection.PropertyInfo[] BatchShapingSettings =
        typeof(DataSettings).GetProperties().Where(p => p.IsDefined(typeof(ShapesBatchesOnlyAttribute), inherit: false)).ToArray();

    /// <summary>Whether a stage with data settings <paramref name="d"/> on <paramref name="device"/> can run in this session.</summary>
    public bool Serves(DataSettings d, string device) =>
        OpeningOf(d) == _opening && Devices.Normalize(device) is { } asked && (asked == Devices.Auto || asked == Device.Name);

    /// <summary>Trains (or resumes, or finds finished) the stage <paramref name="config"/>; writes <c>eval.json</c> when it validates.</summary>
    /// <exception cref="ConfigException">The stage reads other data than the session's (its dataset, splits, subset, ...).</exception>
    public TrainResult Train(TrainConfig config, TextWriter? console = null)
    {
        config.Validate();
        console ??= Console.Out;
        Require(config);
        // Which checkpoint a run folder gives (an unfinished run is refused) is settled before the run folder is made.
        var source = config.InitFrom is { } init && !File.Exists(init) ? InitSource.Choose(init, config.AllowUnfinishedInit) : null;
        var data = config.Data.PseudoLabels is { } folder ? PseudoLabelled(folder) : _data;
        var validating = config.Stage != TrainingStage.Contrastive;
        // Every file the run reads is checked before its first step: a bad validation image found after training would cost the run.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var check = Check(data, RunParts.Training | (validating ? RunParts.Scoring : RunParts.None), config.Model);
        var checkedText = check is { SamplesChecked: > 0 } ? $"; {check.SamplesChecked} samples checked in {clock.Elapsed.TotalSeconds:0.0} s" : "";
        if (ClassUsage.Warning(config.Data) is { } unusedClasses) console.WriteLine($"[{config.RunName}] warning: {unusedClasses}");
        // Taken once the data passed its check (bad data leaves no run folder), held until eval.json and data.txt are
        // written: a second training of the folder is refused before it loads weights or takes a step.
        using var held = RunLock.Acquire(config.RunDirectory);
        Seeding.SeedAll(config.Seed);
        using var model = new DeepLabV3Plus(config.Model.ToOptions(data.Info.NumClasses));
        Initialise(config, source, model, console);

        using ITrainingObjective objective = Objective(config, data.Info);
        var d = config.Data;
        var loader = new SegmentationLoader(data.Train, TrainingPipeline(config), TrainingLoaderOptions(config, data), data.Labelled);
        console.WriteLine($"[{config.RunName}] data {data.Source}: {data.Describe(validating)}{checkedText}");
        foreach (var note in check?.Notes ?? []) console.WriteLine($"[{config.RunName}] note: {note}");

        ConfusionMatrix? lastMatrix = null;
        Func<DeepLabV3Plus, SegmentationMetrics>? validate = validating
            ? m => (lastMatrix = Evaluate(m, data.Val, d, null, data.ValScored, data.ValName)).Metrics()
            : null;
        var result = Trainer.RunLocked(TrainingRun.Of(config, Device), model, objective, start => loader.Steps(start), validate, console);
        if (result.Validation is { } metrics && lastMatrix is not null)
        {
            var report = new EvalReport(CheckpointStore.Resolve(result.RunDirectory), d.ValSplit, metrics, data.Info.ClassNames, lastMatrix.ToArray());
            Reports.WriteJson(Path.Combine(result.RunDirectory, "eval.json"), report);
        }
        File.WriteAllText(Path.Combine(result.RunDirectory, "data.txt"), data.Source + Environment.NewLine);
        return result;
    }

    /// <summary>
    /// Evaluates the checkpoint of a run (best, else latest) on the validation split, or on the split named
    /// <paramref name="split"/> (opened once per session), with a model of <paramref name="model"/>'s settings.
    /// </summary>
    public EvalReport Evaluate(string runOrCheckpoint, ModelSettings model, InferenceOptions? tta = null, string? split = null)
    {
        var data = Split(split);
        Check(data, RunParts.Scoring, model);
        using var trained = Trained(runOrCheckpoint, model, data.Info.NumClasses, out var checkpoint);
        var matrix = Evaluate(trained, data.Val, _opening, tta, data.ValScored, data.ValName);
        return new EvalReport(checkpoint, split ?? _opening.ValSplit, matrix.Metrics(), data.Info.ClassNames, matrix.ToArray());
    }

    /// <summary>Writes index PNGs and colour overlays of the predictions for the validation split (up to <paramref name="limit"/> images).</summary>
    public int Predict(string runOrCheckpoint, ModelSettings model, string outputFolder, InferenceOptions? tta = null, int? limit = null)
    {
        if (limit is <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "a positive number of images, or null for all");
        // Data first: a refused image leaves no output folder behind.
        Check(_data, RunParts.ValImages, model);
        OutputFolder.RequireWritable(outputFolder, "where predictions are written", "pass another folder (predict --output <folder>)");
        using var trained = Trained(runOrCheckpoint, model, _data.Info.NumClasses, out _);
        var count = 0;
        var val = _data.Val;
        var indexOf = val.Ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        foreach (var loaded in EvalLoader(val, _opening).Epoch(0))
        {
            using var scope = NewDisposeScope();
            using (loaded)
            using (var batch = loaded.To(Device.Device))
            {
                var predictions = Inference.Predict(trained, batch.Images, tta).to_type(ScalarType.Byte).cpu();
                for (var i = 0; i < batch.Count && (limit is null || count < limit); i++, count++)
                {
                    var sample = val.Load(indexOf[batch.Ids[i]]);
                    var labels = new LabelMap((int)predictions.shape[2], (int)predictions.shape[1], predictions[i].data<byte>().ToArray());
                    ImageCodec.WriteIndexPng(Path.Combine(outputFolder, batch.Ids[i] + ".png"), labels, _data.Info.Palette);
                    ImageCodec.WriteRgbPng(Path.Combine(outputFolder, batch.Ids[i] + "_overlay.png"), ImageCodec.Overlay(sample.Image, labels, _data.Info.Palette, 0.5f));
                }
            }
            if (limit is not null && count >= limit) break;
        }
        return count;
    }

    /// <summary>
    /// Predicts the unlabelled training images (outside the labelled subset) with the teacher and writes
    /// pseudo-labels (confident pixels only) as index PNGs, and <c>pseudo-labels.json</c> (the report) last.
    /// </summary>
    public PseudoLabelReport PseudoLabel(string teacherRun, ModelSettings model, PseudoLabelOptions options, string outputFolder)
    {
        if (_data.Unlabelled.Count == 0)
            throw new ConfigException("pseudo-labelling needs unlabelled images: set Data.Labelled below the training split size " +
                                      $"(or, for a folder dataset, list images without a mask in a training split file that holds the line '{FolderDataset.UnlabelledDirective}')", "Data.Labelled");
        Check(_data, RunParts.UnlabelledImages, model);
        OutputFolder.RequireWritable(outputFolder, "where pseudo-labels are written", "pass another folder (pseudolabel --output <folder>)");
        using var trained = Trained(teacherRun, model, _data.Info.NumClasses, out _);
        var loader = new SegmentationLoader(_data.Train, TransformPipeline.Eval(), EvalOptions(_opening), _data.Unlabelled);
        double kept = 0;
        var images = 0;
        foreach (var loaded in loader.Epoch(0))
        {
            using var scope = NewDisposeScope();
            using (loaded)
            using (var batch = loaded.To(Device.Device))
            {
                var labels = PseudoLabels.Select(Inference.Probabilities(trained, batch.Images), options, _data.Info.IgnoreLabel).to_type(ScalarType.Byte).cpu();
                for (var i = 0; i < batch.Count; i++, images++)
                {
                    kept += PseudoLabels.Coverage(labels[i], _data.Info.IgnoreLabel);
                    var map = new LabelMap((int)labels.shape[2], (int)labels.shape[1], labels[i].data<byte>().ToArray());
                    ImageCodec.WriteGrayscalePng(Path.Combine(outputFolder, batch.Ids[i] + ".png"), map);
                }
            }
        }
        var report = new PseudoLabelReport(outputFolder, images, images == 0 ? 0 : kept / images);
        Reports.WriteJson(PseudoLabelReport.FileIn(outputFolder), report);
        return report;
    }

    /// <summary>
    /// Softmax-input features of up to <paramref name="perClass"/> randomly chosen pixels per class of the first
    /// <paramref name="maxImages"/> scored validation images (labels nearest-resized to the feature resolution), for
    /// t-SNE and statistics. The sample is returned on the CPU (a few thousand rows that plots and tables read).
    /// </summary>
    public (Tensor Features, Tensor Labels) SampleFeatures(string runOrCheckpoint, ModelSettings model, int perClass, int seed, int maxImages = 64)
    {
        Check(_data, RunParts.Scoring, model);
        using var trained = Trained(runOrCheckpoint, model, _data.Info.NumClasses, out _);
        trained.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var feats = new List<Tensor>();
        var labels = new List<Tensor>();
        var seen = 0;
        foreach (var loaded in EvalLoader(_data.Val, _opening, _data.ValScored).Epoch(0))
        {
            using (loaded)
            using (var batch = loaded.To(Device.Device))
            {
                var f = trained.Features(batch.Images);
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
        for (var c = 0; c < _data.Info.NumClasses; c++)
        {
            var idx = ally.eq(held.Of(c)).nonzero().squeeze(1);
            if (idx.shape[0] == 0) continue;
            chosen.Add(idx.index_select(0, randperm(idx.shape[0], generator: gen, device: CPU).narrow(0, 0, Math.Min(perClass, idx.shape[0]))));
        }
        var pick = cat(chosen);
        return (all.index_select(0, pick).MoveToOuterDisposeScope(), ally.index_select(0, pick).MoveToOuterDisposeScope());
    }

    /// <summary>The loss of <paramref name="config"/>'s stage on data described by <paramref name="info"/>.</summary>
    public static ITrainingObjective Objective(TrainConfig config, DatasetInfo info) => config.Stage switch
    {
        TrainingStage.Contrastive => new ContrastiveObjective(config.Contrastive, config.Seed, info.IgnoreLabel, info.NumClasses),
        TrainingStage.Joint => new JointObjective(config.Contrastive, config.Seed, info.IgnoreLabel, info.NumClasses),
        _ => new CrossEntropyObjective(info.IgnoreLabel),
    };

    /// <summary>The training augmentation of <paramref name="config"/>'s stage (contrastive, or that of the stages with a classifier).</summary>
    public static TransformPipeline TrainingPipeline(TrainConfig config)
    {
        var d = config.Data;
        return config.Stage == TrainingStage.Contrastive
            ? TransformPipeline.Contrastive(d.Crop, d.ContrastiveDistortion ? d.DistortionStrength : 0, d.ScaleMin, d.ScaleMax)
            : TransformPipeline.FineTune(d.Crop, d.ScaleMin, d.ScaleMax);
    }

    /// <summary>The training loader's options: shuffled, seeded, <c>Data.Workers</c> workers (0: one per core), two views for the cross-image and batch losses (contrastive and joint stages).</summary>
    public static LoaderOptions TrainingLoaderOptions(TrainConfig config, RunData data) => new()
    {
        BatchSize = config.Optimizer.BatchSize,
        Shuffle = true,
        Seed = config.Seed,
        Workers = config.Data.Workers > 0 ? config.Data.Workers : ThreadPolicy.DefaultLoaderWorkers(),
        DropLast = data.Labelled.Count >= config.Optimizer.BatchSize,
        TwoViews = config.Stage is TrainingStage.Contrastive or TrainingStage.Joint && config.Contrastive.Variant != Losses.ContrastiveVariant.WithinImage,
    };

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

    private void Require(TrainConfig config)
    {
        if (Serves(config.Data, config.Runtime.Device)) return;
        var field = OpeningOf(config.Data) == _opening ? Devices.Field : "Data";
        throw new ConfigException($"stage {config.RunName} reads other data or asks another device ({field}) than the session opened " +
                                  $"({_opening.Dataset} '{_opening.TrainSplit}'/'{_opening.ValSplit}', {Device.Name}): open a session for it", field);
    }

    /// <summary>The data with <paramref name="split"/> as the split evaluated (null: the validation split), each opened once.</summary>
    private RunData Split(string? split)
    {
        if (split is null || split == _opening.ValSplit) return _data;
        if (!_otherSplits.TryGetValue(split, out var data))
        {
            data = DataFactory.Open(_opening with { ValSplit = split }, _outputRoot);
            _otherSplits[split] = data;
            Opened++;
        }
        return data;
    }

    private RunData PseudoLabelled(string folder)
    {
        if (!_withPseudoLabels.TryGetValue(folder, out var data))
            _withPseudoLabels[folder] = data = DataFactory.WithPseudoLabels(_data, folder);
        return data;
    }

    /// <summary>
    /// Checks the parts of <paramref name="data"/> not checked yet for a model of <paramref name="model"/>'s settings
    /// (null when there was none left): files, and image sizes against the model's minimum input after <c>Data.Resize</c>.
    /// </summary>
    private ValidationReport? Check(RunData data, RunParts parts, ModelSettings model)
    {
        var minimum = MinimumImageSize.OfModel(model.ToEncoderOptions().MinInputSize(), _opening.Resize);
        if (!_checked.TryGetValue(data, out var done)) _checked[data] = done = [];
        // A part checked against a minimum at least as large needs no new check; every image of the validation split includes the scored ones.
        bool Covered(RunParts part) =>
            (done.TryGetValue(part, out var side) && side >= minimum.Side) || (part == RunParts.Scoring && Covered(RunParts.ValImages));
        var left = SingleParts.Where(p => parts.HasFlag(p) && !Covered(p)).ToArray();
        if (left.Length == 0) return null;
        var report = data.CheckBeforeRun(left.Aggregate(RunParts.None, (all, p) => all | p), minimum);
        foreach (var part in left) done[part] = Math.Max(minimum.Side, done.GetValueOrDefault(part));
        return report;
    }

    private static void Initialise(TrainConfig config, InitSource? source, DeepLabV3Plus model, TextWriter console)
    {
        if (config.InitFrom is not { } init) return;
        if (source is null)
        {
            var report = PretrainedWeights.LoadEncoder(model.Backbone, init);
            WeightFit.RequireFullEncoderMatch(report, init, model.Backbone.Options, config.AllowPartialInit);
            console.WriteLine($"[{config.RunName}] encoder from {init}{(report.Missing.Count + report.ShapeMismatched.Count > 0 ? " (partial: AllowPartialInit)" : "")}: {report}");
            return;
        }
        // Fine-tuning drops the projection head (it is not trained) and starts a fresh classifier, so the
        // checkpoint's classifier is not loaded and may have another class count (pretraining on other data).
        // The joint stage starts from a run as fine-tuning does (its projection head is trained on, so it is loaded too).
        var fineTune = config.Stage is TrainingStage.FineTune or TrainingStage.Joint;
        var checkpoint = CheckpointStore.LoadWeights(source.Checkpoint, model, exceptClassifier: fineTune);
        // Which checkpoint, its step and why it (a run's best or latest): the run's log says what it started from.
        console.WriteLine($"[{config.RunName}] initial weights: {source}");
        if (!fineTune) return;
        model.ResetClassifier();
        var stored = WeightFit.CheckpointClasses(checkpoint);
        console.WriteLine($"[{config.RunName}] weights from {checkpoint}, all but the classifier: a fresh one for {model.NumClasses} classes" +
                          (stored is { } n && n != model.NumClasses ? $" (the checkpoint's has {n})" : ""));
    }

    /// <summary>The model of a run or checkpoint folder: weights read from its (device-independent) files, then moved to the session's device.</summary>
    private DeepLabV3Plus Trained(string runOrCheckpoint, ModelSettings settings, int numClasses, out string checkpoint)
    {
        var model = new DeepLabV3Plus(settings.ToOptions(numClasses));
        try
        {
            checkpoint = CheckpointStore.LoadWeights(runOrCheckpoint, model);
            model.to(Device.Device);
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
}
