using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using ContrastSeg.Runtime;

namespace ContrastSeg.Bench;

/// <summary>What the figures were measured on.</summary>
internal static class Machine
{
    public static JsonObject Describe(RuntimeStatus status) => new()
    {
        ["cpu_model"] = Lscpu("Model name") ?? "unknown",
        ["cores"] = Environment.ProcessorCount,
        ["memory_gb"] = Math.Round(MemTotalBytes() / 1e9, 1),
        ["os"] = OsName(),
        ["kernel"] = ReadOrNull("/proc/sys/kernel/osrelease")?.Trim(),
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
        ["threads"] = status.Threads,
        ["mkldnn"] = status.MkldnnEnabled,
        ["mkldnn_reason"] = status.MkldnnReason,
        ["cpu_cache_topology_reported"] = Directory.Exists("/sys/devices/system/cpu/cpu0/cache") && Directory.EnumerateDirectories("/sys/devices/system/cpu/cpu0/cache", "index*").Any(),
        ["load_average_at_start"] = ReadOrNull("/proc/loadavg")?.Trim(),
        ["git_commit"] = Run("git", "rev-parse --short HEAD")?.Trim(),
    };

    public static string? Lscpu(string field)
    {
        var output = Run("lscpu", "");
        var line = output?.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith(field + ":", StringComparison.Ordinal));
        return line?[(line.IndexOf(':') + 1)..].Trim();
    }

    private static long MemTotalBytes()
    {
        var line = ReadOrNull("/proc/meminfo")?.Split('\n').FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line["MemTotal:".Length..].Trim().Split(' ')[0]) * 1024;
    }

    private static string OsName()
    {
        var line = ReadOrNull("/etc/os-release")?.Split('\n').FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal));
        return line?["PRETTY_NAME=".Length..].Trim('"') ?? RuntimeInformation.OSDescription;
    }

    private static string? ReadOrNull(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static string? Run(string file, string arguments)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (p is null) return null;
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? text : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
