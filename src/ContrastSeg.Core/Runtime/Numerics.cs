using System.Runtime.InteropServices;

namespace ContrastSeg.Runtime;

/// <summary>How libtorch may compute on the CPU.</summary>
public enum NumericsMode
{
    /// <summary>
    /// The same bits on every supported x86-64 CPU, by construction: ATen and oneDNN are held to the instruction level every
    /// such machine has (AVX2 with FMA), MKL to its vendor-neutral reproducible branch, oneDNN stays on and the thread count
    /// is fixed. What published studies use (docs/numerics.md says what is verified).
    /// </summary>
    Portable,

    /// <summary>The best kernels this CPU has (e.g. AVX-512) and the load-dependent thread policy: faster, but numbers differ between CPU models.</summary>
    Native,
}

/// <summary>
/// The numerics mode (<c>CONTRASTSEG_NUMERICS=portable|native</c>, default portable) and what it pins. libtorch, oneDNN and
/// MKL read their instruction-level variables from the C environment when they first compute; on Linux .NET's
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach C's <c>getenv</c>, so the values are set
/// with libc's <c>setenv</c> before TorchSharp's first call (and in .NET's copy, which worker processes inherit).
/// </summary>
/// <remarks>
/// Measured on an Intel Xeon family 6 model 207 (AVX-512): ATen's CPU capability, oneDNN's maximum ISA and MKL's code branch
/// each changed the trajectory of the same seeded run (docs/numerics.md has the table). oneDNN is kept on in portable mode
/// (its state is part of the numbers); one thread by default, since several threads change the order of float sums and,
/// in ATen, even which convolution kernel runs.
/// </remarks>
public static class Numerics
{
    /// <summary>Environment variable that chooses the mode: <c>portable</c> (default) or <c>native</c>.</summary>
    public const string Variable = "CONTRASTSEG_NUMERICS";

    /// <summary>The C environment portable mode sets before libtorch computes.</summary>
    public static IReadOnlyList<(string Name, string Value)> PortableEnvironment { get; } =
    [
        ("ATEN_CPU_CAPABILITY", "avx2"),     // ATen's vectorised kernels (default / avx2 / avx512)
        ("ONEDNN_MAX_CPU_ISA", "AVX2"),      // oneDNN's JIT convolutions: no AVX-512 or AVX-VNNI code
        // MKL's conditional numerical reproducibility, the one branch its documentation gives the same results for on Intel and
        // non-Intel CPUs (its AVX2 branch is Intel-only: elsewhere MKL falls back to its own AUTO dispatch).
        ("MKL_CBWR", "COMPATIBLE"),
    ];

    /// <summary>Threads of a portable run unless <c>CONTRASTSEG_THREADS</c> names another number: float sums depend on it.</summary>
    public const int PortableThreads = 1;

    /// <summary>The mode the environment variable names; an unknown value is a <see cref="TorchRuntimeException"/> naming it.</summary>
    public static NumericsMode Parse(string? setting) =>
        (setting ?? "").Trim().ToLowerInvariant() switch
        {
            "" or "portable" => NumericsMode.Portable,
            "native" => NumericsMode.Native,
            _ => throw new TorchRuntimeException($"{Variable}='{setting}' is not one of portable, native."),
        };

    /// <summary>The mode of this process, from <c>CONTRASTSEG_NUMERICS</c>.</summary>
    public static NumericsMode Requested() => Parse(Environment.GetEnvironmentVariable(Variable));

    /// <summary>
    /// Sets portable mode's variables in the C environment and .NET's (worker processes inherit them). Must run before
    /// TorchSharp's first call: libtorch reads them once. Portable mode needs AVX2 with FMA; a CPU without them cannot
    /// compute its numbers, which is said, not worked around.
    /// </summary>
    internal static void ApplyBeforeLoad(NumericsMode mode, CpuInfo cpu)
    {
        if (mode != NumericsMode.Portable) return;
        if (!cpu.Avx2 && RuntimeInformation.ProcessArchitecture is Architecture.X64)
            throw new TorchRuntimeException(
                $"{Variable}=portable holds libtorch to AVX2 with FMA, which this CPU lacks ({cpu}). Use {Variable}=native " +
                "(numbers of this machine only).");
        foreach (var (name, value) in PortableEnvironment) SetEnvironment(name, value);
    }

    /// <summary>Sets a variable where native code reads it (libc's environ) and where .NET and its child processes do.</summary>
    internal static void SetEnvironment(string name, string value)
    {
        Environment.SetEnvironmentVariable(name, value);
        if (OperatingSystem.IsWindows()) return; // the CRT of Windows reads the process block .NET just wrote
        if (Libc.setenv(name, value, 1) != 0)
            throw new TorchRuntimeException($"could not set {name}={value} in the C environment (setenv failed): {Variable}=portable cannot be applied.");
    }

    /// <summary>The value of a variable in the C environment (what libtorch reads), or null.</summary>
    internal static string? NativeEnvironment(string name) =>
        OperatingSystem.IsWindows() ? Environment.GetEnvironmentVariable(name) : Marshal.PtrToStringUTF8(Libc.getenv(name));

    private static class Libc
    {
        [DllImport("libc", EntryPoint = "setenv")]
        public static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

        [DllImport("libc", EntryPoint = "getenv")]
        public static extern IntPtr getenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
    }
}
