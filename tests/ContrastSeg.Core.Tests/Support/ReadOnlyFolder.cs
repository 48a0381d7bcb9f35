using System.Diagnostics;

namespace ContrastSeg.Tests.Support;

/// <summary>
/// A folder nothing can be written to, even by root (tests run as root in CI, where permission bits do not bite):
/// as another user, a folder without write permission; as root, a folder made immutable with <c>chattr +i</c>
/// (ext4, xfs, btrfs); where that is not possible (tmpfs, no CAP_LINUX_IMMUTABLE), a folder path that goes through a
/// regular file, which cannot be created. <see cref="How"/> says which, for failure messages.
/// </summary>
public sealed class ReadOnlyFolder : IDisposable
{
    private readonly string _root;
    private readonly bool _immutable;

    /// <summary>Creates the folder and makes it unwritable.</summary>
    public ReadOnlyFolder()
    {
        _root = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "contrastseg-readonly-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_root);
        Path = System.IO.Path.Combine(_root, "out");
        Directory.CreateDirectory(Path);
        if (!OperatingSystem.IsWindows() && Environment.UserName != "root")
        {
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            How = "chmod 0500";
        }
        else if (!OperatingSystem.IsWindows() && Run("chattr", "+i", Path))
        {
            _immutable = true;
            How = "chattr +i";
        }
        else
        {
            File.WriteAllText(System.IO.Path.Combine(_root, "a-file"), "");
            Path = System.IO.Path.Combine(_root, "a-file", "out");
            How = "a path through a regular file";
        }
    }

    /// <summary>The folder that cannot be written (or created).</summary>
    public string Path { get; }

    /// <summary>How it was made unwritable.</summary>
    public string How { get; }

    private static bool Run(string program, params string[] args)
    {
        try
        {
            var info = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in args) info.ArgumentList.Add(a);
            using var p = Process.Start(info)!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; } // no such program
    }

    /// <summary>Makes the folder writable again and deletes it.</summary>
    public void Dispose()
    {
        if (_immutable) Run("chattr", "-i", Path);
        else if (Directory.Exists(Path) && !OperatingSystem.IsWindows()) File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
