using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// The TensorBoard event files of a run, read back by tfevents_reader.py: an independent TFRecord + protobuf reader
/// in plain Python (standard library only), so the kit's encoding is not checked with the kit's own code.
/// Needs python3 on the PATH (Debian and the CI image have it); without it the test fails and says so.
/// </summary>
public sealed class TensorBoardEventsTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "contrastseg-tb-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private static JsonElement ReadWithPython(string file)
    {
        var reader = Path.Combine(AppContext.BaseDirectory, "Training", "tfevents_reader.py");
        Assert.True(File.Exists(reader), $"{reader} was not copied next to the tests");
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(reader);
        psi.ArgumentList.Add(file);
        Process process;
        try { process = Process.Start(psi)!; }
        catch (Win32Exception e) { throw new InvalidOperationException("this test reads event files with python3 (an independent reader); install python3", e); }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"tfevents_reader.py rejected {file}: {stderr}");
            return JsonDocument.Parse(stdout.Result).RootElement.Clone();
        }
    }

    // The test's own clock, computed another way than the writer's (milliseconds since the epoch, not ticks).
    private static double UnixNow() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    [Fact]
    public void Event_files_carry_unix_seconds_in_their_name_and_wall_times_and_the_tags_and_steps_logged()
    {
        var start = Math.Floor(UnixNow());
        using (var log = new TrainingLog(_root, TextWriter.Null))
        {
            log.Record("train", 2, new Dictionary<string, double> { ["loss"] = 1.25, ["lr"] = 0.01 });
            Thread.Sleep(20);
            log.Record("val", 4, new Dictionary<string, double> { ["mIoU"] = 0.375, ["broken"] = double.NaN });
            log.Record("val", 5, new Dictionary<string, double> { ["nan-only"] = double.NaN });
        }
        var end = Math.Ceiling(UnixNow());

        var file = Assert.Single(Directory.GetFiles(Path.Combine(_root, "tb")));
        var name = Regex.Match(Path.GetFileName(file), @"^events\.out\.tfevents\.(\d{10})\.[^.]+\.\d+\.\d+$");
        Assert.True(name.Success, $"TensorBoard's file name pattern: {Path.GetFileName(file)}");
        Assert.InRange(double.Parse(name.Groups[1].Value), start, end);

        var read = ReadWithPython(file);
        // Python's clock too: a writer and a test that agreed on a wrong epoch would both be caught here.
        var pythonNow = read.GetProperty("now").GetDouble();
        Assert.InRange(pythonNow - end, -5.0, 600.0);
        var events = read.GetProperty("events").EnumerateArray().ToList();
        Assert.Equal("brain.Event:2", events[0].GetProperty("file_version").GetString());
        var times = events.Select(e => e.GetProperty("wall_time").GetDouble()).ToList();
        foreach (var t in times) Assert.InRange(t, start, end);
        Assert.True(times.Zip(times.Skip(1)).All(p => p.First <= p.Second), "wall times in order");
        Assert.True(times[2] - times[1] >= 0.015, $"sub-second wall times: {times[1]} then {times[2]}");

        // One event per record with finite values; NaN is left out (TensorBoard's scalars would break on it).
        var scalars = events.Skip(1).Select(e => (
            Step: e.GetProperty("step").GetInt64(),
            Values: e.GetProperty("values").EnumerateArray().Select(v => (v[0].GetString() ?? "<no tag>", v[1].GetDouble())).ToList())).ToList();
        Assert.Equal(2, scalars.Count);
        Assert.Equal(2, scalars[0].Step);
        Assert.Equal(new[] { ("train/loss", 1.25), ("train/lr", (double)0.01f) }, scalars[0].Values);
        Assert.Equal(4, scalars[1].Step);
        Assert.Equal(new[] { ("val/mIoU", 0.375) }, scalars[1].Values);

        // metrics.jsonl and TensorBoard stamp a record with the same time.
        var firstRow = JsonDocument.Parse(File.ReadLines(Path.Combine(_root, "metrics.jsonl")).First()).RootElement;
        var jsonTime = DateTimeOffset.Parse(firstRow.GetProperty("time").GetString()!).ToUnixTimeMilliseconds() / 1000.0;
        Assert.InRange(times[1] - jsonTime, -0.001, 0.001);
    }

    [Fact]
    public void A_second_log_in_the_same_folder_writes_its_own_file()
    {
        using (var a = new TrainingLog(_root, TextWriter.Null)) a.Record("train", 1, new Dictionary<string, double> { ["loss"] = 1 });
        using (var b = new TrainingLog(_root, TextWriter.Null)) b.Record("train", 2, new Dictionary<string, double> { ["loss"] = 0.5 });
        var files = Directory.GetFiles(Path.Combine(_root, "tb"));
        Assert.Equal(2, files.Length);
        var steps = files.SelectMany(f => ReadWithPython(f).GetProperty("events").EnumerateArray().Skip(1).Select(e => e.GetProperty("step").GetInt64())).Order();
        Assert.Equal(new long[] { 1, 2 }, steps);
    }
}
