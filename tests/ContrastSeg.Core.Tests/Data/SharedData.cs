namespace ContrastSeg.Tests.Data;

/// <summary>
/// Finds the read-only sample data (<c>shared/data</c>) by walking up from the test binaries:
/// a developer worktree has it at <c>/work/shared</c>, CI at <c>&lt;clone&gt;/../shared</c>.
/// </summary>
public static class SharedData
{
    private static readonly Lazy<string> RootLazy = new(Locate);

    /// <summary>The <c>shared/data</c> folder.</summary>
    public static string Root => RootLazy.Value;

    /// <summary>The VOC2012 sample folder (contains JPEGImages).</summary>
    public static string Voc2012 => Path.Combine(Root, "voc_sample", "VOCdevkit", "VOC2012");

    /// <summary>The official VOC split lists.</summary>
    public static string OfficialSplits => Path.Combine(Root, "voc_sample", "official_splits");

    /// <summary>The Cityscapes sample root (contains leftImg8bit and gtFine).</summary>
    public static string Cityscapes => Path.Combine(Root, "cityscapes_sample");

    /// <summary>A path below shared/data.</summary>
    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string Locate()
    {
        var tried = new List<string>();
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            tried.Add(candidate);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException(
            "The sample data folder 'shared/data' was not found in any folder above the test binaries " +
            $"({AppContext.BaseDirectory}). Put a copy of 'shared/' beside the repository clone. Tried: " +
            string.Join(", ", tried));
    }
}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>Creates the folder.</summary>
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "contrastseg-data-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>A path inside the folder, creating its parent folders.</summary>
    public string File(params string[] parts)
    {
        var p = System.IO.Path.Combine([Path, .. parts]);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        return p;
    }

    /// <summary>Deletes the folder.</summary>
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
