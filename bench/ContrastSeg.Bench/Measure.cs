using System.Diagnostics;
using System.Text.Json.Nodes;

namespace ContrastSeg.Bench;

/// <summary>Small statistics and /proc helpers shared by the parent and the child processes.</summary>
internal static class Measure
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0) return double.NaN;
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
    }

    /// <summary>Seconds taken by <paramref name="action"/>.</summary>
    public static double Time(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalSeconds;
    }

    public static JsonArray ToJson(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(Math.Round(v, 6))).ToArray());

    public static bool ProcSupported => File.Exists("/proc/self/status") && File.Exists("/proc/self/clear_refs");

    /// <summary>Resets this process's peak RSS (VmHWM) to its current RSS (Linux &gt;= 4.0).</summary>
    public static void ResetPeakRss() => File.WriteAllText("/proc/self/clear_refs", "5");

    public static long RssBytes() => StatusKb("/proc/self/status", "VmRSS:") * 1024;

    public static long PeakRssBytes() => StatusKb("/proc/self/status", "VmHWM:") * 1024;

    /// <summary>RSS of another process in bytes, or -1 when it is gone.</summary>
    public static long RssBytesOf(int pid)
    {
        try { return StatusKb($"/proc/{pid}/status", "VmRSS:") * 1024; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException) { return -1; }
    }

    /// <summary>MemAvailable from /proc/meminfo in bytes (or a large value where unknown).</summary>
    public static long AvailableMemoryBytes()
    {
        try { return StatusKb("/proc/meminfo", "MemAvailable:") * 1024; }
        catch (Exception e) when (e is IOException or InvalidOperationException) { return long.MaxValue / 4; }
    }

    private static long StatusKb(string file, string key)
    {
        foreach (var line in File.ReadLines(file))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0]);
        throw new InvalidOperationException($"{key} not in {file}");
    }
}
