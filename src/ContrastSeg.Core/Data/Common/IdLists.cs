namespace ContrastSeg.Data;

/// <summary>One line of an id list: the id, its 1-based line number and the line's first token.</summary>
internal readonly record struct IdListEntry(string Id, int Line, string Token);

/// <summary>
/// Reads and writes split/id-list files: one id per line; blank lines and lines starting with
/// '#' are skipped. A line may also be a path pair as in DeepLab/UniMatch lists
/// ("JPEGImages/2007_000032.jpg SegmentationClass/2007_000032.png"): the id is then the first
/// path's file name without extension.
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
    public static void Write(string path, IEnumerable<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids.ToList();
        foreach (var id in list)
            if (string.IsNullOrWhiteSpace(id) || id.Any(char.IsWhiteSpace))
                throw new ArgumentException($"Ids must be non-empty and free of whitespace, got '{id}'.", nameof(ids));
        AtomicFile.WriteAllLines(path, list);
    }

    /// <summary>The id a list line's first token stands for (file name without extension when it is a path).</summary>
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
            var line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var token = line.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries)[0];
            var id = idOf(token);
            if (firstLine.TryGetValue(id, out var seen))
            {
                seen.Add(i + 1);
                continue;
            }
            firstLine[id] = [i + 1];
            entries.Add(new IdListEntry(id, i + 1, token));
        }
        foreach (var (id, at) in firstLine.Where(kv => kv.Value.Count > 1).OrderBy(kv => kv.Value[0]))
            issues.Add(path, DatasetProblem.DuplicateId, $"duplicate id '{id}' on lines {string.Join(", ", at)}");
        if (entries.Count == 0)
            issues.Add(path, DatasetProblem.EmptySplit, "empty split: the list has no ids");
        return entries;
    }
}
