using ContrastSeg.Runtime;
using Xunit;

namespace ContrastSeg.Tests;

/// <summary>How the kit finds libtorch in the NuGet packages folder for scripts (the run itself is eng/package-check.sh's).</summary>
public class NativePreloadTests
{
    private static readonly NativePreload.NativeNames Linux = new("linux-x64", "libtorch-cpu-linux-x64", "libtorch.so", "libLibTorchSharp.so");

    [Theory]
    [InlineData("2.10.0.0", "2.10.0")]
    [InlineData("2.10.0", "2.10.0")]
    [InlineData("2.10", "2.10.0")]
    [InlineData("2.10.0.1", "2.10.0.1")]
    [InlineData("2.11.0-RC1", "2.11.0-rc1")]
    public void Versions_take_NuGets_folder_form(string version, string folder) =>
        Assert.Equal(folder, NativePreload.NormalizeVersion(version));

    [Fact]
    public void TorchSharp_names_the_libtorch_version_it_loads() =>
        Assert.Equal("2.10.0", NativePreload.ExpectedLibTorchVersion(typeof(TorchSharp.torch).Assembly));

    [Fact]
    public void Package_roots_are_the_variable_the_home_folder_and_TorchSharps_own_package()
    {
        var roots = NativePreload.PackageRoots("/cache/a", "/home/u", "/cache/b/torchsharp/0.107.0/lib/net8.0/TorchSharp.dll");
        Assert.Equal(new[] { "/cache/a", "/home/u/.nuget/packages", "/cache/b" }, roots);
        // A TorchSharp.dll beside an application adds no root; duplicates are dropped.
        Assert.Equal(new[] { "/home/u/.nuget/packages" },
            NativePreload.PackageRoots(null, "/home/u", "/work/app/bin/TorchSharp.dll").Concat(NativePreload.PackageRoots("", "/home/u", null)).Distinct());
    }

    [Fact]
    public void Libtorch_and_the_binding_are_found_in_their_packages_for_the_expected_version()
    {
        var root = Directory.CreateTempSubdirectory("contrastseg-preload-").FullName;
        try
        {
            var libtorch = Touch(root, "libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native/libtorch.so");
            Touch(root, "libtorch-cpu-linux-x64/2.9.1/runtimes/linux-x64/native/libtorch.so"); // another version: never taken
            var binding = Touch(root, "torchsharp/0.107.0/runtimes/linux-x64/native/libLibTorchSharp.so");
            var libDir = Path.Combine(root, "torchsharp/0.107.0/lib/net8.0");

            var found = NativePreload.Locate([root], Linux, "2.10.0", "0.107.0", libDir);
            Assert.Equal(libtorch, found.LibTorch);
            Assert.Equal(binding, found.LibTorchSharp);

            // TorchSharp.dll outside the cache (an application folder): the binding comes from the torchsharp package of its version.
            found = NativePreload.Locate([root], Linux, "2.10.0", "0.107.0", "/nowhere/bin");
            Assert.Equal(binding, found.LibTorchSharp);

            // A version that is not restored: nothing is loaded, and the message can say where the kit looked.
            found = NativePreload.Locate(["/nowhere", root], Linux, "2.11.0", "0.107.0", libDir);
            Assert.Null(found.LibTorch);
            Assert.Equal(new[] { "/nowhere/libtorch-cpu-linux-x64/2.11.0/runtimes/linux-x64/native", Path.Combine(root, "libtorch-cpu-linux-x64/2.11.0/runtimes/linux-x64/native") }, found.Searched);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void The_test_host_loads_libtorch_beside_the_application() =>
        Assert.StartsWith("beside the application", TorchRuntime.EnsureInitialized().NativeLibraries);

    private static string Touch(string root, string relative)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "");
        return path;
    }
}
