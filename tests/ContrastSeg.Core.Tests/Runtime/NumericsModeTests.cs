using ContrastSeg.Runtime;
using Xunit;

namespace ContrastSeg.Tests.Runtime;

public class NumericsModeTests
{
    private const string Zen3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\n" +
                                "flags\t\t: fpu sse sse2 avx fma avx2 bmi2\n";
    private const string Xeon = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n" +
                                "flags\t\t: fpu sse avx fma avx2 avx512f avx512bw\n";

    [Fact]
    public void Cpu_info_names_vendor_family_model_and_instruction_set()
    {
        var zen3 = CpuInfo.Parse(Zen3);
        Assert.Equal(("AuthenticAMD", 25, 1, true, false), (zen3.Vendor, zen3.Family, zen3.ModelNumber, zen3.Avx2, zen3.Avx512));
        Assert.Equal("AMD EPYC 7B13 (AuthenticAMD family 25 model 1, AVX2)", zen3.ToString());
        var xeon = CpuInfo.Parse(Xeon);
        Assert.Equal(("AVX-512", 207), (xeon.InstructionSet, xeon.ModelNumber));
        var unknown = CpuInfo.Parse(null);
        Assert.Equal(("unknown CPU", false), (unknown.Model, unknown.Avx2));
        Assert.Equal("no AVX2", CpuInfo.Parse("flags : sse avx2\n").InstructionSet); // AVX2 without FMA is not enough
    }

    [Theory]
    [InlineData(null, NumericsMode.Portable)]
    [InlineData("", NumericsMode.Portable)]
    [InlineData(" Portable ", NumericsMode.Portable)]
    [InlineData("NATIVE", NumericsMode.Native)]
    public void Mode_defaults_to_portable(string? setting, NumericsMode expected) => Assert.Equal(expected, Numerics.Parse(setting));

    [Fact]
    public void Unknown_mode_and_a_cpu_without_avx2_are_refused_by_name()
    {
        Assert.Contains("CONTRASTSEG_NUMERICS='avx512'", Assert.Throws<TorchRuntimeException>(() => Numerics.Parse("avx512")).Message);
        var old = CpuInfo.Parse("vendor_id : GenuineIntel\nmodel name : Old Xeon\nflags : sse sse2 avx\n");
        var e = Assert.Throws<TorchRuntimeException>(() => Numerics.ApplyBeforeLoad(NumericsMode.Portable, old));
        Assert.Contains("AVX2", e.Message);
        Assert.Contains("Old Xeon", e.Message);
        Assert.Contains("CONTRASTSEG_NUMERICS=native", e.Message);
        Numerics.ApplyBeforeLoad(NumericsMode.Native, old); // native asks nothing of the CPU
    }

    [Fact]
    public void Native_environment_is_set_where_C_code_reads_it()
    {
        if (OperatingSystem.IsWindows()) return;
        Numerics.SetEnvironment("CONTRASTSEG_TEST_VARIABLE", "seen-by-getenv");
        Assert.Equal("seen-by-getenv", Numerics.NativeEnvironment("CONTRASTSEG_TEST_VARIABLE"));
        Assert.Equal("seen-by-getenv", Environment.GetEnvironmentVariable("CONTRASTSEG_TEST_VARIABLE")); // and child processes
    }

    [Theory]
    [InlineData(null, false, false)] // no cache topology: on all the same, the state is part of the numbers
    [InlineData("auto", true, false)]
    [InlineData("off", true, true)]  // the user may still switch it off (another numerics class)
    public void Portable_mode_keeps_onednn_on_everywhere(string? setting, bool topology, bool disable)
    {
        var (off, reason) = TorchRuntime.DecideMkldnn(setting, isLinux: true, cacheTopologyReported: topology, portable: true);
        Assert.Equal(disable, off);
        if (!topology && setting is null) Assert.Contains("CONTRASTSEG_MKLDNN=off", reason); // says how to avoid the SIGFPE
    }

    [Fact]
    public void Portable_runs_share_one_numerics_class_whatever_the_cpu_native_runs_do_not()
    {
        Provenance Of(string cpu, string mode, string aten) => new(cpu, "x", mode, aten, "on (AVX2)", "AVX2", 1, "0.107.0", "Linux");
        Assert.Equal(Of("AMD EPYC 7B13", "portable", "AVX2").NumericsClass, Of("Intel Xeon", "portable", "AVX2").NumericsClass);
        Assert.NotEqual(Of("AMD EPYC 7B13", "native", "AVX2").NumericsClass, Of("Intel Xeon", "native", "AVX512").NumericsClass);
        Assert.NotEqual(Of("Intel Xeon", "portable", "AVX2").NumericsClass, (Of("Intel Xeon", "portable", "AVX2") with { Threads = 2 }).NumericsClass);
    }

    [Fact]
    public void Status_reads_back_what_libtorch_runs()
    {
        var status = TorchRuntime.EnsureInitialized().Numerics;
        Assert.NotEqual("unknown", status.AtenCapability);
        if (status.Mode == NumericsMode.Portable) Assert.Equal(("AVX2", "COMPATIBLE"), (status.AtenCapability, status.MklBranch));
    }
}
