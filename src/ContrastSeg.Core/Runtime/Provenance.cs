using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>
/// Where and how a number was computed: the CPU, the numerics mode and what the kernel libraries ran, the thread count,
/// the library versions and the OS. Every training writes one line of it per invocation (a resumed run adds one) to
/// <c>provenance.jsonl</c> in its folder, and every result row carries it.
/// </summary>
/// <param name="Cpu">The CPU's model line with vendor, family/model and instruction set.</param>
/// <param name="InstructionSet">AVX-512, AVX2 or "no AVX2".</param>
/// <param name="Numerics">portable or native.</param>
/// <param name="AtenCapability">ATen's CPU capability in force (read from libtorch).</param>
/// <param name="OneDnn">oneDNN on or off, and its maximum ISA.</param>
/// <param name="MklBranch">MKL's code branch in force (read from MKL).</param>
/// <param name="Threads">libtorch intra-op threads.</param>
/// <param name="TorchSharp">TorchSharp's version (it binds one libtorch: 0.107.0 binds 2.10.0).</param>
/// <param name="Os">The OS.</param>
public sealed record Provenance(string Cpu, string InstructionSet, string Numerics, string AtenCapability, string OneDnn,
    string MklBranch, int Threads, string TorchSharp, string Os)
{
    /// <summary>
    /// The numerics class: runs of one class compute the same bits for the same settings, runs of two classes may not.
    /// Portable runs are one class whatever the CPU (that is what portable means); a native run's class is its CPU model.
    /// </summary>
    public string NumericsClass => Numerics == "portable"
        ? string.Create(CultureInfo.InvariantCulture, $"portable: {Kernels}")
        : string.Create(CultureInfo.InvariantCulture, $"native: {Kernels} on {Cpu}");

    private string Kernels =>
        string.Create(CultureInfo.InvariantCulture, $"ATen {AtenCapability}, oneDNN {OneDnn}, MKL {MklBranch}, {Threads} thread{(Threads == 1 ? "" : "s")}, TorchSharp {TorchSharp}");

    /// <summary>This process now (libtorch loaded, threads as set for the current run).</summary>
    public static Provenance Current()
    {
        var status = TorchRuntime.EnsureInitialized();
        var n = status.Numerics;
        return new Provenance(n.Cpu.ToString(), n.Cpu.InstructionSet, n.Mode.ToString().ToLowerInvariant(), n.AtenCapability,
            status.MkldnnEnabled ? $"on ({n.OneDnnMaxIsa})" : "off", n.MklBranch, torch.get_num_threads(), TorchSharpVersion,
            RuntimeInformation.OSDescription);
    }

    /// <summary>TorchSharp's version, e.g. 0.107.0.</summary>
    public static string TorchSharpVersion { get; } =
        typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>The file a run folder keeps its provenance in, one JSON line per training invocation.</summary>
    public const string FileName = "provenance.jsonl";

    /// <summary>Appends this provenance to <paramref name="runDirectory"/>'s provenance.jsonl, stamped with the step it starts at.</summary>
    public void AppendTo(string runDirectory, int startStep)
    {
        var line = JsonSerializer.Serialize(new { step = startStep, provenance = this }) + "\n";
        File.AppendAllText(Path.Combine(runDirectory, FileName), line);
    }

    /// <summary>Every provenance recorded in a run folder, in order; lines that do not parse are skipped (a cut last line).</summary>
    public static IReadOnlyList<Provenance> ReadAll(string runDirectory)
    {
        var file = Path.Combine(runDirectory, FileName);
        if (!File.Exists(file)) return [];
        var result = new List<Provenance>();
        foreach (var line in File.ReadLines(file))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("provenance", out var p) && p.Deserialize<Provenance>() is { } read) result.Add(read);
            }
            catch (JsonException) { } // a line cut by a kill mid-write: the next invocation wrote its own
        }
        return result;
    }
}
