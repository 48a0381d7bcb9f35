using ContrastSeg.Runtime;

namespace ContrastSeg.Tests.Support;

/// <summary>Initialises the runtime once (native check, oneDNN guard) before tests touch tensors directly.</summary>
public static class TorchFixture
{
    public static void Init() => TorchRuntime.EnsureInitialized();
}
