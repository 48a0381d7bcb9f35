namespace ContrastSeg.Data;

/// <summary>Creates <see cref="DatasetException"/>s that carry their <see cref="DatasetProblem"/> kind.</summary>
internal static class Problems
{
    private const string Key = "ContrastSeg.DatasetProblem";
    private const string MessageKey = "ContrastSeg.DatasetProblemMessage";

    /// <summary>An exception for <paramref name="path"/> tagged with <paramref name="kind"/>.</summary>
    public static DatasetException Fail(DatasetProblem kind, string message, string? path, Exception? inner = null)
    {
        var e = new DatasetException(message, path, inner);
        e.Data[Key] = kind;
        e.Data[MessageKey] = message;
        return e;
    }

    /// <summary>The issue an exception stands for (kind <see cref="DatasetProblem.Other"/> when untagged).</summary>
    public static DatasetIssue ToIssue(DatasetException e, string fallbackFile) =>
        new(e.Path ?? fallbackFile,
            e.Data[Key] is DatasetProblem k ? k : DatasetProblem.Other,
            e.Data[MessageKey] as string ?? e.Message);
}

/// <summary>Collects issues while resolving a dataset's layout; readers throw on the first, the validator keeps all.</summary>
internal sealed class IssueList
{
    private readonly List<DatasetIssue> _items = [];

    /// <summary>Issues so far, in the order found.</summary>
    public IReadOnlyList<DatasetIssue> Items => _items;

    /// <summary>True when nothing has been reported.</summary>
    public bool IsEmpty => _items.Count == 0;

    /// <summary>Records a problem.</summary>
    public void Add(string file, DatasetProblem kind, string message) => _items.Add(new DatasetIssue(file, kind, message));

    /// <summary>Records an issue.</summary>
    public void Add(DatasetIssue issue) => _items.Add(issue);

    /// <summary>Throws the first issue as a <see cref="DatasetException"/>, mentioning how many more there are.</summary>
    public void ThrowIfAny()
    {
        if (_items.Count == 0) return;
        var first = _items[0];
        var more = _items.Count > 1
            ? $" (and {_items.Count - 1} more problem{(_items.Count > 2 ? "s" : "")}, e.g. {_items[1]}; DatasetValidator lists them all)"
            : "";
        throw Problems.Fail(first.Problem, first.Message + more, first.File);
    }
}
