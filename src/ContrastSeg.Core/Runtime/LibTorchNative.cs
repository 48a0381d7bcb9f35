using System.Runtime.InteropServices;
using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>
/// What the kit asks libtorch_cpu directly, through its exported C++ API (TorchSharp has no binding): switching oneDNN
/// off, and reading back which instruction level ATen and MKL actually run (Itanium ABI names, libtorch 2.10).
/// </summary>
internal static class LibTorchNative
{
    private delegate IntPtr GlobalContextFn();
    private delegate void SetEnabledFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);
    private delegate byte UserEnabledFn(IntPtr context);
    private delegate IntPtr StringReturningFn(IntPtr result);
    private delegate int CbwrGetFn(int option);

    /// <summary>Sets <c>at::globalContext().setUserEnabledMkldnn(enabled)</c>.</summary>
    public static void SetMkldnnEnabled(bool enabled) =>
        Export<SetEnabledFn>("_ZN2at7Context20setUserEnabledMkldnnEb")(Context(), enabled);

    /// <summary><c>at::globalContext().userEnabledMkldnn()</c>.</summary>
    public static bool MkldnnEnabled() => Export<UserEnabledFn>("_ZNK2at7Context17userEnabledMkldnnEv")(Context()) != 0;

    /// <summary>
    /// ATen's CPU capability in force (<c>at::get_cpu_capability()</c>: DEFAULT, AVX2, AVX512, ...): what its vectorised
    /// kernels were dispatched to, decided once from <c>ATEN_CPU_CAPABILITY</c> and the CPU.
    /// </summary>
    public static string AtenCapability()
    {
        // std::string (libstdc++'s: pointer, length, 16-byte buffer) returned through a hidden result pointer.
        var result = Marshal.AllocHGlobal(32);
        try
        {
            Export<StringReturningFn>("_ZN2at18get_cpu_capabilityB5cxx11Ev")(result);
            var text = Marshal.ReadIntPtr(result);
            var length = Marshal.ReadInt64(result, 8);
            return length is > 0 and < 64 ? Marshal.PtrToStringUTF8(text, (int)length) : "unknown";
        }
        finally { Marshal.FreeHGlobal(result); }
    }

    /// <summary>MKL's code branch in force (<c>mkl_cbwr_get(MKL_CBWR_BRANCH)</c>), by name: AUTO, COMPATIBLE, AVX2, ...</summary>
    public static string MklBranch()
    {
        var value = Export<CbwrGetFn>("mkl_serv_cbwr_get")(1);
        return value switch
        {
            1 => "OFF (dispatch by CPU)", 2 => "AUTO", 3 => "COMPATIBLE", 4 => "SSE2", 6 => "SSSE3", 7 => "SSE4_1", 8 => "SSE4_2", 9 => "AVX", 10 => "AVX2",
            12 => "AVX512", 14 => "AVX512_E1", 15 => "AVX512_E2", 16 => "AVX512_E3", 17 => "AVX512_E4",
            _ => $"code {value}",
        };
    }

    private static IntPtr Context() => Export<GlobalContextFn>("_ZN2at13globalContextEv")();

    private static T Export<T>(string symbol) where T : Delegate =>
        Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(Library.Value, symbol));

    private static readonly Lazy<IntPtr> Library = new(Find);

    private static IntPtr Find()
    {
        // libtorch_cpu is already loaded by TorchSharp; dlopen by soname returns that same copy.
        foreach (var name in new[] { "libtorch_cpu.so", "libtorch_cpu.dylib" })
            if (NativeLibrary.TryLoad(name, out var handle)) return handle;
        var dir = Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? ".";
        foreach (var path in Directory.EnumerateFiles(dir, "libtorch_cpu.*", SearchOption.AllDirectories))
            if (NativeLibrary.TryLoad(path, out var handle)) return handle;
        throw new TorchRuntimeException(
            "Cannot locate libtorch_cpu to set or read its CPU settings. Set CONTRASTSEG_MKLDNN=on to skip the oneDNN guard " +
            "(safe on machines that report their CPU cache topology).");
    }
}
