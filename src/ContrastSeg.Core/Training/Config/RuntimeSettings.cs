using ContrastSeg.Runtime;

namespace ContrastSeg.Training;

/// <summary>
/// Where a run computes. Not part of what a run is: <see cref="TrainConfig.WeightsDefiningJson"/> leaves this section
/// out, so the run name is the same on every device and a run resumes on another device.
/// </summary>
public sealed record RuntimeSettings
{
    /// <summary>
    /// <c>auto</c> (default: <c>CONTRASTSEG_DEVICE</c> if set, else CUDA when available, else the CPU), <c>cpu</c>, <c>cuda</c> or
    /// <c>cuda:N</c> (see <see cref="Devices"/>). A run's config.json records the device it used (e.g. <c>cpu</c>).
    /// </summary>
    public string Device { get; init; } = Devices.Auto;
}
