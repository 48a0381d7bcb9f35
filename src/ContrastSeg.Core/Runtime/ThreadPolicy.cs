using System.Globalization;

namespace ContrastSeg.Runtime;

/// <summary>
/// How many libtorch threads and loader workers a run uses when the user does not say.
/// </summary>
/// <remarks>
/// Measured on this project's 2-core VM, CPU-scale CE step (batch 8, 64x64, small stem), s/step:
/// quiet: 2 threads 0.20, 1 thread 0.30; one other busy process: 2 threads 0.77 (libtorch's threads wait for
/// each other while one is descheduled), 1 thread 0.31. So a thread is given only to a core that is free:
/// threads = round(cores - cores busy with other processes), between 1 and the core count, decided at the
/// start of every training run from a short /proc/stat sample (a grid re-decides per stage, so it follows
/// a machine whose load changes). Loader workers: 1 per 4 cores, at least 1 (one worker decodes and
/// augments 1,700 scenes/s against the 40 a CPU-scale step consumes; a second worker on 2 cores only took
/// time from libtorch: 0.218 vs 0.200 s/step quiet).
/// </remarks>
public static class ThreadPolicy
{
    /// <summary>Threads for <paramref name="cores"/> cores of which <paramref name="busyCores"/> are used by other processes.</summary>
    public static int Choose(int cores, double busyCores) =>
        Math.Clamp((int)Math.Floor(cores - Math.Max(0, busyCores) + 0.5), 1, Math.Max(1, cores));

    /// <summary>Loader workers when <c>Data.Workers</c> is 0: one per 4 cores, at least 1.</summary>
    public static int DefaultLoaderWorkers(int cores) => Math.Max(1, cores / 4);

    /// <summary>Loader workers for this machine.</summary>
    public static int DefaultLoaderWorkers() => DefaultLoaderWorkers(Environment.ProcessorCount);

    /// <summary>
    /// Cores kept busy by other processes over <paramref name="window"/>: all CPU time minus idle and iowait,
    /// minus this process's own, from /proc/stat and /proc/self/stat. Null where /proc is not readable (non-Linux).
    /// </summary>
    public static double? MeasureBusyCores(TimeSpan window)
    {
        var a = Sample();
        if (a is null) return null;
        Thread.Sleep(window);
        var b = Sample();
        return b is null ? null : BusyCores(a.Value, b.Value, Environment.ProcessorCount);
    }

    /// <summary>Cores other processes kept busy between two CPU-time samples (all cores' ticks, busy ticks, this process's ticks).</summary>
    public static double? BusyCores((long Total, long Busy, long Own) before, (long Total, long Busy, long Own) after, int cores)
    {
        var total = after.Total - before.Total;
        if (total <= 0) return null;
        var othersBusy = (after.Busy - before.Busy) - (after.Own - before.Own);
        return Math.Clamp((double)othersBusy / total * cores, 0, cores);
    }

    /// <summary>
    /// Sets libtorch's thread count for a run by the rule above, unless CONTRASTSEG_THREADS names a number;
    /// returns what was decided and why (for the run's log).
    /// </summary>
    public static string ApplyForRun()
    {
        if (TorchRuntime.FixedThreadsSetting() is { } text)
            return $"threads: {TorchSharp.torch.get_num_threads()} ({TorchRuntime.ThreadsVariable}={text})";
        if (TorchRuntime.Status.Numerics.Mode == NumericsMode.Portable)
        {
            // Float sums depend on the thread count: a portable run keeps the same count whatever the load.
            TorchSharp.torch.set_num_threads(Numerics.PortableThreads);
            return $"threads: {Numerics.PortableThreads} (portable numerics: fixed; {TorchRuntime.ThreadsVariable}=N sets another count)";
        }
        var cores = Environment.ProcessorCount;
        var busy = MeasureBusyCores(TimeSpan.FromMilliseconds(500));
        var threads = busy is { } b ? Choose(cores, b) : cores;
        TorchSharp.torch.set_num_threads(threads);
        return busy is { } x
            ? string.Create(CultureInfo.InvariantCulture, $"threads: {threads} of {cores} cores ({x:F1} cores busy with other processes; {TorchRuntime.ThreadsVariable}=N fixes it)")
            : $"threads: {threads} ({cores} cores; load not readable)";
    }

    private static (long Total, long Busy, long Own)? Sample()
    {
        try
        {
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var v = cpu.Skip(1).Take(8).Select(t => long.Parse(t, CultureInfo.InvariantCulture)).ToArray(); // user nice system idle iowait irq softirq steal
            var total = v.Sum();
            var busy = total - v[3] - v[4];
            var self = File.ReadAllText("/proc/self/stat");
            var fields = self[(self.LastIndexOf(')') + 2)..].Split(' '); // after "pid (comm) ": field 3 is state
            var own = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime
            return (total, busy, own);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            return null;
        }
    }
}
