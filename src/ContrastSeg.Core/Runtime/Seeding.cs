using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>
/// Seeds every random source the kit uses, so a run is reproducible on the CPU. On CUDA the seed is set too (dropout on
/// the GPU draws from CUDA's generator), but CUDA kernels are not bit-reproducible and its generator is not checkpointed.
/// </summary>
public static class Seeding
{
    /// <summary>Seeds libtorch's global generator (weights init, dropout, sampling).</summary>
    public static void SeedAll(long seed)
    {
        TorchRuntime.EnsureInitialized();
        torch.manual_seed(seed);
        if (torch.cuda.is_available()) torch.cuda.manual_seed_all(seed);
    }
}
