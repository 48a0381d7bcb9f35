using System.Globalization;
using System.Reflection;
using ContrastSeg.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Runtime;

/// <summary>The device a run computes on, and why (for the run's log).</summary>
/// <param name="Name">Resolved device: <c>cpu</c> or <c>cuda:N</c> (what config.json records).</param>
/// <param name="Reason">Where the choice came from, e.g. <c>auto: CUDA not available</c> or <c>CONTRASTSEG_DEVICE=cpu</c>.</param>
public sealed record DeviceChoice(string Name, string Reason)
{
    /// <summary>The TorchSharp device.</summary>
    public Device Device => new(Name);

    /// <summary>The log line, e.g. <c>device: cpu (auto: CUDA not available)</c>.</summary>
    public override string ToString() => $"device: {Name} ({Reason})";
}

/// <summary>
/// The device setting (<c>Runtime.Device</c>, CLI <c>--device</c>, environment variable <c>CONTRASTSEG_DEVICE</c>):
/// <c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>, parsed, validated and resolved in one place.
/// Precedence: an explicit setting (anything but <c>auto</c>) over the environment variable over <c>auto</c>, which is
/// CUDA when TorchSharp reports it available (torch.cuda.is_available()) and the CPU otherwise.
/// </summary>
public static class Devices
{
    /// <summary>Environment variable that chooses the device when the setting says <c>auto</c>.</summary>
    public const string Variable = "CONTRASTSEG_DEVICE";

    /// <summary>The setting's default: the environment variable, else CUDA when available, else the CPU.</summary>
    public const string Auto = "auto";

    /// <summary>The config field of the setting.</summary>
    public const string Field = "Runtime.Device";

    /// <summary>What the setting takes, as messages say it.</summary>
    public const string Accepted = "auto, cpu, cuda or cuda:N (N = 0, 1, ...: the N-th CUDA device)";

    /// <summary>Where the README explains the backend package swap.</summary>
    public const string BackendHelp = "README.md, section \"GPU and cluster\" > \"Device and backend\"";

    /// <summary>
    /// The libtorch backend this build of the kit was compiled with (MSBuild property <c>TorchBackend</c>, recorded in the
    /// assembly): <c>cpu</c> (package TorchSharp-cpu, the default) or <c>cuda</c> (TorchSharp-cuda-linux / -windows).
    /// </summary>
    public static string Backend { get; } =
        typeof(Devices).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value is { Length: > 0 } b
            ? b : "cpu";

    /// <summary>The TorchSharp package of <see cref="Backend"/>, for messages.</summary>
    public static string BackendPackage => Backend == "cuda"
        ? (OperatingSystem.IsWindows() ? "TorchSharp-cuda-windows" : "TorchSharp-cuda-linux") + " 0.107.0"
        : "TorchSharp-cpu 0.107.0";

    /// <summary>
    /// The normal form of a device setting (<c>auto</c>, <c>cpu</c>, <c>cuda:N</c>; <c>cuda</c> is <c>cuda:0</c>), or null when
    /// <paramref name="text"/> is none of them. Case and surrounding blanks do not matter.
    /// </summary>
    public static string? Normalize(string? text)
    {
        var t = (text ?? "").Trim().ToLowerInvariant();
        if (t is Auto or "cpu") return t;
        if (t == "cuda") return "cuda:0";
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && t.Length > 5 && t[5..].All(char.IsAsciiDigit)
            && int.TryParse(t[5..], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            return $"cuda:{index}";
        return null;
    }

    /// <summary>The normal form of <paramref name="text"/>; an unknown value is a <see cref="ConfigException"/> naming <paramref name="field"/> and the value.</summary>
    public static string Parse(string? text, string field = Field) =>
        Normalize(text) ?? throw new ConfigException($"{field} = '{text}' is invalid: must be {Accepted}.", field);

    /// <summary>The device of the module's parameters (the CPU for a module without parameters).</summary>
    public static Device Of(nn.Module module) => module.parameters().FirstOrDefault()?.device ?? CPU;

    /// <summary>
    /// Resolves the device setting <paramref name="setting"/> (from <paramref name="field"/>: the config's
    /// <c>Runtime.Device</c> or a command-line option) with <c>CONTRASTSEG_DEVICE</c> and what libtorch reports.
    /// </summary>
    /// <exception cref="ConfigException">An unknown value, or CUDA asked for where it is not available (the message says why and what to do).</exception>
    public static DeviceChoice Choose(string? setting, string field = Field)
    {
        TorchRuntime.EnsureInitialized();
        var available = torch.cuda.is_available();
        return Choose(setting, field, Environment.GetEnvironmentVariable(Variable), available, available ? torch.cuda.device_count() : 0, Backend);
    }

    /// <summary>As <see cref="Choose(string?, string)"/>, with the environment and the machine given (tests).</summary>
    internal static DeviceChoice Choose(string? setting, string field, string? environment, bool cudaAvailable, int cudaDevices, string backend)
    {
        var requested = Parse(setting ?? Auto, field);
        var (name, source, sourceField) = requested != Auto
            ? (requested, $"{field}={setting!.Trim()}", field)
            : string.IsNullOrWhiteSpace(environment) || Normalize(environment) == Auto
                ? (Auto, "", field)
                : (Parse(environment, Variable), $"{Variable}={environment.Trim()}", Variable);
        if (name == Auto)
            return cudaAvailable
                ? new DeviceChoice("cuda:0", $"auto: CUDA available, {cudaDevices} device{(cudaDevices == 1 ? "" : "s")}")
                : new DeviceChoice("cpu", backend == "cuda" ? "auto: CUDA not available (no GPU visible)" : "auto: CUDA not available, TorchSharp-cpu backend");
        if (name == "cpu") return new DeviceChoice(name, source);
        var shown = sourceField == Variable ? environment!.Trim() : setting!.Trim();
        if (!cudaAvailable)
            throw new ConfigException(backend == "cuda"
                ? $"{sourceField} = '{shown}' asks for CUDA, but torch.cuda.is_available() is false: this build has the CUDA backend " +
                  $"({BackendPackage}) and no NVIDIA GPU or driver is visible to this process (check nvidia-smi and CUDA_VISIBLE_DEVICES), or use cpu / auto."
                : $"{sourceField} = '{shown}' asks for CUDA, but this build uses the TorchSharp-cpu backend (LibTorch 2.10 for the CPU), which has no CUDA: " +
                  $"build with the CUDA backend package (dotnet build -p:TorchBackend=cuda; see {BackendHelp}), or use cpu / auto.", sourceField);
        var index = int.Parse(name["cuda:".Length..], CultureInfo.InvariantCulture);
        if (index >= cudaDevices)
            throw new ConfigException($"{sourceField} = '{shown}' asks for CUDA device {index}, but this machine has {cudaDevices} (cuda:0 to cuda:{cudaDevices - 1}).", sourceField);
        return new DeviceChoice(name, source);
    }
}
