using ContrastSeg.Training;

namespace ContrastSeg.Studies;

/// <summary>
/// The base configs of the CPU-scale studies: what every stage of their cells shares before the planner adds the cell's
/// labels, seed, budget and recipe. Built from <see cref="TrainPresets"/>, so a study trains what <c>train --preset</c> trains.
/// </summary>
public static class StudyBases
{
    /// <summary>The <c>cpu</c> preset (embedded scenes, no random rescaling) with a grid's bookkeeping: runs under <paramref name="runs"/>, sparse logs and checkpoints.</summary>
    public static TrainConfig Scenes(string runs) =>
        TrainPresets.Cpu(TrainingStage.CrossEntropy) with { OutputRoot = runs, LogEvery = 50, CheckpointEvery = 500, KeepLast = 1 };

    /// <summary>The quick profile's base: <see cref="Scenes"/> on 400 training and 64 validation scenes, a 5-step warm-up, logs and validation every 10 steps.</summary>
    public static TrainConfig Quick(string runs)
    {
        var b = Scenes(runs);
        return b with
        {
            Data = b.Data with { Scenes = b.Data.Scenes with { Train = 400, Val = 64 } },
            Optimizer = b.Optimizer with { WarmupSteps = 5 },
            LogEvery = 10,
            EvalEvery = 10,
        };
    }

    /// <summary><see cref="Scenes"/> on a folder dataset at <paramref name="root"/>: its train split, <paramref name="valSplit"/>, a square crop and a working resolution.</summary>
    public static TrainConfig Folder(string runs, string root, string valSplit, int crop, double resize)
    {
        var b = Scenes(runs);
        return b with { Data = b.Data with { Dataset = "folder", Root = root, TrainSplit = "train", ValSplit = valSplit, Crop = crop, Resize = resize } };
    }

    /// <summary>A paper preset (<see cref="TrainPresets.Get"/>) with its runs under <paramref name="runs"/>.</summary>
    public static TrainConfig Paper(string preset, string root, string runs) =>
        TrainPresets.Get(preset, TrainingStage.CrossEntropy, root) with { OutputRoot = runs };
}
