using ContrastSeg.Tests.Support;
using Xunit;

namespace ContrastSeg.Tests.Runtime;

/// <summary>
/// Every tensor the core makes from nothing names its device (<c>device: x.device</c>, or <c>device: CPU</c> with a
/// comment saying why the CPU is right there), so nothing silently lands on the CPU in a CUDA run. Read from the source,
/// so no code path escapes for lack of a test that runs it on a GPU.
/// </summary>
public sealed class TensorFactoryAuditTests
{
    /// <summary>
    /// Calls that cannot take a device, by file (relative to src/ContrastSeg.Core) and factory, with the reason. Empty:
    /// every TorchSharp factory the core uses takes one.
    /// </summary>
    private static readonly Dictionary<(string File, string Factory), string> Allowed = new();

    private static string CoreSource()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var core = Path.Combine(dir.FullName, "src", "ContrastSeg.Core");
            if (File.Exists(Path.Combine(dir.FullName, "ContrastSeg.sln")) && Directory.Exists(core)) return core;
        }
        throw new DirectoryNotFoundException($"src/ContrastSeg.Core not found above {AppContext.BaseDirectory}");
    }

    [Fact]
    public void Every_tensor_factory_in_the_core_names_its_device()
    {
        var core = CoreSource();
        var files = Directory.EnumerateFiles(core, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .ToList();
        Assert.True(files.Count > 50, $"only {files.Count} source files found in {core}");
        var calls = files.SelectMany(f => TensorFactoryScan.CallsWithoutDevice(Path.GetRelativePath(core, f).Replace('\\', '/'), File.ReadAllText(f)))
            .Where(c => !Allowed.ContainsKey((c.File, c.Factory)))
            .ToList();
        Assert.True(calls.Count == 0,
            $"{calls.Count} tensor factory call(s) without a device (add device: <input>.device, or device: CPU with the reason):\n" + string.Join("\n", calls));
    }

    [Fact]
    public void The_scan_finds_factories_without_a_device_and_only_those()
    {
        const string source = """"
            using static TorchSharp.torch;
            class C
            {
                // zeros(3) in a comment
                /* ones(2) in a block comment */
                string S = "tensor(1) in a string", V = @"randn(2) ""quoted""", I = $"{string.Join(", ", new[] { "a" })} eye(3)";
                char Q = '(';
                Tensor A(Tensor x) => zeros(3);                                       // 1: no device
                Tensor B(Tensor x) => torch.ones(3, ScalarType.Int64, x.device);       // 2: positional device
                Tensor D(Tensor x) => TorchSharp.torch.full(new long[] { 2 }, 1, device: x.device);
                Tensor E(Tensor x) => x.full(3);                                       // another object's method
                Tensor F(Tensor x) => zeros_like(x);                                   // takes its input's device
                Tensor G(Tensor x) => arange(0, 3,
                                             device: x.device);                          // a call over two lines
                Tensor H(Tensor x) => tensor(randint(0, 5, new long[] { 2 }, device: CPU).shape); // 3: the outer call has none
                Generator J = new Generator(0, CPU);                                    // 4: positional device
                Generator K = new Generator(0, device: CPU);
                Generator? L => null;
            }
            """";
        var calls = TensorFactoryScan.CallsWithoutDevice("C.cs", source).ToList();
        Assert.Equal(new[] { ("zeros", 8), ("ones", 9), ("tensor", 15), ("Generator", 16) }, calls.Select(c => (c.Factory, c.Line)));
    }
}
