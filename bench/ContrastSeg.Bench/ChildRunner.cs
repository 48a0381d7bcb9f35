using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace ContrastSeg.Bench;

/// <summary>
/// Runs one benchmark case in a fresh child process (this executable with <c>--case SPEC</c>), so each
/// case starts from a clean heap and its peak RSS is its own. A timeout and an RSS ceiling guard the
/// machine: a child that exceeds either is killed and the case is recorded as failed.
/// </summary>
internal static class ChildRunner
{
    /// <summary>Marks the one line of a child's stdout that carries its JSON result.</summary>
    public const string ResultPrefix = "RESULT ";

    public static JsonObject Run(string spec, IReadOnlyDictionary<string, string> environment, TimeSpan timeout, long rssLimitBytes)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot locate the bench executable.");
        start.FileName = self;
        if (Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            start.ArgumentList.Add(typeof(ChildRunner).Assembly.Location); // started as `dotnet ContrastSeg.Bench.dll`
        start.ArgumentList.Add("--case");
        start.ArgumentList.Add(spec);
        foreach (var (key, value) in environment) start.Environment[key] = value;

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        var watch = Stopwatch.StartNew();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        string? killedFor = null;
        long maxRss = 0;
        while (!process.WaitForExit(50))
        {
            var rss = Measure.RssBytesOf(process.Id);
            maxRss = Math.Max(maxRss, rss);
            if (rss > rssLimitBytes) killedFor = $"RSS {rss / 1e9:F1} GB exceeded the guard of {rssLimitBytes / 1e9:F1} GB";
            else if (watch.Elapsed > timeout) killedFor = $"timeout after {timeout.TotalSeconds:F0} s";
            if (killedFor is null) continue;
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            break;
        }
        process.WaitForExit(); // flushes the asynchronous readers

        var resultLine = stdout.ToString().Split('\n').Select(l => l.TrimEnd('\r')).LastOrDefault(l => l.StartsWith(ResultPrefix, StringComparison.Ordinal));
        if (killedFor is null && process.ExitCode == 0 && resultLine is not null)
        {
            var result = JsonNode.Parse(resultLine[ResultPrefix.Length..])!.AsObject();
            result["ok"] = true;
            result["child_wall_s"] = Math.Round(watch.Elapsed.TotalSeconds, 2);
            return result;
        }

        var tail = string.Join(" | ", stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(4)).Trim();
        var reason = killedFor
                     ?? (process.ExitCode == 137 ? "killed (SIGKILL, probably out of memory)" : null)
                     ?? (process.ExitCode == 136 ? "SIGFPE (exit 136)" : null)
                     ?? $"exit code {process.ExitCode}{(tail.Length > 0 ? ": " + tail : "")}";
        return new JsonObject
        {
            ["ok"] = false,
            ["error"] = reason,
            ["max_rss_seen_gb"] = Math.Round(maxRss / 1e9, 2),
            ["child_wall_s"] = Math.Round(watch.Elapsed.TotalSeconds, 2),
        };
    }

    /// <summary>Parses <c>key=value,key=value</c>.</summary>
    public static Dictionary<string, string> ParseSpec(string spec) =>
        spec.Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(part => part.Split('=', 2))
            .ToDictionary(kv => kv[0].Trim(), kv => kv.Length > 1 ? kv[1].Trim() : "");

    /// <summary>Prints the child's result line.</summary>
    public static void Emit(JsonObject result) => Console.WriteLine(ResultPrefix + result.ToJsonString());
}
