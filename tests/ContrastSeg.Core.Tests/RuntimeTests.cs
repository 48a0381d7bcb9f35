using ContrastSeg.Runtime;
using Xunit;

namespace ContrastSeg.Tests;

public class RuntimeTests
{
    [Fact]
    public void Runtime_loads_and_reports_its_settings()
    {
        var status = TorchRuntime.EnsureInitialized();
        Assert.True(status.Threads >= 1);
        Assert.False(string.IsNullOrWhiteSpace(status.MkldnnReason));
        Assert.Same(status, TorchRuntime.EnsureInitialized()); // once per process
    }

    [Theory]
    [InlineData(2, 0.0, 2)]
    [InlineData(2, 0.4, 2)]
    [InlineData(2, 0.6, 1)] // another process holds most of a core: libtorch's 2 threads stall (0.77 vs 0.31 s/step measured)
    [InlineData(2, 1.0, 1)]
    [InlineData(2, 2.0, 1)] // never below one thread
    [InlineData(16, 3.2, 13)]
    [InlineData(1, 0.0, 1)]
    public void Threads_go_to_the_cores_other_processes_leave_free(int cores, double busy, int expected) =>
        Assert.Equal(expected, ThreadPolicy.Choose(cores, busy));

    [Fact]
    public void Loader_workers_default_to_one_per_four_cores() =>
        Assert.Equal(new[] { 1, 1, 1, 2, 4 }, new[] { 1, 2, 4, 8, 16 }.Select(ThreadPolicy.DefaultLoaderWorkers));

    [Fact]
    public void Busy_cores_count_other_processes_only()
    {
        // 2 cores, 200 ticks in the window: 150 busy, of which this process used 50 -> others kept 1 core busy.
        Assert.Equal(1.0, ThreadPolicy.BusyCores((1000, 400, 100), (1200, 550, 150), 2));
        Assert.Equal(0.0, ThreadPolicy.BusyCores((1000, 400, 100), (1200, 450, 150), 2)); // all of it was ours
        Assert.Null(ThreadPolicy.BusyCores((1000, 400, 100), (1000, 400, 100), 2));      // no time passed
        if (OperatingSystem.IsLinux())
            Assert.InRange(ThreadPolicy.MeasureBusyCores(TimeSpan.FromMilliseconds(200))!.Value, 0, Environment.ProcessorCount);
    }

    [Fact]
    public void Missing_glibcxx_is_diagnosed_with_the_symbol_and_the_fix()
    {
        if (!OperatingSystem.IsLinux()) return;
        var oldRuntime = Path.GetTempFileName();
        try
        {
            File.WriteAllText(oldRuntime, "ELF ... GLIBCXX_3.4.29 GLIBCXX_3.4.30 ..."); // a GCC 12 libstdc++ stand-in
            var failure = new TypeInitializationException("TorchSharp.torch",
                new DllNotFoundException("Unable to load shared library 'LibTorchSharp'"));
            var message = TorchRuntime.DiagnoseLoadFailure(failure, oldRuntime);
            Assert.Contains("GLIBCXX_3.4.32", message);
            Assert.Contains(oldRuntime, message);
            Assert.Contains("eng/setup.sh", message);
            Assert.Contains("LibTorchSharp", message); // the loader's own words are kept
        }
        finally { File.Delete(oldRuntime); }
    }

    [Fact]
    public void Other_load_failures_are_not_blamed_on_libstdcxx()
    {
        if (!OperatingSystem.IsLinux()) return;
        var goodRuntime = Path.GetTempFileName();
        try
        {
            File.WriteAllText(goodRuntime, "ELF ... GLIBCXX_3.4.32 ...");
            var message = TorchRuntime.DiagnoseLoadFailure(new DllNotFoundException("libtorch_cpu.so: cannot open"), goodRuntime);
            Assert.DoesNotContain("lacks", message);
            Assert.Contains("libtorch_cpu.so", message);
        }
        finally { File.Delete(goodRuntime); }
    }

    [Theory]
    [InlineData(null, true, false, true)]   // Linux VM without cache topology: off
    [InlineData("auto", true, true, false)] // topology reported: left on
    [InlineData("", false, false, false)]   // not Linux: left on
    [InlineData("off", true, true, true)]
    [InlineData("ON", true, false, false)]
    public void OneDnn_decision_follows_setting_and_machine(string? setting, bool linux, bool topology, bool disable)
    {
        Assert.Equal(disable, TorchRuntime.DecideMkldnn(setting, linux, topology).Disable);
    }

    [Fact]
    public void Invalid_runtime_settings_are_named()
    {
        var ex = Assert.Throws<TorchRuntimeException>(() => TorchRuntime.DecideMkldnn("maybe", true, true));
        Assert.Contains("CONTRASTSEG_MKLDNN='maybe'", ex.Message);
        ex = Assert.Throws<TorchRuntimeException>(() => TorchRuntime.ParseMmapThreshold("-5"));
        Assert.Contains("CONTRASTSEG_MMAP_THRESHOLD", ex.Message);
        Assert.Null(TorchRuntime.ParseMmapThreshold(null));
        Assert.Equal(1 << 20, TorchRuntime.ParseMmapThreshold("1048576"));
    }
}

/// <summary>Flips process-wide libtorch state, so it runs while no other test runs convolutions.</summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public class OneDnnSwitchTests
{
    [Fact]
    public void OneDnn_switch_really_toggles_libtorch()
    {
        TorchRuntime.EnsureInitialized();
        var before = LibTorchNative.MkldnnEnabled();
        try
        {
            LibTorchNative.SetMkldnnEnabled(!before);
            Assert.Equal(!before, LibTorchNative.MkldnnEnabled());
        }
        finally { LibTorchNative.SetMkldnnEnabled(before); }
        Assert.Equal(before, LibTorchNative.MkldnnEnabled());
        Assert.Equal(TorchRuntime.Status.MkldnnEnabled, before);
    }
}
