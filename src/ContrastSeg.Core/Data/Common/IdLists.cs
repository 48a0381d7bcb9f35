namespace ContrastSeg.Data;

/// <summary>One line of an id list: the id (NFC), its 1-based line number and what the line names (see <see cref="IdLists.NameOf"/>).</summary>
internal readonly record struct IdListEntry(string Id, int Line, string Text);

/// <summary>
/// Reads and writes split/id-list files: one id per line; blank lines and lines starting with
/// '#' are skipped. A line may also be a path pair as in DeepLab/UniMatch lists
/// ("JPEGImages/2007_000032.jpg SegmentationClass/2007_000032.png"): the id is then the first
/// path's file name without extension. Any other line is one id (or one image path) as a whole,
/// spaces included: file names may contain spaces, and cutting a line at its first space would
/// silently read another image. Ids are compared in NFC (see <see cref="UnicodeNames"/>).
/// </summary>
public static class IdLists
{
    /// <summary>Reads the ids of a list; throws on a missing file, an empty list or a duplicate id.</summary>
    public static IReadOnlyList<string> Read(string path)
    {
        var issues = new IssueList();
        var entries = ReadEntries(path, issues, IdFromToken);
        issues.ThrowIfAny();
        return entries!.Select(e => e.Id).ToArray();
    }

    /// <summary>Writes ids one per line ("\n"), atomically.</summary>
    /// <exception cref="ArgumentException">An id would not read back as itself (see <see cref="RequireReadsBack"/>).</exception>
    public static void Write(string path, IEnumerable<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids.ToList();
        foreach (var id in list) RequireReadsBack(id, nameof(ids));
        AtomicFile.WriteAllLines(path, list);
    }

    /// <summary>
    /// Throws unless <paramref name="id"/>, written as a line, reads back as the same id: not blank, no line break, no
    /// space at either end, no leading '#', not a path or a pair of paths.
    /// </summary>
    /// <exception cref="ArgumentException">The id would read back as another one, or as none.</exception>
    internal static void RequireReadsBack(string id, string paramName)
    {
        var back = id is null || id.Contains('\n') || id.Contains('\r') ? null : NameOf(id) is { } name ? IdFromToken(name) : null;
        if (back is null || UnicodeNames.Nfc(back) != UnicodeNames.Nfc(id!))
            throw new ArgumentException(
                $"id '{id}' cannot be written to an id list: it would read back as {(back is null ? "no id" : $"'{back}'")} " +
                "(a line is one id, or a pair of image and mask paths; '#' starts a comment)", paramName);
    }

    /// <summary>
    /// What a list line names, or null for a blank or comment line: the first path of a pair of image paths
    /// (two tokens, each ending in .jpg/.jpeg/.png), else the whole trimmed line.
    /// </summary>
    internal static string? NameOf(string line)
    {
        var text = line.Trim();
        if (text.Length == 0 || text[0] == '#') return null;
        var tokens = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return tokens.Length == 2 && tokens.All(HasImageExtension) ? tokens[0] : text;
    }

    /// <summary>The id what a list line names stands for (file name without extension when it is a path).</summary>
    internal static string IdFromToken(string token)
    {
        if (!token.Contains('/') && !token.Contains('\\') && !HasImageExtension(token)) return token;
        var name = token.Replace('\\', '/');
        name = name[(name.LastIndexOf('/') + 1)..];
        return HasImageExtension(name) ? Path.GetFileNameWithoutExtension(name) : name;
    }

    private static bool HasImageExtension(string s) =>
        s.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) || s.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase) ||
        s.EndsWith(".png", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Reads entries, reporting a missing file, an empty list and every duplicated id (with its
    /// line numbers) to <paramref name="issues"/>. Returns null when the file cannot be read;
    /// otherwise the entries with duplicates removed (first occurrence kept).
    /// </summary>
    internal static List<IdListEntry>? ReadEntries(string path, IssueList issues, Func<string, string> idOf)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            var others = dir is not null && Directory.Exists(dir)
                ? Directory.GetFiles(dir, "*.txt").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal).ToArray()
                : [];
            issues.Add(path, DatasetProblem.MissingSplitFile,
                "split file not found" + (others.Length > 0 ? $" (lists in that folder: {string.Join(", ", others)})" : ""));
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            issues.Add(path, DatasetProblem.MissingSplitFile, $"cannot read the split file ({e.Message})");
            return null;
        }

        var entries = new List<IdListEntry>();
        var firstLine = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var i = 0; i < lines.Length; i++)
        {
            if (NameOf(lines[i]) is not { } text) continue;
            var id = UnicodeNames.Nfc(idOf(text));
            if (firstLine.TryGetValue(id, out var seen))
            {
                seen.Add(i + 1);
                continue;
            }
            firstLine[id] = [i + 1];
            entries.Add(new IdListEntry(id, i + 1, text));
        }
        foreach (var (id, at) in firstLine.Where(kv => kv.Value.Count > 1).OrderBy(kv => kv.Value[0]))
            issues.Add(path, DatasetProblem.DuplicateId, $"duplicate id '{id}' on lines {string.Join(", ", at)}");
        if (entries.Count == 0)
            issues.Add(path, DatasetProblem.EmptySplit, "empty split: the list has no ids");
        return entries;
    }
}
