namespace ContrastSeg.Training;

/// <summary>Another training holds the run folder; the message names the holder (process, host, start time, command).</summary>
public sealed class RunInUseException : IOException
{
    /// <summary>Creates the exception.</summary>
    public RunInUseException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// The exclusive lock of a run folder while a training writes it: <c>run.lock</c>, opened with <see cref="FileShare.None"/>
/// for the whole training (an <c>flock</c> on Linux and macOS, a sharing lock on Windows). The operating system releases it
/// when the process ends, however it ends, so a killed run leaves no stale lock. Two trainings of one folder would
/// interleave metrics.jsonl and delete each other's checkpoint writes: the second is refused.
/// </summary>
/// <remarks>
/// The holder is described in <c>run.lock.holder</c>, not in run.lock itself: a file held with FileShare.None cannot be
/// read by another .NET process (its own open takes a shared lock and fails). run.lock stays after a run (removing it could
/// let two processes lock two different files of that name); the holder file is removed when the lock is released, and
/// a stale one (of a killed process) is only read by a process that failed to take the lock, after the new holder rewrote it.
/// Reading a run (evaluate, predict, a grid reusing a finished stage) takes no lock.
/// </remarks>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name in a run folder.</summary>
    public const string FileName = "run.lock";

    /// <summary>The holder's description next to it.</summary>
    public const string HolderFileName = "run.lock.holder";

    private readonly FileStream _lock;
    private readonly string _holder;

    private RunLock(FileStream held, string holder) => (_lock, _holder) = (held, holder);

    /// <summary>Creates <paramref name="runDirectory"/> if needed and locks it for this process until disposed.</summary>
    /// <exception cref="RunInUseException">Another process (or another training in this one) holds it.</exception>
    /// <exception cref="OutputFolderException">The folder cannot be created or written.</exception>
    public static RunLock Acquire(string runDirectory)
    {
        const string instead = "set another OutputRoot (--set OutputRoot=<folder>)";
        var path = Path.Combine(runDirectory, FileName);
        FileStream held;
        try
        {
            Directory.CreateDirectory(runDirectory);
            held = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (IsHeldElsewhere(e))
        {
            throw new RunInUseException($"{Path.GetFullPath(runDirectory)} is being trained by {Holder(runDirectory)}: two trainings of one run folder " +
                                        $"would mix their logs and checkpoints. Wait for it to finish (it holds {FileName} until it exits), or train " +
                                        "other settings or another Name.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw OutputFolder.NotWritable(runDirectory, "the run folder", instead, e);
        }
        var holder = Path.Combine(runDirectory, HolderFileName);
        try
        {
            var command = Environment.CommandLine;
            if (command.Length > 300) command = command[..300] + "...";
            File.WriteAllText(holder, $"process {Environment.ProcessId} on {Environment.MachineName}, since {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss} UTC ({command})" + Environment.NewLine);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            held.Dispose();
            throw OutputFolder.NotWritable(runDirectory, "the run folder", instead, e);
        }
        return new RunLock(held, holder);
    }

    /// <summary>Who holds the lock of <paramref name="runDirectory"/>, as its holder file says.</summary>
    private static string Holder(string runDirectory)
    {
        var file = Path.Combine(runDirectory, HolderFileName);
        try { return File.Exists(file) ? File.ReadAllText(file).Trim() : $"another process (it has not written {HolderFileName} yet)"; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"another process ({HolderFileName} unreadable: {e.Message})"; }
    }

    /// <summary>Whether opening failed because another handle holds the file (flock's EWOULDBLOCK, Windows' sharing or lock violation).</summary>
    private static bool IsHeldElsewhere(IOException e) =>
        e.GetType() == typeof(IOException) && e.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021);

    /// <summary>Removes the holder file (while still holding the lock, so it never describes the next holder) and releases the lock.</summary>
    public void Dispose()
    {
        try { File.Delete(_holder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the next holder overwrites it
        _lock.Dispose();
    }
}
