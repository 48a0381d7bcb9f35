using System.Text.Json;
using ContrastSeg.Data;
using ContrastSeg.Evaluation;
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
public sealed record PseudoLabelReport(string Folder, int Images, double Coverage)
{
    /// <summary>The report's file in a pseudo-label folder, written after every PNG: the folder is complete when it exists.</summary>
    public static string FileIn(string folder) => Path.Combine(folder, "pseudo-labels.json");

    /// <summary>The report of a complete pseudo-label folder, or null.</summary>
    public static PseudoLabelReport? ReadFrom(string folder) =>
        File.Exists(FileIn(folder)) ? JsonSerializer.Deserialize<PseudoLabelReport>(File.ReadAllText(FileIn(folder))) : null;
}

/// <summary>
/// One command from a config alone, each in a <see cref="RunSession"/> of its own: what the CLI's train, evaluate,
/// predict and pseudolabel commands and the notebooks call. A grid cell keeps one session for its stages instead.
/// </summary>
public static class Runs
{
    /// <summary>Trains (or resumes, or finds finished) the run described by <paramref name="config"/>; writes <c>eval.json</c>.</summary>
    /// <exception cref="OutputFolderException">OutputRoot cannot be written (checked before any data is read).</exception>
    public static TrainResult Train(TrainConfig config, TextWriter? console = null) =>
        RunSession.Open(config.Validate(), trains: true).Train(config, console);

    /// <summary>
    /// Evaluates the checkpoint of a run (best, else latest) on its validation split or another split name, on the device
    /// <c>config.Runtime.Device</c> resolves to (a line on <paramref name="console"/> says which).
    /// </summary>
    public static EvalReport Evaluate(string runOrCheckpoint, TrainConfig config, InferenceOptions? tta = null, string? split = null, TextWriter? console = null) =>
        Start(config, "evaluate", console).Evaluate(runOrCheckpoint, config.Model, tta, split);

    /// <summary>Writes index PNGs and colour overlays of the predictions for a split (on the device <c>config.Runtime.Device</c> resolves to).</summary>
    public static int Predict(string runOrCheckpoint, TrainConfig config, string outputFolder, InferenceOptions? tta = null, int? limit = null, TextWriter? console = null)
    {
        if (limit is <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "a positive number of images, or null for all");
        return Start(config, "predict", console).Predict(runOrCheckpoint, config.Model, outputFolder, tta, limit);
    }

    /// <summary>
    /// Predicts the unlabelled training images of <paramref name="config"/>'s labelled subset with the
    /// teacher and writes pseudo-labels (confident pixels only) as index PNGs (on the device <c>config.Runtime.Device</c> resolves to).
    /// </summary>
    public static PseudoLabelReport PseudoLabel(string teacherRun, TrainConfig config, PseudoLabelOptions options, string outputFolder, TextWriter? console = null) =>
        Start(config, "pseudolabel", console).PseudoLabel(teacherRun, config.Model, options, outputFolder);

    /// <summary>Softmax-input features of sampled validation pixels (see <see cref="RunSession.SampleFeatures"/>).</summary>
    public static (Tensor Features, Tensor Labels) SampleFeatures(string runOrCheckpoint, TrainConfig config, int perClass, int seed, int maxImages = 64) =>
        Start(config, "features", null).SampleFeatures(runOrCheckpoint, config.Model, perClass, seed, maxImages);

    /// <summary>A session for one command, its device said on <paramref name="console"/>.</summary>
    private static RunSession Start(TrainConfig config, string command, TextWriter? console)
    {
        var session = RunSession.Open(config);
        console?.WriteLine($"[{command}] {session.Device}");
        return session;
    }
}

/// <summary>JSON reports next to runs and pseudo-labels.</summary>
internal static class Reports
{
    /// <summary>Writes <paramref name="value"/> to <paramref name="path"/> through a temporary file: a reader never sees half a report.</summary>
    public static void WriteJson<T>(string path, T value)
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
