using ContrastSeg.Models;
using ContrastSeg.Runtime;
using ContrastSeg.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Runtime;

/// <summary>
/// The kit makes no temporary TorchSharp Scalar (the use-after-free described in <see cref="Scalars"/>): only
/// <see cref="Scalars"/> and <see cref="HeldScalars"/> create Scalars, and no method calls a TorchSharp method that
/// makes one inside. Found by reading the compiled IL, so no code path escapes for lack of a test that runs it.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class ScalarAuditTests
{
    private static readonly ScalarAudit Audit = new();

    private static bool IsScalarHome(Type t) => t == typeof(Scalars) || t == typeof(HeldScalars);

    [Fact]
    public void No_method_of_the_kit_makes_a_temporary_Scalar()
    {
        var findings = Audit.Scan(typeof(DeepLabV3Plus).Assembly, IsScalarHome);
        Assert.True(findings.Count == 0,
            $"{findings.Count} place(s) make a temporary Scalar (use Runtime.Scalars or a HeldScalars):\n" + string.Join("\n", findings));
    }

    [Fact]
    public void No_TorchSharp_module_of_the_models_makes_Scalars_in_its_forward()
    {
        TorchFixture.Init();
        var models = new[]
        {
            SegmentationModelOptions.CpuSmall(5),
            SegmentationModelOptions.CpuSmall(5) with { Projection = new ProjectionHeadOptions(Layers: 2, Channels: 16, BatchNorm: true) },
            new SegmentationModelOptions(new EncoderOptions(ResNetDepth.ResNet50, OutputStride: 16, WidthMultiplier: 0.125), 3, 16, 8, 16),
            new SegmentationModelOptions(new EncoderOptions(ResNetDepth.ResNet18, OutputStride: 8, WidthMultiplier: 0.125), 3, 16, 8, 16),
        };
        var types = new HashSet<Type> { typeof(TorchSharp.Modules.Linear) }; // the classification pretraining's head
        foreach (var options in models)
        {
            using var model = new DeepLabV3Plus(options);
            foreach (var (_, module) in model.named_modules()) types.Add(module.GetType());
        }
        var torchSharpModules = types.Where(t => t.Assembly == typeof(Scalar).Assembly).ToList();
        Assert.Contains(typeof(TorchSharp.Modules.Conv2d), torchSharpModules);
        var making = torchSharpModules.Where(Audit.ModuleForwardMakesScalars).Select(t => t.Name).ToList();
        Assert.True(making.Count == 0, "modules whose forward makes temporary Scalars: " + string.Join(", ", making));
        // TorchSharp's own BatchNorm2d does (num_batches_tracked.add_(1)); the kit uses its own.
        Assert.True(Audit.ModuleForwardMakesScalars(typeof(TorchSharp.Modules.BatchNorm2d)));
    }

    // What the audit must catch: each of these makes a temporary Scalar, directly or inside TorchSharp.
    private static Tensor ImplicitConversion(Tensor t) => t * 0.5;
    private static Tensor AlphaOfAddition(Tensor a, Tensor b) => a + b;
    private static Tensor SoftplusDefaults(Tensor t) => t.softplus();
    private static void TorchSharpsSgd(Tensor p) { using var sgd = optim.SGD(new[] { (TorchSharp.Modules.Parameter)p }, 0.1, 0.9); sgd.step(); }
    private static Tensor HeldOnly(Tensor a, Tensor b) { using var held = new HeldScalars(); return a.add(b, Scalars.One).mul(held.Of(0.5)); }

    [Fact]
    public void The_audit_finds_implicit_conversions_and_Scalars_made_inside_TorchSharp()
    {
        var findings = Audit.Scan(typeof(ScalarAuditTests).Assembly, t => t != typeof(ScalarAuditTests))
            .Select(f => f.Method.Split("::")[1]).ToHashSet();
        Assert.Contains(nameof(ImplicitConversion), findings);
        Assert.Contains(nameof(AlphaOfAddition), findings);
        Assert.Contains(nameof(SoftplusDefaults), findings);
        Assert.Contains(nameof(TorchSharpsSgd), findings);
        Assert.DoesNotContain(nameof(HeldOnly), findings);
    }
}
