namespace ContrastSeg.Data;

/// <summary>Writes files through a temporary file in the same folder and a rename, so readers never see half a file.</summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically (creating the folder).</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes lines ("\n"-terminated, UTF-8 without BOM) atomically.</summary>
    public static void WriteAllLines(string path, IEnumerable<string> lines)
    {
        var text = string.Concat(lines.Select(l => l + "\n"));
        WriteAllBytes(path, new System.Text.UTF8Encoding(false).GetBytes(text));
    }
}
