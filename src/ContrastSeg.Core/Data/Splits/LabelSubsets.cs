namespace ContrastSeg.Data;

/// <summary>A labelled subset of a training list and the rest of it.</summary>
/// <param name="ListFile">The id-list file that holds <paramref name="Labelled"/>.</param>
/// <param name="Labelled">The labelled ids, in training-list order.</param>
/// <param name="Unlabelled">The other training ids, in training-list order.</param>
/// <param name="LabelledIndices">Positions of <paramref name="Labelled"/> in the training list (ascending).</param>
/// <param name="UnlabelledIndices">Positions of <paramref name="Unlabelled"/> in the training list (ascending).</param>
/// <param name="Reused">True when the file existed and was read, false when it was drawn and written now.</param>
public sealed record LabelSubset(
    string ListFile,
    IReadOnlyList<string> Labelled,
    IReadOnlyList<string> Unlabelled,
    IReadOnlyList<int> LabelledIndices,
    IReadOnlyList<int> UnlabelledIndices,
    bool Reused);

/// <summary>
/// Reproducible labelled subsets: drawn once from a seed, written as an id-list file (one id per line),
/// and from then on read back from that file, never silently drawn again.
/// </summary>
public static class LabelSubsets
{
    /// <summary>
    /// The labelled subset of <paramref name="count"/> ids of <paramref name="trainIds"/> stored in <paramref name="listFile"/>.
    /// When the file exists it is read and checked (exactly <paramref name="count"/> distinct ids, all in the training list);
    /// otherwise <paramref name="count"/> ids are drawn uniformly without replacement with <paramref name="seed"/>
    /// and written there in training-list order.
    /// </summary>
    /// <exception cref="DatasetException">The existing file does not fit the request (the message says why and what to do).</exception>
    public static LabelSubset Choose(IReadOnlyList<string> trainIds, int count, int seed, string listFile)
    {
        ArgumentNullException.ThrowIfNull(trainIds);
        ArgumentException.ThrowIfNullOrWhiteSpace(listFile);
        var position = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < trainIds.Count; i++)
            if (!position.TryAdd(trainIds[i], i))
                throw new DatasetException($"training list has id '{trainIds[i]}' twice (positions {position[trainIds[i]]} and {i}).");
        if (count < 0 || count > trainIds.Count)
            throw new ArgumentOutOfRangeException(nameof(count), $"{count} labelled ids asked for from a training list of {trainIds.Count}.");

        bool reused;
        int[] chosen;
        if (File.Exists(listFile))
        {
            var ids = ReadIdList(listFile, allowEmpty: count == 0);
            if (ids.Count != count)
                throw new DatasetException($"subset file {listFile} has {ids.Count} ids but {count} were asked for; delete it or pass a different path.", listFile);
            chosen = new int[ids.Count];
            for (var k = 0; k < ids.Count; k++)
            {
                if (!position.TryGetValue(ids[k], out chosen[k]))
                    throw new DatasetException(
                        $"subset file {listFile} has id '{ids[k]}' that is not in the training list of {trainIds.Count} ids; delete it or pass a different path.", listFile);
            }
            Array.Sort(chosen);
            reused = true;
        }
        else
        {
            chosen = Draw(trainIds.Count, count, seed);
            WriteIdList(listFile, chosen.Select(i => trainIds[i]));
            reused = false;
        }

        var inSubset = new bool[trainIds.Count];
        foreach (var i in chosen) inSubset[i] = true;
        var rest = Enumerable.Range(0, trainIds.Count).Where(i => !inSubset[i]).ToArray();
        return new LabelSubset(Path.GetFullPath(listFile), chosen.Select(i => trainIds[i]).ToArray(), rest.Select(i => trainIds[i]).ToArray(),
            chosen, rest, reused);
    }

    /// <summary><paramref name="count"/> distinct positions of 0..<paramref name="total"/>-1, ascending, from <paramref name="seed"/> alone.</summary>
    public static int[] Draw(int total, int count, int seed)
    {
        if (count < 0 || count > total) throw new ArgumentOutOfRangeException(nameof(count), $"{count} of {total}");
        var rng = SeedHash.Random(seed, 0x5B5E7);
        var all = Enumerable.Range(0, total).ToArray();
        for (var i = 0; i < count; i++) // partial Fisher-Yates: the first count entries are a uniform sample
        {
            var j = i + rng.Next(total - i);
            (all[i], all[j]) = (all[j], all[i]);
        }
        var chosen = all[..count];
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>
    /// Reads an id list line by line as split lists are read (<see cref="IdLists"/>): blank and '#' lines skipped, a line is
    /// one id as a whole (spaces included) or a pair of image and mask paths, ids compared in NFC.
    /// </summary>
    /// <exception cref="DatasetException">Missing file, no ids, or an id listed twice (named with both line numbers).</exception>
    public static IReadOnlyList<string> ReadIdList(string path) => ReadIdList(path, allowEmpty: false);

    private static List<string> ReadIdList(string path, bool allowEmpty)
    {
        if (!File.Exists(path)) throw new DatasetException("id list file not found.", path);
        var ids = new List<string>();
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        var lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            if (IdLists.NameOf(raw) is not { } text) continue;
            var id = UnicodeNames.Nfc(IdLists.IdFromToken(text));
            if (firstLine.TryGetValue(id, out var first))
                throw new DatasetException($"id list has '{id}' twice: lines {first} and {lineNo}.", path);
            firstLine[id] = lineNo;
            ids.Add(id);
        }
        if (ids.Count == 0 && !allowEmpty) throw new DatasetException("id list is empty.", path);
        return ids;
    }

    /// <summary>
    /// Writes ids one per line (creating the folder) through a temporary file of its own and a rename, so a crash leaves
    /// no half list and grid cells on several nodes that draw the same subset at once (same ids, same bytes) do not
    /// collide on one temporary name: the last rename wins with identical content.
    /// </summary>
    /// <exception cref="ArgumentException">An id would not read back as itself (e.g. one starting with '#').</exception>
    public static void WriteIdList(string path, IEnumerable<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids.ToList();
        foreach (var id in list) IdLists.RequireReadsBack(id, nameof(ids));
        AtomicFile.WriteAllLines(path, list);
    }
}
