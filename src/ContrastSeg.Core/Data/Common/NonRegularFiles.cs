using System.Runtime.InteropServices;

namespace ContrastSeg.Data;

/// <summary>
/// Tells a regular file from a FIFO, device or socket, which .NET's file APIs do not (dotnet/runtime#62868: all
/// report "Normal"). Reading one as an image either never returns (opening a FIFO for reading blocks until a
/// writer comes) or never ends (/dev/zero), so the readers refuse them before opening.
/// </summary>
internal static partial class NonRegularFiles
{
    /// <summary>
    /// What <paramref name="path"/> is when it exists but is not a regular file, e.g. "a FIFO (named pipe)"; null for a
    /// regular file, a folder or a missing path (the reader's own errors say those).
    /// </summary>
    public static string? KindOf(string path)
    {
        var info = new FileInfo(path);
        // FIFOs, devices and sockets have no size: a file with bytes is regular, and costs no more than this stat.
        if (!info.Exists || info.Length > 0 || OperatingSystem.IsWindows()) return null;
        if (!OperatingSystem.IsLinux()) return "an empty file, or not a regular file (a FIFO, device or socket: this OS does not say which)";
        var mode = ModeOf(path);
        return mode switch
        {
            null => "an empty file, or not a regular file (a FIFO, device or socket: statx failed)",
            _ => (mode.Value & TypeMask) switch
            {
                Regular => null,
                Fifo => "a FIFO (named pipe)",
                CharacterDevice => "a character device",
                BlockDevice => "a block device",
                Socket => "a socket",
                _ => $"a file of type {mode.Value & TypeMask:x4}",
            },
        };
    }

    // st_mode's file type bits (<sys/stat.h>, the same on every Linux architecture).
    private const int TypeMask = 0xF000, Fifo = 0x1000, CharacterDevice = 0x2000, BlockDevice = 0x6000, Regular = 0x8000, Socket = 0xC000;

    /// <summary>st_mode of <paramref name="path"/> (links followed) by statx, whose struct is the same on every Linux architecture; null when it fails.</summary>
    private static unsafe int? ModeOf(string path)
    {
        const int AtFdCwd = -100, StatxType = 0x1, ModeOffset = 28;
        var buffer = stackalloc byte[256]; // sizeof(struct statx)
        try
        {
            return Statx(AtFdCwd, path, 0, StatxType, buffer) == 0 ? *(ushort*)(buffer + ModeOffset) : null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; } // glibc < 2.28, or no libc of that name
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
