using System.Runtime.InteropServices;
using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>
/// The CPU runtime settings of the kit, in one place: the native-library check, the thread
/// count and the oneDNN (mkldnn) guard. Every public entry point of the core (model and loss
/// constructors, recipes) calls <see cref="EnsureInitialized"/>, so users never have to.
/// </summary>
/// <remarks>
/// Environment variables (read once, at first use):
/// <list type="bullet">
/// <item><c>CONTRASTSEG_THREADS</c>: intra-op threads for libtorch, or <c>auto</c> (default): every
/// training run then takes one thread per core not busy with other processes (<see cref="ThreadPolicy"/>).</item>
/// <item><c>CONTRASTSEG_MKLDNN</c>: <c>auto</c> (default), <c>on</c> or <c>off</c>. oneDNN's brgemm
/// convolution kills the process with SIGFPE (exit 136) in the backward of strided 1x1 convolutions
/// (ResNet-50's downsample layers) on VMs that report no CPU cache topology. <c>auto</c> turns
/// oneDNN off exactly there (no <c>/sys/devices/system/cpu/cpu0/cache/index*</c>); libtorch's
/// native convolutions are then used, which are correct everywhere.</item>
/// <item><c>CONTRASTSEG_MMAP_THRESHOLD</c>: bytes from which glibc's malloc serves allocations with
/// mmap, or <c>off</c> (default: glibc's adaptive rule). glibc raises its threshold up to 32 MiB after
/// large frees and then keeps freed tensor buffers in its heaps: the peak RSS of a 129x129 blockwise
/// loss swung between 0.1 and 1 GB from run to run, while 63 MB were live. A fixed threshold (e.g.
/// 1048576) makes RSS follow live memory, at a measured cost of 40-65 % more time per step on this
/// 2-core machine (every large buffer is page-faulted afresh), so it is opt-in for memory-tight runs.</item>
/// </list>
/// </remarks>
public static class TorchRuntime
{
    /// <summary>The GLIBCXX symbol version libLibTorchSharp.so (TorchSharp 0.107, LibTorch 2.10) needs.</summary>
    public const string RequiredGlibcxx = "GLIBCXX_3.4.32";

    /// <summary>Environment variable for the libtorch thread count.</summary>
    public const string ThreadsVariable = "CONTRASTSEG_THREADS";

    /// <summary>Environment variable for the oneDNN guard: auto, on or off.</summary>
    public const string MkldnnVariable = "CONTRASTSEG_MKLDNN";

    /// <summary>Environment variable for glibc's mmap threshold in bytes, or off.</summary>
    public const string MmapThresholdVariable = "CONTRASTSEG_MMAP_THRESHOLD";


    private static readonly object Gate = new();
    private static RuntimeStatus? _status;
    private static Exception? _failure;

    /// <summary>What <see cref="EnsureInitialized"/> found and applied.</summary>
    public static RuntimeStatus Status => EnsureInitialized();

    /// <summary>
    /// Loads TorchSharp's native library and applies the CPU settings, once per process.
    /// Throws <see cref="TorchRuntimeException"/> with the cause and the fix when libtorch cannot load.
    /// </summary>
    public static RuntimeStatus EnsureInitialized()
    {
        if (_status is { } ready) return ready;
        lock (Gate)
        {
            if (_status is { } s) return s;
            if (_failure is not null) throw _failure;
            try
            {
                // Before TorchSharp's first call: libtorch, oneDNN and MKL read their instruction level once.
                var numerics = Numerics.Requested();
                Numerics.ApplyBeforeLoad(numerics, CpuInfo.Machine);
                LoadNative();
                _status = Apply(numerics) with { NativeLibraries = NativePreload.Source };
                return _status;
            }
            catch (TorchRuntimeException e)
            {
                _failure = e;
                throw;
            }
        }
    }

    private static void LoadNative()
    {
        try
        {
            // Still before TorchSharp's first call: in `dotnet fsi` and notebooks libtorch comes from the NuGet cache.
            NativePreload.Prepare();
            // The first torch.* call runs TorchSharp's native loader; in `dotnet fsi` this must
            // happen before any other assembly calls into libtorch.
            torch.InitializeDeviceType(DeviceType.CPU);
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException
                                       or NotSupportedException or EntryPointNotFoundException)
        {
            throw new TorchRuntimeException(DiagnoseLoadFailure(e), e);
        }
    }

    /// <summary>Explains why libtorch failed to load, with the fix, as far as it can be told.</summary>
    internal static string DiagnoseLoadFailure(Exception e) => DiagnoseLoadFailure(e, FindLibStdCxx());

    /// <summary>As <see cref="DiagnoseLoadFailure(Exception)"/>, for a given libstdc++ path (tests use a fake one).</summary>
    internal static string DiagnoseLoadFailure(Exception e, string? lib)
    {
        var inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        var baseMessage = $"TorchSharp's native library (libtorch 2.10 via TorchSharp-cpu 0.107.0) could not be loaded: {inner.Message}";
        if (!OperatingSystem.IsLinux()) return baseMessage + " Check that the TorchSharp-cpu package's native assets for this OS were restored.";
        if (lib is not null && !FileContains(lib, RequiredGlibcxx))
        {
            return $"{baseMessage}{Environment.NewLine}" +
                   $"Cause: {lib} lacks {RequiredGlibcxx} (the C++ runtime of GCC 13 or newer), which libLibTorchSharp.so needs. " +
                   "Debian 12 ships GCC 12's libstdc++ (up to GLIBCXX_3.4.30)." + Environment.NewLine +
                   "Fix: run `bash eng/setup.sh` from the ContrastSeg checkout (as root or with sudo): on Debian 12 it installs " +
                   "libstdc++6 from Debian 13 (trixie) and changes nothing elsewhere. Ubuntu 24.04+, Debian 13+ and Fedora 39+ already have it.";
        }
        var searched = NativePreload.Searched.Count > 0 ? " The kit looked for libtorch in " + string.Join(", ", NativePreload.Searched) + "." : "";
        return baseMessage + " (libstdc++ has " + RequiredGlibcxx + "; check that libtorch's files in the NuGet cache are complete, e.g. clear ~/.nuget/packages/libtorch-cpu-linux-x64 and restore again; " +
               "a script needs `#r \"nuget: ContrastSeg.Core\"` or `#r \"nuget: TorchSharp-cpu, 0.107.0\"` so that NuGet restores libtorch, and NUGET_PACKAGES must name the folder it restored to)." + searched;
    }

    /// <summary>The libstdc++.so.6 the dynamic loader resolves, or null when none is found.</summary>
    internal static string? FindLibStdCxx()
    {
        string[] candidates =
        {
            "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        return candidates.FirstOrDefault(File.Exists);
    }

    internal static bool FileContains(string path, string ascii)
    {
        var needle = System.Text.Encoding.ASCII.GetBytes(ascii);
        var bytes = File.ReadAllBytes(path);
        return bytes.AsSpan().IndexOf(needle) >= 0;
    }

    /// <summary>The <c>CONTRASTSEG_THREADS</c> value when it fixes the thread count (set, and not <c>auto</c>), else null.</summary>
    internal static string? FixedThreadsSetting()
    {
        var text = Environment.GetEnvironmentVariable(ThreadsVariable);
        return string.IsNullOrWhiteSpace(text) || text.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase) ? null : text;
    }

    private static RuntimeStatus Apply(NumericsMode numerics)
    {
        if (FixedThreadsSetting() is { } threadsText)
        {
            if (!int.TryParse(threadsText, out var threads) || threads < 1)
                throw new TorchRuntimeException($"{ThreadsVariable}='{threadsText}' is not a positive whole number of threads (or auto).");
            torch.set_num_threads(threads);
        }
        else if (numerics == NumericsMode.Portable) torch.set_num_threads(Numerics.PortableThreads);

        var (disable, reason) = DecideMkldnn(Environment.GetEnvironmentVariable(MkldnnVariable),
            OperatingSystem.IsLinux(), CpuCacheTopologyReported(), numerics == NumericsMode.Portable);
        if (disable) LibTorchNative.SetMkldnnEnabled(false);
        var mmapThreshold = ApplyMmapThreshold(Environment.GetEnvironmentVariable(MmapThresholdVariable));
        return new RuntimeStatus(torch.get_num_threads(), !disable, reason, mmapThreshold, NumericsInForce(numerics));
    }

    /// <summary>What the kernel libraries run now, read back from them where they tell (ATen, MKL), else as set (oneDNN).</summary>
    private static NumericsStatus NumericsInForce(NumericsMode mode) =>
        new(mode, Safe(LibTorchNative.AtenCapability), Numerics.NativeEnvironment("ONEDNN_MAX_CPU_ISA") ?? "best of the CPU",
            Safe(LibTorchNative.MklBranch), CpuInfo.Machine);

    private static string Safe(Func<string> read)
    {
        try { return read(); }
        catch (Exception e) when (e is EntryPointNotFoundException or TorchRuntimeException or DllNotFoundException) { return "unknown"; }
    }

    /// <summary>
    /// Whether to switch oneDNN off, and why, from the <c>CONTRASTSEG_MKLDNN</c> value and the machine.
    /// <c>auto</c> switches it off on Linux when the CPU reports no cache topology: the crash was seen on
    /// such a VM, and a VM reporting its topology ran full ResNet-50 training with oneDNN, 25 % faster.
    /// </summary>
    internal static (bool Disable, string Reason) DecideMkldnn(string? setting, bool isLinux, bool cacheTopologyReported, bool portable = false)
    {
        var mode = (setting ?? "auto").Trim().ToLowerInvariant();
        return mode switch
        {
            "on" => (false, $"{MkldnnVariable}=on"),
            "off" => (true, $"{MkldnnVariable}=off"),
            // oneDNN's state is part of the numbers: portable runs keep it on on every machine. Where the CPU reports no
            // cache topology, ResNet-50's strided 1x1 backward may then crash (SIGFPE); CONTRASTSEG_MKLDNN=off avoids it,
            // as another numerics class.
            "auto" or "" when portable && isLinux && !cacheTopologyReported =>
                (false, $"auto, portable numerics: oneDNN on everywhere (this CPU reports no cache topology: if ResNet-50 training dies with SIGFPE, set {MkldnnVariable}=off, another numerics class)"),
            "auto" or "" when portable => (false, "auto, portable numerics: oneDNN on everywhere"),
            "auto" or "" when isLinux && !cacheTopologyReported =>
                (true, "auto: the CPU reports no cache topology (/sys/devices/system/cpu/cpu0/cache), where oneDNN's brgemm convolution backward crashes with SIGFPE"),
            "auto" or "" => (false, "auto: the CPU reports its cache topology (or this is not Linux); oneDNN left on"),
            _ => throw new TorchRuntimeException($"{MkldnnVariable}='{setting}' is not one of auto, on, off."),
        };
    }

    /// <summary>Parses <c>CONTRASTSEG_MMAP_THRESHOLD</c>; null means leave glibc alone.</summary>
    internal static int? ParseMmapThreshold(string? setting)
    {
        if (string.IsNullOrWhiteSpace(setting) || setting.Trim().Equals("off", StringComparison.OrdinalIgnoreCase)) return null;
        if (int.TryParse(setting, out var bytes) && bytes > 0) return bytes;
        throw new TorchRuntimeException($"{MmapThresholdVariable}='{setting}' is not a positive number of bytes or 'off'.");
    }

    private static int? ApplyMmapThreshold(string? setting)
    {
        var threshold = ParseMmapThreshold(setting);
        return threshold is null ? null : SetMmapThreshold(threshold.Value);
    }

    /// <summary>Fixes glibc's mmap threshold (process-wide, permanent); returns it, or null where not glibc.</summary>
    internal static int? SetMmapThreshold(int bytes)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            return Glibc.mallopt(Glibc.M_MMAP_THRESHOLD, bytes) == 1 ? bytes : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null; // not glibc (e.g. musl): nothing to tune
        }
    }

    private static class Glibc
    {
        public const int M_MMAP_THRESHOLD = -3;

        [DllImport("libc", EntryPoint = "mallopt")]
        public static extern int mallopt(int param, int value);
    }

    /// <summary>True when Linux sysfs describes at least one cache level for cpu0.</summary>
    internal static bool CpuCacheTopologyReported()
    {
        const string dir = "/sys/devices/system/cpu/cpu0/cache";
        try { return Directory.Exists(dir) && Directory.EnumerateDirectories(dir, "index*").Any(); }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}

/// <summary>The runtime settings in force.</summary>
/// <param name="Threads">libtorch intra-op threads.</param>
/// <param name="MkldnnEnabled">Whether oneDNN (mkldnn) kernels may be used.</param>
/// <param name="MkldnnReason">Why oneDNN is on or off.</param>
/// <param name="MmapThreshold">glibc's fixed mmap threshold in bytes, or null when left to glibc.</param>
/// <param name="Numerics">The numerics mode and the instruction levels in force.</param>
public sealed record RuntimeStatus(int Threads, bool MkldnnEnabled, string MkldnnReason, int? MmapThreshold, NumericsStatus Numerics)
{
    /// <summary>Where libtorch's native libraries were loaded from: beside the application, or preloaded from the NuGet packages folder (scripts, notebooks).</summary>
    public string NativeLibraries { get; init; } = "";
}

/// <summary>The numerics of this process: the mode asked for and what the kernel libraries run.</summary>
/// <param name="Mode">Portable or native (<c>CONTRASTSEG_NUMERICS</c>).</param>
/// <param name="AtenCapability">ATen's CPU capability in force (AVX2, AVX512, DEFAULT), read from libtorch.</param>
/// <param name="OneDnnMaxIsa">oneDNN's maximum ISA as set in the environment, or "best of the CPU".</param>
/// <param name="MklBranch">MKL's code branch in force, read from MKL (AUTO when not pinned).</param>
/// <param name="Cpu">The CPU.</param>
public sealed record NumericsStatus(NumericsMode Mode, string AtenCapability, string OneDnnMaxIsa, string MklBranch, CpuInfo Cpu)
{
    /// <summary>One line for logs, e.g. <c>numerics: portable (ATen AVX2, oneDNN AVX2, MKL AVX2) on Intel Xeon ...</c>.</summary>
    public override string ToString() =>
        $"numerics: {Mode.ToString().ToLowerInvariant()} (ATen {AtenCapability}, oneDNN {OneDnnMaxIsa}, MKL {MklBranch}) on {Cpu}";
}

/// <summary>The native runtime cannot be used; the message names the cause and the fix.</summary>
public sealed class TorchRuntimeException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TorchRuntimeException(string message, Exception? inner = null) : base(message, inner) { }
}

