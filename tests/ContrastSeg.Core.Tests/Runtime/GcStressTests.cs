using ContrastSeg.Analysis;
using ContrastSeg.Data;
using ContrastSeg.Evaluation;
using ContrastSeg.Losses;
using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using ContrastSeg.Tests.Training;
using ContrastSeg.Training;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Runtime;

/// <summary>
/// Tiny training runs while another thread forces collections and finalizers without pause. A temporary TorchSharp
/// Scalar (see <see cref="ContrastSeg.Runtime.Scalars"/>) is then finalized within moments of its native call, which
/// is what turns it into a use-after-free; the kit must leave no Scalar to the finalizer at all.
/// <c>CONTRASTSEG_GC_STRESS_STEPS</c> sets the steps per run (default 8) for a longer stress outside the suite:
/// <c>CONTRASTSEG_GC_STRESS_STEPS=2000 dotnet test tests/ContrastSeg.Core.Tests --filter GcStress</c>.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class GcStressTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "contrastseg-gcstress-" + Guid.NewGuid().ToString("N"));
    private readonly ITestOutputHelper _output;

    public GcStressTests(ITestOutputHelper output)
    {
        _output = output;
        TorchFixture.Init();
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private static int Steps => int.TryParse(Environment.GetEnvironmentVariable("CONTRASTSEG_GC_STRESS_STEPS"), out var s) && s > 0 ? s : 8;

    /// <summary>
    /// Batches made before the stress starts (the test's batch generator itself uses temporary Scalars) and handed
    /// out as copies, so that every Scalar made during a run is the kit's.
    /// </summary>
    private sealed class BatchPool : IDisposable
    {
        private readonly Batch[] _batches = Enumerable.Range(0, 6).Select(k => SyntheticBatches.At(k)).ToArray();

        public IEnumerable<Batch> From(long start)
        {
            for (var k = start; ; k++)
            {
                var b = _batches[k % _batches.Length];
                yield return new Batch(b.Ids, b.Images.clone(), b.Labels.clone(), b.Images2!.clone(), b.Labels2!.clone());
            }
        }

        public SegmentationMetrics Validate(DeepLabV3Plus model)
        {
            var matrix = new ConfusionMatrix(SyntheticBatches.NumClasses);
            using var scope = NewDisposeScope();
            foreach (var b in _batches.Take(2))
                matrix.Add(Inference.Predict(model, b.Images, new InferenceOptions(Flip: true, Scales: new[] { 1.0, 0.75 })), b.Labels);
            return matrix.Metrics();
        }

        public void Dispose()
        {
            foreach (var b in _batches) b.Dispose();
        }
    }

    private TrainConfig Config(string name, TrainingStage stage, ContrastiveVariant variant = ContrastiveVariant.WithinImage) =>
        SyntheticBatches.Config(_root, stage, Steps) with
        {
            Name = name,
            EvalEvery = Math.Max(2, Steps / 3),
            CheckpointEvery = Math.Max(3, Steps / 2),
            LogEvery = Math.Max(1, Steps / 4),
            Contrastive = new ContrastiveSettings { ResizeTo = 8, Temperature = 0.2, Variant = variant, BatchSampleSize = 60 },
        };

    private int Train(TrainConfig config, DeepLabV3Plus model, BatchPool pool, Func<ITrainingObjective, ITrainingObjective>? wrap = null)
    {
        using var inner = config.Stage == TrainingStage.Contrastive ? new ContrastiveObjective(config.Contrastive, config.Seed) : (ITrainingObjective)new CrossEntropyObjective();
        var objective = wrap?.Invoke(inner) ?? inner;
        var validate = config.Stage == TrainingStage.Contrastive ? null : (Func<DeepLabV3Plus, SegmentationMetrics>)pool.Validate;
        var result = Trainer.Run(config, model, objective, pool.From, validate, TextWriter.Null);
        Assert.True(double.IsFinite(result.FinalLoss));
        return result.Steps;
    }

    private static int Resumes(TrainConfig config) =>
        File.ReadLines(Path.Combine(config.RunDirectory, "metrics.jsonl")).Count(l => l.Contains("\"kind\":\"resume\""));

    [Fact]
    public void Training_under_continuous_collections_leaves_no_Scalar_to_the_finalizer()
    {
        using var pool = new BatchPool();
        using var points = randn(new long[] { 60, 8 });
        using var pointLabels = arange(60).remainder(3);
        using var logits = randn(new long[] { 2, SyntheticBatches.NumClasses, 16, 16 });
        using var probabilities = logits.softmax(1);

        // Built before the stress: constructing TorchSharp's Conv2d leaves tensor wrappers to the finalizer (not Scalars).
        var runs = new[]
        {
            Config("ce", TrainingStage.CrossEntropy),
            Config("within-image", TrainingStage.Contrastive),
            Config("cross-image", TrainingStage.Contrastive, ContrastiveVariant.CrossImage),
            Config("batch", TrainingStage.Contrastive, ContrastiveVariant.Batch),
        }.Select(c => (Config: c, Model: SyntheticBatches.Model(c))).ToList();

        using var stress = new GcStress();
        var steps = runs.Sum(r => Train(r.Config, r.Model, pool));
        // The analysis paths that run steps of their own.
        using (var scope = NewDisposeScope())
        {
            Tsne.Embed(points, new TsneOptions(Perplexity: 5, Iterations: 260, PcaDimensions: 4));
            FeatureSpace.Measure(points, pointLabels);
            PseudoLabels.Coverage(PseudoLabels.Select(probabilities, new PseudoLabelOptions(ObjectThreshold: 0.4)));
        }
        var (scalars, tensors) = stress.Stop();
        foreach (var r in runs) r.Model.Dispose();

        var resumes = runs.Sum(r => Resumes(r.Config));
        _output.WriteLine($"{steps} training steps, {stress.Collections} forced collections; finalized: {scalars} Scalars, {tensors} tensors; " +
                          $"libtorch errors (automatic resumes): {resumes}");
        Assert.True(stress.Collections >= 2, "the stress thread did not run");
        Assert.True(resumes == 0, $"{resumes} automatic resume(s) after libtorch errors");
        Assert.True(scalars == 0, $"{scalars} Scalars were left to the finalizer during {steps} steps: some code path makes temporary Scalars");
        // Every step's tensors live in dispose scopes, so no tensor handle is freed by the finalizer either.
        Assert.True(tensors == 0, $"{tensors} tensors were left to the finalizer during {steps} steps: a temporary outside a dispose scope");
    }

    /// <summary>
    /// The race itself: native adds whose alpha is a temporary Scalar, checked for libtorch errors and wrong values.
    /// A method of its own, so that no Scalar stays referenced from the caller's frame when the count is taken.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static (int Errors, int Wrong) UnsafeAdds(int count)
    {
        using var x = zeros(1);
        using var one = ones(1);
        var (errors, wrong) = (0, 0);
        for (var i = 0; i < count; i++)
        {
            var alpha = (double)(i % 1000 + 1);
            try
            {
                if (x.zero_().add_(one, alpha).item<float>() != (float)alpha) wrong++;
            }
            catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or ArgumentException) { errors++; }
        }
        return (errors, wrong);
    }

    /// <summary>A deliberately unsafe objective: the loss times 1.0, <see cref="Temporaries"/> times, each with a temporary Scalar.</summary>
    private sealed class TemporaryScalars(ITrainingObjective inner) : ITrainingObjective
    {
        public const int Temporaries = 20;

        public string Term => inner.Term;
        public Generator? Generator => inner.Generator;
        public IEnumerable<TorchSharp.Modules.Parameter> Parameters(DeepLabV3Plus model) => inner.Parameters(model);
        public void Dispose() { }

        public Tensor Loss(DeepLabV3Plus model, Batch batch)
        {
            var loss = inner.Loss(model, batch);
            for (var i = 0; i < Temporaries; i++) loss = loss * 1.0;
            return loss;
        }
    }

    /// <summary>
    /// Every temporary Scalar is seen: the stress finalizes it, the count reports it. Whether the race then corrupts a
    /// native call is a matter of timing (the Scalar is read within microseconds of the call's start), so the test
    /// does not rely on it; it reports the libtorch errors and wrong values of a loop of unsafe adds instead. On the
    /// project's 2-core VM none showed in 36,000 temporary Scalars, nor in the 543,080 that the kit before its own SGD
    /// and the Scalar audit made in 1,000 stressed steps (README).
    /// </summary>
    [Fact]
    public void The_stress_catches_a_temporary_Scalar_in_a_training_step()
    {
        using var pool = new BatchPool();
        var config = Config("unsafe", TrainingStage.CrossEntropy);
        using var model = SyntheticBatches.Model(config);
        using var stress = new GcStress();
        var steps = Train(config, model, pool, inner => new TemporaryScalars(inner));
        var probes = Steps * 100;
        var (errors, wrong) = UnsafeAdds(probes);
        var (scalars, _) = stress.Stop();

        var made = (long)steps * TemporaryScalars.Temporaries + probes;
        _output.WriteLine($"{steps} steps with {TemporaryScalars.Temporaries} temporary Scalars each and {probes} unsafe adds: {scalars} of {made} " +
                          $"temporary Scalars finalized, {stress.Collections} collections; libtorch errors: {errors} in the adds, {Resumes(config)} resumes in training; wrong values: {wrong}");
        Assert.True(scalars >= made, $"only {scalars} of the {made} temporary Scalars were seen");
    }
}
