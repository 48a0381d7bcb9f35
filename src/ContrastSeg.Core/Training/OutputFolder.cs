namespace ContrastSeg.Training;

/// <summary>A folder the kit must write to cannot be written (read-only, no permission, a file in the way); the message names it.</summary>
public sealed class OutputFolderException : IOException
{
    /// <summary>Creates the exception.</summary>
    public OutputFolderException(string folder, string message, Exception inner) : base(message, inner) => Folder = folder;

    /// <summary>The folder that cannot be written.</summary>
    public string Folder { get; }
}

/// <summary>
/// Checks, before any work, that a folder a command writes to can be created and written: a read-only output folder
/// is one line naming it, not an access error from deep inside training or prediction after the work was done.
/// </summary>
public static class OutputFolder
{
    /// <summary>
    /// Creates <paramref name="folder"/> if needed and writes (then removes) a probe file in it.
    /// <paramref name="what"/> says what the folder is for, <paramref name="instead"/> what to do instead (both for the message).
    /// </summary>
    /// <exception cref="OutputFolderException">The folder cannot be created or written.</exception>
    public static void RequireWritable(string folder, string what, string instead)
    {
        try
        {
            Directory.CreateDirectory(folder);
            // DeleteOnClose: the probe never outlives the check, even if the process dies here.
            using var probe = new FileStream(Path.Combine(folder, $".write-check-{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.Write,
                FileShare.None, 1, FileOptions.DeleteOnClose);
            probe.WriteByte(0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw NotWritable(folder, what, instead, e);
        }
    }

    /// <summary>The exception for <paramref name="folder"/> that <paramref name="e"/> showed cannot be written.</summary>
    public static OutputFolderException NotWritable(string folder, string what, string instead, Exception e)
    {
        // .NET's own messages name a probe or lock file, not the folder, and "access denied" or "could not find a part of
        // the path" say nothing of why.
        var why = e is UnauthorizedAccessException ? "permission denied (or the folder is immutable)"
            : FileInTheWay(folder) is { } file ? $"{file} is a file, not a folder"
            : e.Message.TrimEnd('.');
        return new OutputFolderException(folder, $"cannot write to {Path.GetFullPath(folder)} ({what}): {why}. Make it writable, or {instead}.", e);
    }

    /// <summary>The file that stands where <paramref name="folder"/> or one of its parents should be, or null.</summary>
    private static string? FileInTheWay(string folder)
    {
        for (var p = Path.GetFullPath(folder); !string.IsNullOrEmpty(p); p = Path.GetDirectoryName(p))
        {
            if (File.Exists(p)) return p;
            if (Directory.Exists(p)) return null;
        }
        return null;
    }
}
