using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class SgdOptimizerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "contrastseg-sgd-" + Guid.NewGuid().ToString("N"));

    public SgdOptimizerTests()
    {
        TorchFixture.Init();
        Directory.CreateDirectory(_dir);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private const int Steps = 12;

    /// <summary>A fixed problem: a conv + linear network on fixed data, and one parameter that never gets a gradient.</summary>
    private sealed class Problem : IDisposable
    {
        public readonly Parameter[] Parameters;
        private readonly Tensor _x, _y;

        public Problem()
        {
            var g = new Generator(0, CPU);
            g.manual_seed(7);
            Parameters = new[]
            {
                nn.Parameter(randn(new long[] { 4, 3, 3, 3 }, generator: g) * 0.3),
                nn.Parameter(randn(new long[] { 4 }, generator: g) * 0.1),
                nn.Parameter(randn(new long[] { 5, 4 }, generator: g) * 0.3),
                nn.Parameter(randn(new long[] { 2, 2 }, generator: g)), // unused: no gradient, must stay as it is
            };
            _x = randn(new long[] { 6, 3, 8, 8 }, generator: g);
            _y = randint(0, 5, new long[] { 6 }, generator: g);
            g.Dispose();
        }

        public void Backward()
        {
            using var scope = NewDisposeScope();
            var h = nn.functional.conv2d(_x, Parameters[0], Parameters[1], padding: new long[] { 1, 1 }).relu().mean(new long[] { 2, 3 });
            nn.functional.cross_entropy(h.mm(Parameters[2].t()), _y).backward();
        }

        public void ZeroGrad()
        {
            foreach (var p in Parameters)
            {
                using var grad = p.grad;
                grad?.zero_();
            }
        }

        public void Dispose()
        {
            foreach (var p in Parameters) p.Dispose();
            _x.Dispose();
            _y.Dispose();
        }
    }

    private static double Rate(int step) => LearningRateSchedule.At(step, Steps, 0.1, warmupSteps: 3);

    private static void AssertSame(Problem expected, Problem actual, double tolerance, string when)
    {
        for (var i = 0; i < expected.Parameters.Length; i++)
            TensorAssert.Close(expected.Parameters[i], actual.Parameters[i], tolerance, $"parameter {i} {when}");
    }

    [Theory]
    [InlineData(0.9, 4e-5, 0.0, false)] // the kit's settings
    [InlineData(0.9, 1e-2, 0.0, true)]  // Nesterov, strong decay
    [InlineData(0.5, 0.0, 0.3, false)]  // dampening, no decay
    [InlineData(0.0, 1e-3, 0.0, false)] // no momentum
    public void It_updates_parameters_as_TorchSharps_SGD_over_a_schedule(double momentum, double weightDecay, double dampening, bool nesterov)
    {
        using var reference = new Problem();
        using var ours = new Problem();
        using var sgd = optim.SGD(reference.Parameters, Rate(0), momentum, dampening, weightDecay, nesterov);
        using var own = new SgdOptimizer(ours.Parameters, Rate(0), momentum, weightDecay, dampening, nesterov);
        var unused = ours.Parameters[3].detach().clone();
        for (var step = 0; step < Steps; step++)
        {
            foreach (var group in sgd.ParamGroups) group.LearningRate = Rate(step);
            own.LearningRate = Rate(step);
            sgd.zero_grad();
            own.ZeroGrad();
            reference.Backward();
            ours.Backward();
            sgd.step();
            own.Step();
            AssertSame(reference, ours, 1e-6, $"after step {step + 1}");
        }
        Assert.True((ours.Parameters[3] == unused).all().item<bool>(), "a parameter without gradient changed");
        Assert.Null(own.MomentumBuffer(3));
    }

    [Fact]
    public void Its_state_round_trips_and_reads_and_writes_TorchSharps_SGD_format()
    {
        // Both optimisers train 4 steps and save; each then continues from the other's file.
        using var a = new Problem();
        using var b = new Problem();
        using var sgd = optim.SGD(a.Parameters, Rate(0), 0.9, weight_decay: 4e-5);
        using var own = new SgdOptimizer(b.Parameters, Rate(0), 0.9, 4e-5);
        for (var step = 0; step < 4; step++)
        {
            foreach (var group in sgd.ParamGroups) group.LearningRate = Rate(step);
            own.LearningRate = Rate(step);
            sgd.zero_grad();
            own.ZeroGrad();
            a.Backward();
            b.Backward();
            sgd.step();
            own.Step();
        }
        var theirs = Path.Combine(_dir, "torchsharp.bin");
        var mine = Path.Combine(_dir, "own.bin");
        sgd.save_state_dict(theirs);
        own.Save(mine);
        Assert.Equal(File.ReadAllBytes(theirs), File.ReadAllBytes(mine)); // the same format, byte for byte

        using var c = new Problem();
        using var d = new Problem();
        foreach (var (target, source) in c.Parameters.Zip(b.Parameters).Concat(d.Parameters.Zip(b.Parameters)))
            using (no_grad()) target.copy_(source);
        using var ownFromTheirs = new SgdOptimizer(c.Parameters, 0.5, 0.9, 4e-5);
        ownFromTheirs.Load(theirs);
        Assert.Equal(Rate(3), ownFromTheirs.LearningRate);
        using var theirsFromMine = optim.SGD(d.Parameters, 0.5, 0.9, weight_decay: 4e-5);
        theirsFromMine.load_state_dict(mine);
        for (var step = 4; step < Steps; step++)
        {
            foreach (var group in theirsFromMine.ParamGroups) group.LearningRate = Rate(step);
            ownFromTheirs.LearningRate = Rate(step);
            theirsFromMine.zero_grad();
            ownFromTheirs.ZeroGrad();
            d.Backward();
            c.Backward();
            theirsFromMine.step();
            ownFromTheirs.Step();
            AssertSame(d, c, 1e-6, $"after resumed step {step + 1}");
        }

        // A save of a loaded state is the file it came from.
        var again = Path.Combine(_dir, "again.bin");
        using var reloaded = new SgdOptimizer(b.Parameters, 0.5, 0.9, 4e-5);
        reloaded.Load(mine);
        reloaded.Save(again);
        Assert.Equal(File.ReadAllBytes(mine), File.ReadAllBytes(again));
    }

    [Fact]
    public void A_state_that_does_not_fit_is_refused_naming_the_file_and_what_differs()
    {
        using var p = new Problem();
        using var own = new SgdOptimizer(p.Parameters, 0.1, 0.9, 4e-5);
        p.Backward();
        own.Step();
        var file = Path.Combine(_dir, "optimizer.bin");
        own.Save(file);
        var bytes = File.ReadAllBytes(file);

        var truncated = Path.Combine(_dir, "truncated.bin");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => own.Load(truncated));
        Assert.Contains(truncated, e.Message);
        Assert.Contains("truncated", e.Message);

        using var otherMomentum = new SgdOptimizer(p.Parameters, 0.1, 0.8, 4e-5);
        e = Assert.Throws<InvalidDataException>(() => otherMomentum.Load(file));
        Assert.Contains(file, e.Message);
        Assert.Contains("momentum 0.9", e.Message);

        using var fewer = new SgdOptimizer(p.Parameters.Take(2), 0.1, 0.9, 4e-5);
        e = Assert.Throws<InvalidDataException>(() => fewer.Load(file));
        Assert.Contains("4 parameters", e.Message);

        // A failed load keeps the state it had.
        var before = own.MomentumBuffer(0)!.clone();
        Assert.Throws<InvalidDataException>(() => own.Load(truncated));
        Assert.True((own.MomentumBuffer(0)! == before).all().item<bool>());
    }
}
