using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>Seeds every random source the kit uses, so a run is reproducible on CPU.</summary>
public static class Seeding
{
    /// <summary>Seeds libtorch's global generator (weights init, dropout, sampling).</summary>
    public static void SeedAll(long seed)
    {
        TorchRuntime.EnsureInitialized();
        torch.manual_seed(seed);
    }
}
