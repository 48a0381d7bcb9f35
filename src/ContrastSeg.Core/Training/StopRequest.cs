using System.Runtime.InteropServices;

namespace ContrastSeg.Training;

/// <summary>
/// The signals that stop a training or a grid (SIGTERM, SIGINT, SIGHUP) with their numbers, the same on Linux and macOS:
/// a process one of them stops exits with 128 + the number.
/// </summary>
public static class StopSignals
{
    /// <summary>Each stopping signal and its number.</summary>
    public static IReadOnlyList<(PosixSignal Signal, int Number)> All { get; } =
        [(PosixSignal.SIGTERM, 15), (PosixSignal.SIGINT, 2), (PosixSignal.SIGHUP, 1)];

    /// <summary>The number of a stopping signal.</summary>
    public static int Number(PosixSignal signal) => All.First(s => s.Signal == signal).Number;
}

/// <summary>
/// A stop asked for by a signal while a run trains (SIGTERM from a grid, a scheduler or <c>kill</c>; SIGINT from Ctrl-C;
/// SIGHUP from a closed terminal): the trainer finishes the step under way, writes a checkpoint and stops, so that the
/// next start resumes exactly there instead of replaying up to <c>CheckpointEvery</c> steps. A second signal is left to
/// the runtime's default: it ends the process at once (as SIGKILL would; the last checkpoint still resumes exactly).
/// </summary>
internal sealed class StopRequest : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private volatile int _signal;

    /// <summary>Listens for SIGTERM, SIGINT and SIGHUP until disposed (nothing on Windows, which has no such signals).</summary>
    public StopRequest()
    {
        if (OperatingSystem.IsWindows()) return;
        foreach (var (signal, _) in StopSignals.All)
            _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
    }

    /// <summary>The signal's number once one has asked the run to stop (15, 2 or 1), else 0.</summary>
    public int Signal => _signal;

    private void OnSignal(PosixSignalContext context)
    {
        if (_signal != 0) return; // the second one: the default action ends the process now
        context.Cancel = true;
        _signal = StopSignals.Number(context.Signal);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }
}

/// <summary>A run stopped by a signal after checkpointing the step it had finished; running it again resumes there.</summary>
public sealed class TrainingInterruptedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingInterruptedException(string message, int signal, string checkpoint) : base(message)
    {
        Signal = signal;
        Checkpoint = checkpoint;
    }

    /// <summary>The signal's number (15 SIGTERM, 2 SIGINT, 1 SIGHUP): a process it stopped exits with 128 + it.</summary>
    public int Signal { get; }

    /// <summary>The checkpoint written at the stop.</summary>
    public string Checkpoint { get; }
}
