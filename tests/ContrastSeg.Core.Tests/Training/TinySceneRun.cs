using ContrastSeg.Losses;
using ContrastSeg.Training;

namespace ContrastSeg.Tests.Training;

/// <summary>Two steps of a tiny model on six embedded 32x32 scenes, four of them labelled (so two are unlabelled).</summary>
public static class TinySceneRun
{
    /// <summary>The config of a <paramref name="stage"/> run under <paramref name="outputRoot"/> on <paramref name="device"/>.</summary>
    public static TrainConfig Config(TrainingStage stage, string outputRoot, string device = "cpu") => new()
    {
        Stage = stage,
        OutputRoot = outputRoot,
        Data = new DataSettings { Scenes = new SceneSettings { Size = 32, Train = 6, Val = 2 }, Crop = 32, Labelled = 4, Workers = 1 },
        Model = Model,
        Optimizer = new OptimizerSettings { Steps = 2, BatchSize = 2, WarmupSteps = 0 },
        Contrastive = new ContrastiveSettings { Variant = ContrastiveVariant.Batch, BatchSampleSize = 64, ResizeTo = 8 },
        LogEvery = 1,
        CheckpointEvery = 2,
        Runtime = new RuntimeSettings { Device = device },
    };

    /// <summary>The tiny model (width 0.125, 16-channel heads).</summary>
    public static ModelSettings Model { get; } = new() { WidthMultiplier = 0.125, AsppChannels = 16, LowLevelChannels = 8, DecoderChannels = 16, ProjectionChannels = 16 };
}
