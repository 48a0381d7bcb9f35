namespace ContrastSeg.Tests.Support;

/// <summary>Linux resident-set figures of this process, from /proc/self/status.</summary>
public static class ProcessMemory
{
    public static bool Supported => File.Exists("/proc/self/status") && File.Exists("/proc/self/clear_refs");

    /// <summary>
    /// Makes RSS follow live memory for a measurement (glibc's mmap threshold fixed at 1 MB: with its adaptive
    /// rule freed multi-MB buffers stay in the heap and peaks swing from run to run), failing where it cannot.
    /// </summary>
    public static void FollowLiveMemory()
    {
        Xunit.Assert.True(Supported, "needs Linux /proc/self/status and clear_refs");
        Xunit.Assert.NotNull(ContrastSeg.Runtime.TorchRuntime.SetMmapThreshold(1 << 20));
    }

    /// <summary>Collects garbage, resets the peak and returns the current RSS: the baseline of <see cref="PeakBytes"/>.</summary>
    public static long StartMeasuring()
    {
        GC.Collect();
        ResetPeak();
        return CurrentBytes();
    }

    /// <summary>Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0: write 5 to clear_refs).</summary>
    public static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");

    public static long CurrentBytes() => ReadKb("VmRSS:") * 1024;

    public static long PeakBytes() => ReadKb("VmHWM:") * 1024;

    private static long ReadKb(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0]);
        throw new InvalidOperationException($"{key} not in /proc/self/status");
    }
}
