using System.Globalization;

namespace ContrastSeg.Runtime;

/// <summary>
/// What a number computed on this machine depends on, as far as the CPU goes: its model, vendor, family/model and
/// the vector instruction sets libtorch's kernels choose between (AVX2, AVX-512). Read once from /proc/cpuinfo.
/// </summary>
/// <param name="Model">The <c>model name</c> line, e.g. <c>AMD EPYC 7B13</c>.</param>
/// <param name="Vendor">The <c>vendor_id</c> line, e.g. <c>AuthenticAMD</c>.</param>
/// <param name="Family">CPU family (Zen 3 and Zen 4 are both 25; they differ in <paramref name="ModelNumber"/>).</param>
/// <param name="ModelNumber">CPU model number within the family.</param>
/// <param name="Avx2">AVX2 and FMA (what portable numerics needs).</param>
/// <param name="Avx512">AVX-512 Foundation.</param>
public sealed record CpuInfo(string Model, string Vendor, int Family, int ModelNumber, bool Avx2, bool Avx512)
{
    private static readonly Lazy<CpuInfo> Current = new(() => Parse(ReadCpuInfo()));

    /// <summary>This machine's CPU (unknown fields where /proc/cpuinfo is not readable).</summary>
    public static CpuInfo Machine => Current.Value;

    /// <summary>The instruction-set class, e.g. <c>AVX-512</c>, <c>AVX2</c> or <c>no AVX2</c>.</summary>
    public string InstructionSet => Avx512 ? "AVX-512" : Avx2 ? "AVX2" : "no AVX2";

    /// <summary>One line for logs and reports, e.g. <c>AMD EPYC 7B13 (AuthenticAMD family 25 model 1, AVX2)</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Model} ({Vendor} family {Family} model {ModelNumber}, {InstructionSet})");

    /// <summary>Parses the text of /proc/cpuinfo (the first processor's block is enough: every core of a machine is alike).</summary>
    public static CpuInfo Parse(string? text)
    {
        string Field(string name) =>
            (text ?? "").Split('\n').Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Trim() == name)
                .Select(p => p[1].Trim()).FirstOrDefault() ?? "";
        int Number(string name) => int.TryParse(Field(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : -1;
        var flags = Field("flags").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var model = Field("model name");
        return new CpuInfo(model.Length > 0 ? model : "unknown CPU", Field("vendor_id") is { Length: > 0 } v ? v : "unknown vendor",
            Number("cpu family"), Number("model"), flags.Contains("avx2") && flags.Contains("fma"), flags.Contains("avx512f"));
    }

    private static string? ReadCpuInfo()
    {
        try { return File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
