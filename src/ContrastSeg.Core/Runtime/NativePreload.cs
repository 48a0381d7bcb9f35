using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>
/// Makes libtorch loadable where the host does not lay its natives beside the application: <c>dotnet fsi</c> and notebooks
/// with <c>#r "nuget: ContrastSeg.Core"</c> (or <c>TorchSharp-cpu</c>). There TorchSharp's first step fails: the host finds
/// libtorch_cpu in its package but not libtorch.so, which libLibTorchSharp.so needs, as both sit in different package
/// folders. TorchSharp then copies every native of the libtorch package (478 MB) into its own package folder, or gives up
/// ("doesn't contain a reference to libtorch-cpu-linux-x64") when it cannot. Instead the kit loads libtorch and
/// libLibTorchSharp by path from the NuGet packages folder, for the libtorch version this TorchSharp expects, so that
/// TorchSharp's first step finds them by name (the loader matches already loaded libraries by soname): nothing is copied.
/// </summary>
/// <remarks>
/// Measured on Linux x64 (eng/package-check.sh); the macOS and Windows file names follow TorchSharp's packages, untested.
/// Runs after <see cref="Numerics.ApplyBeforeLoad"/> and before TorchSharp's first call. Loading a library by path only
/// decides where its file comes from, never which libtorch: the version is the one TorchSharp names, so what is trained is
/// the same as with natives beside the application. Where nothing is found the kit leaves the load to TorchSharp, whose
/// error the kit explains with the folders it searched (<see cref="Searched"/>).
/// </remarks>
internal static class NativePreload
{
    /// <summary>NuGet's variable for the global packages folder (default ~/.nuget/packages).</summary>
    public const string PackagesVariable = "NUGET_PACKAGES";

    /// <summary>Where the natives came from, for <see cref="RuntimeStatus.NativeLibraries"/>.</summary>
    public static string Source { get; private set; } = "not loaded yet";

    /// <summary>The libtorch folders looked at when the regular load failed (for the error message); empty otherwise.</summary>
    public static IReadOnlyList<string> Searched { get; private set; } = [];

    /// <summary>Loads the natives from the NuGet packages folder when TorchSharp's regular load would fail. Once per process.</summary>
    public static void Prepare()
    {
        var torchSharp = typeof(torch).Assembly;
        var names = NativeNames.ForThisOs();
        if (names is null) { Source = "left to TorchSharp (no libtorch-cpu package for this OS and CPU)"; return; }
        // TorchSharp's own first step: an application's output folder (or its deps.json) has everything.
        if (NativeLibrary.TryLoad("torch_cpu", torchSharp, null, out _) && NativeLibrary.TryLoad("LibTorchSharp", torchSharp, null, out _))
        {
            Source = "beside the application (TorchSharp's regular load)";
            return;
        }
        if (KitBackend() != "cpu")
        {
            // The CUDA natives come in several packages that TorchSharp consolidates itself.
            Source = "left to TorchSharp (CUDA backend)";
            return;
        }
        var libtorchVersion = ExpectedLibTorchVersion(torchSharp);
        var torchSharpVersion = torchSharp.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
                                ?? torchSharp.GetName().Version?.ToString(3) ?? "";
        var roots = PackageRoots(Environment.GetEnvironmentVariable(PackagesVariable),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), torchSharp.Location);
        var found = Locate(roots, names, libtorchVersion, torchSharpVersion, Path.GetDirectoryName(torchSharp.Location));
        Searched = found.Searched;
        if (found.LibTorch is null || found.LibTorchSharp is null)
        {
            Source = "left to TorchSharp (libtorch not found in " + string.Join(", ", found.Searched) + ")";
            return;
        }
        // libtorch first (its RUNPATH $ORIGIN brings libtorch_cpu, libc10 and libgomp from the same folder), then the binding,
        // whose NEEDED entries the loader resolves to those already loaded.
        try
        {
            NativeLibrary.Load(found.LibTorch);
            NativeLibrary.Load(found.LibTorchSharp);
        }
        catch (DllNotFoundException e) when (!OperatingSystem.IsLinux())
        {
            // Only tried on Linux: on macOS and Windows TorchSharp's own loader gets its chance (the same libtorch version either way).
            Source = $"left to TorchSharp (preloading {found.LibTorch} failed: {e.Message})";
            return;
        }
        Source = $"preloaded from the NuGet packages folder: {Path.GetDirectoryName(found.LibTorch)} and {Path.GetDirectoryName(found.LibTorchSharp)}";
    }

    /// <summary>The backend this build of the kit was compiled for (read here without touching <see cref="Devices"/>, whose statics call libtorch).</summary>
    private static string KitBackend() =>
        typeof(NativePreload).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value is { Length: > 0 } b
            ? b : "cpu";

    /// <summary>
    /// The libtorch package version TorchSharp loads (its constant <c>libtorchPackageVersion</c>, e.g. 2.10.0.0 in 0.107.0),
    /// read as metadata so that no TorchSharp code runs, in NuGet's folder form (2.10.0).
    /// </summary>
    internal static string? ExpectedLibTorchVersion(Assembly torchSharp)
    {
        var field = torchSharp.GetType("TorchSharp.torch")?.GetField("libtorchPackageVersion", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Static);
        return field is { IsLiteral: true } && field.GetRawConstantValue() is string v ? NormalizeVersion(v) : null;
    }

    /// <summary>NuGet's normalized version, as its folders are named: a fourth part of 0 is dropped (2.10.0.0 -> 2.10.0).</summary>
    internal static string NormalizeVersion(string version)
    {
        var v = version.Trim();
        if (!Version.TryParse(v.Split('-')[0], out var parsed)) return v.ToLowerInvariant();
        var three = $"{parsed.Major}.{parsed.Minor}.{Math.Max(parsed.Build, 0)}";
        var core = parsed.Revision > 0 ? $"{three}.{parsed.Revision}" : three;
        var suffix = v.Contains('-') ? v[v.IndexOf('-')..] : "";
        return (core + suffix).ToLowerInvariant();
    }

    /// <summary>
    /// The NuGet packages folders to search, in order: <c>NUGET_PACKAGES</c>, ~/.nuget/packages, and the folder TorchSharp.dll
    /// itself was loaded from when that is a package folder (<c>&lt;root&gt;/torchsharp/&lt;version&gt;/lib/&lt;tfm&gt;/</c>).
    /// </summary>
    internal static IReadOnlyList<string> PackageRoots(string? packagesVariable, string? home, string? torchSharpLocation)
    {
        var roots = new List<string>();
        if (!string.IsNullOrWhiteSpace(packagesVariable)) roots.Add(packagesVariable);
        if (!string.IsNullOrWhiteSpace(home)) roots.Add(Path.Combine(home, ".nuget", "packages"));
        if (!string.IsNullOrEmpty(torchSharpLocation))
        {
            var lib = Path.GetDirectoryName(torchSharpLocation); // .../torchsharp/0.107.0/lib/net8.0
            var package = lib is null ? null : Directory.GetParent(lib)?.Parent?.Parent; // .../torchsharp
            if (package is not null && package.Name.Equals("torchsharp", StringComparison.OrdinalIgnoreCase) && package.Parent is { } root)
                roots.Add(root.FullName);
        }
        return roots.Select(r => Path.GetFullPath(r).TrimEnd(Path.DirectorySeparatorChar)).Distinct().ToList();
    }

    /// <summary>What <see cref="Locate"/> found: the two files to load (null when absent) and the folders it looked in.</summary>
    internal sealed record Found(string? LibTorch, string? LibTorchSharp, IReadOnlyList<string> Searched);

    /// <summary>
    /// Finds libtorch (package <c>libtorch-cpu-&lt;rid&gt;/&lt;libtorchVersion&gt;</c>) and libLibTorchSharp (beside TorchSharp.dll's
    /// package, else package <c>torchsharp/&lt;torchSharpVersion&gt;</c>) under the first root that has each.
    /// </summary>
    internal static Found Locate(IReadOnlyList<string> roots, NativeNames names, string? libtorchVersion, string torchSharpVersion, string? torchSharpDir)
    {
        var searched = new List<string>();
        string? libtorch = null, binding = null;
        // TorchSharp.dll loaded from its package: the binding is in that package's runtimes folder.
        if (torchSharpDir is not null)
        {
            var beside = Path.GetFullPath(Path.Combine(torchSharpDir, "..", "..", "runtimes", names.Rid, "native", names.LibTorchSharp));
            if (File.Exists(beside)) binding = beside;
        }
        foreach (var root in roots)
        {
            if (libtorch is null && libtorchVersion is not null)
            {
                var dir = Path.Combine(root, names.LibTorchPackage, libtorchVersion, "runtimes", names.Rid, "native");
                searched.Add(dir);
                if (File.Exists(Path.Combine(dir, names.LibTorch))) libtorch = Path.Combine(dir, names.LibTorch);
            }
            if (binding is null && torchSharpVersion.Length > 0)
            {
                var file = Path.Combine(root, "torchsharp", torchSharpVersion.ToLowerInvariant(), "runtimes", names.Rid, "native", names.LibTorchSharp);
                if (File.Exists(file)) binding = file;
            }
        }
        if (libtorchVersion is null) searched.Add("(TorchSharp names no libtorch version)");
        return new Found(libtorch, binding, searched);
    }

    /// <summary>File and package names of one OS and CPU.</summary>
    internal sealed record NativeNames(string Rid, string LibTorchPackage, string LibTorch, string LibTorchSharp)
    {
        /// <summary>The names here, or null where TorchSharp-cpu ships no natives (e.g. Linux on ARM).</summary>
        public static NativeNames? ForThisOs()
        {
            var arch = RuntimeInformation.ProcessArchitecture;
            if (OperatingSystem.IsLinux() && arch == Architecture.X64)
                return new("linux-x64", "libtorch-cpu-linux-x64", "libtorch.so", "libLibTorchSharp.so");
            if (OperatingSystem.IsMacOS() && arch == Architecture.Arm64)
                return new("osx-arm64", "libtorch-cpu-osx-arm64", "libtorch.dylib", "libLibTorchSharp.dylib");
            if (OperatingSystem.IsWindows() && arch == Architecture.X64)
                return new("win-x64", "libtorch-cpu-win-x64", "torch.dll", "LibTorchSharp.dll");
            return null;
        }
    }
}
