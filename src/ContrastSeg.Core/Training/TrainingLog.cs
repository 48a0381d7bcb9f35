using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace ContrastSeg.Training;

/// <summary>
/// A run's logs: <c>metrics.jsonl</c> (one JSON object per logged step or evaluation), TensorBoard
/// event files in <c>tb/</c>, and human-readable progress on the console.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    private readonly StreamWriter _metrics;
    private readonly TensorBoardEventWriter? _tensorboard;
    private readonly TextWriter _console;

    /// <summary>Opens (appends to) the logs of <paramref name="runDirectory"/>.</summary>
    public TrainingLog(string runDirectory, TextWriter? console = null, bool tensorboard = true)
    {
        Directory.CreateDirectory(runDirectory);
        MetricsPath = Path.Combine(runDirectory, "metrics.jsonl");
        _metrics = new StreamWriter(new FileStream(MetricsPath, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        // A new event file per opening (a resumed run gets a second one); TensorBoard reads every file in tb/.
        if (tensorboard) _tensorboard = new TensorBoardEventWriter(Path.Combine(runDirectory, "tb"));
        _console = console ?? Console.Out;
    }

    /// <summary>Path of the JSON-lines metrics file.</summary>
    public string MetricsPath { get; }

    /// <summary>
    /// Writes one record: to metrics.jsonl and, for finite numeric fields, to TensorBoard under <paramref name="kind"/>/field,
    /// both stamped with the same time. <paramref name="text"/> fields (e.g. an error message) go to metrics.jsonl only.
    /// </summary>
    public void Record(string kind, int step, IReadOnlyDictionary<string, double> values, IReadOnlyDictionary<string, string>? text = null)
    {
        var now = DateTimeOffset.UtcNow;
        var row = new Dictionary<string, object> { ["kind"] = kind, ["step"] = step, ["time"] = now.ToString("O") };
        foreach (var (k, v) in values) row[k] = double.IsFinite(v) ? v : v.ToString(CultureInfo.InvariantCulture);
        if (text is not null) foreach (var (k, v) in text) row[k] = v;
        _metrics.WriteLine(JsonSerializer.Serialize(row));
        _tensorboard?.AddScalars(step, values.Where(kv => double.IsFinite(kv.Value)).Select(kv => ($"{kind}/{kv.Key}", (float)kv.Value)).ToList(), now);
    }

    /// <summary>Prints a line to the console log.</summary>
    public void Line(string text) => _console.WriteLine(text);

    /// <summary>Flushes and closes the files.</summary>
    public void Dispose()
    {
        _metrics.Dispose();
        _tensorboard?.Dispose();
    }
}

/// <summary>
/// Progress of a long loop: a live Spectre.Console bar in an interactive terminal, plain lines
/// (every 5 % and a final 100 % line) when output is redirected, as in CI logs and job schedulers.
/// </summary>
public static class ProgressDisplay
{
    /// <summary>Runs <paramref name="body"/>, which reports (position, status text) as it goes.</summary>
    public static void Run(string title, int total, int start, TextWriter console, Action<Action<int, string>> body)
    {
        var interactive = ReferenceEquals(console, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (interactive)
        {
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(title), maxValue: total);
                    task.Value = start;
                    body((position, status) =>
                    {
                        task.Value = position;
                        task.Description = Markup.Escape($"{title} {status}");
                    });
                    task.Value = total;
                });
            console.WriteLine($"{title}: done ({total}/{total})");
            return;
        }
        var every = Math.Max(1, total / 20);
        var lastPrinted = -1;
        var last = "";
        body((position, status) =>
        {
            last = status;
            if (position / every != lastPrinted / every || position == total)
            {
                if (position != total) console.WriteLine($"{title} {position}/{total} ({100.0 * position / total:F0} %) {status}");
                lastPrinted = position;
            }
        });
        console.WriteLine($"{title} {total}/{total} (100 %) {last}");
    }
}
