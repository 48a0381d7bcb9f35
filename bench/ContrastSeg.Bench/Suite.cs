using System.Diagnostics;
using System.Text.Json.Nodes;
using ContrastSeg.Losses;
using ContrastSeg.Runtime;

namespace ContrastSeg.Bench;

internal sealed record BenchSettings(string JsonPath, bool Quick, string? Only, string CommandLine);

/// <summary>Which cases run, in which child processes, with which guards.</summary>
internal static class Suite
{
    /// <summary>The full-matrix loss holds about this many N x N float32 tensors at its peak (measured at 33x33 and 65x65).</summary>
    private const double NaiveMatricesLive = 25;

    public static JsonObject Run(BenchSettings settings)
    {
        var watch = Stopwatch.StartNew();
        var status = TorchRuntime.EnsureInitialized();
        var report = new JsonObject
        {
            ["command"] = settings.CommandLine,
            ["quick"] = settings.Quick,
            ["started_utc"] = DateTime.UtcNow.ToString("u"),
            ["machine"] = Machine.Describe(status),
        };
        // Memory guard for the children: never take the machine's memory from the other users.
        var guard = Math.Min((long)(Measure.AvailableMemoryBytes() * 0.75), 18L << 30);
        report["rss_guard_bytes"] = guard;

        if (settings.Only is null or "loss") report["loss"] = LossCases(settings.Quick, guard);
        if (settings.Only is null or "train") report["train"] = TrainCases(settings.Quick, guard);
        report["wall_s"] = Math.Round(watch.Elapsed.TotalSeconds, 1);
        Summary.Print(report);
        return report;
    }

    private static JsonArray LossCases(bool quick, long guard)
    {
        var sides = quick ? new[] { 33, 65 } : new[] { 33, 65, 129 };
        var setups = new List<(ContrastiveVariant Variant, int Side, int Batch, int Views)>();
        foreach (var side in sides)
        {
            setups.Add((ContrastiveVariant.WithinImage, side, 1, 1));
            setups.Add((ContrastiveVariant.CrossImage, side, 1, 2));
            setups.Add((ContrastiveVariant.Batch, side, 1, 1));
        }
        setups.Add((ContrastiveVariant.Batch, 65, 8, 2)); // 67,600 pixels, 10,000 sampled

        var results = new JsonArray();
        foreach (var (variant, side, batch, views) in setups)
        {
            var naive = new LossSetup(variant, ContrastiveImplementation.FullMatrix, side, batch, views);
            var blockwise = naive with { Implementation = ContrastiveImplementation.Blockwise };
            var row = new JsonObject
            {
                ["case"] = naive.Name, ["variant"] = LossSetup.VariantName(variant), ["side"] = side, ["batch"] = batch, ["views"] = views,
                ["group_pixels"] = naive.GroupPixels,
            };
            var large = naive.GroupPixels >= 8000;
            var timeout = TimeSpan.FromSeconds(large ? 900 : 300);
            var memReps = quick || large ? 2 : 3;
            var timeReps = quick ? 3 : large ? 3 : 5;
            var rounds = quick || large ? 1 : 2; // time rounds alternate naive and blockwise children

            var skipNaive = NaiveSkipReason(naive, quick, guard);
            var memoryEnv = new Dictionary<string, string> { [TorchRuntime.MmapThresholdVariable] = "1048576" };
            var cells = new Dictionary<string, JsonObject>();
            foreach (var setup in new[] { naive, blockwise })
            {
                var key = LossSetup.ImplName(setup.Implementation);
                if (setup == naive && skipNaive is not null)
                {
                    Console.WriteLine($"loss {setup.Name} {key}: {skipNaive}");
                    cells[key] = Skipped(skipNaive);
                    continue;
                }
                Console.WriteLine($"loss {setup.Name} {key}: memory ({memReps}x) ...");
                cells[key] = new JsonObject { ["memory"] = ChildRunner.Run(setup.Spec("mem", memReps), memoryEnv, timeout, guard) };
            }
            if (side >= 129 && batch == 1)
            {
                // The kernel alone on the same pixel group: how much of the loss's peak is the kernel's.
                Console.WriteLine($"loss {blockwise.Name} blockwise, kernel only: memory ({memReps}x) ...");
                cells["blockwise"]["kernel_only_memory"] = ChildRunner.Run(blockwise.Spec("mem", memReps, scope: "kernel"), memoryEnv, timeout, guard);
            }
            var timeRuns = cells.Keys.ToDictionary(k => k, _ => new List<JsonObject>());
            for (var round = 0; round < rounds; round++)
            {
                foreach (var setup in new[] { naive, blockwise })
                {
                    var key = LossSetup.ImplName(setup.Implementation);
                    if (cells[key]["skipped"] is not null) continue;
                    // A case the memory guard killed would only be killed again.
                    if (cells[key]["memory"]!["error"] is JsonNode error && error.ToString().Contains("guard")) continue;
                    Console.WriteLine($"loss {setup.Name} {key}: time round {round + 1} ({timeReps}x) ...");
                    timeRuns[key].Add(ChildRunner.Run(setup.Spec("time", timeReps), new Dictionary<string, string>(), timeout, guard));
                }
            }
            foreach (var (key, cell) in cells)
            {
                if (cell["skipped"] is not null) { row[key] = cell; continue; }
                cell["time"] = MergeTimes(timeRuns[key], cell["memory"]!.AsObject());
                row[key] = cell;
                Console.WriteLine($"  {key} -> {Summary.LossCell(cell)}");
            }
            results.Add(row);
        }
        return results;
    }

    /// <summary>Why the naive case is not started, or null. It holds about 25 N x N float32 tensors at once (measured).</summary>
    private static string? NaiveSkipReason(LossSetup setup, bool quick, long guard)
    {
        if (quick && setup.Side >= 129) return "skipped in --quick";
        var estimate = NaiveMatricesLive * setup.GroupPixels * setup.GroupPixels * sizeof(float);
        // Up to twice the guard it is started (the guard kills it and the failure is recorded); beyond, it is hopeless.
        return estimate > 2 * guard
            ? $"not run: needs an estimated {estimate / 1e9:F0} GB (~{NaiveMatricesLive} matrices of {setup.GroupPixels} x {setup.GroupPixels} float32), more than twice the {guard / 1e9:F1} GB guard"
            : null;
    }

    /// <summary>All time samples of the rounds in one cell (median over all of them).</summary>
    private static JsonObject MergeTimes(List<JsonObject> runs, JsonObject memory)
    {
        var ok = runs.Where(r => (bool)r["ok"]!).ToList();
        if (ok.Count == 0)
        {
            var error = runs.Count > 0 ? runs[0]["error"]?.ToString() : $"not timed: {memory["error"]}";
            return new JsonObject { ["ok"] = false, ["error"] = error };
        }
        var samples = ok.SelectMany(r => r["times_s"]!.AsArray().Select(v => (double)v!)).ToList();
        return new JsonObject
        {
            ["ok"] = true,
            ["rounds"] = ok.Count,
            ["times_s"] = Measure.ToJson(samples),
            ["median_s"] = Math.Round(Measure.Median(samples), 6),
            ["round_medians_s"] = Measure.ToJson(ok.Select(r => (double)r["median_s"]!)),
            ["loss"] = ok[0]["loss"]?.DeepClone(),
            ["threads"] = ok[0]["threads"]?.DeepClone(),
            ["block_rows"] = ok[0]["block_rows"]?.DeepClone(),
        };
    }

    private static JsonArray TrainCases(bool quick, long guard)
    {
        var cases = new List<(string Label, string Spec, Dictionary<string, string> Env)>();
        var none = new Dictionary<string, string>();
        var mkldnnOff = new Dictionary<string, string> { [TorchRuntime.MkldnnVariable] = "off" };
        var oneThread = new Dictionary<string, string> { [TorchRuntime.ThreadsVariable] = "1" };
        if (quick)
        {
            cases.Add(("CpuSmall(11) 64x64 B8", "kind=train,model=small,size=64,batch=8,reps=5,warmup=2", none));
            cases.Add(("Paper(21) 257x257 B1 (quick size)", "kind=train,model=paper,size=257,batch=1,reps=2,warmup=1", none));
        }
        else
        {
            const string paper = "kind=train,model=paper,size=513,batch=1";
            cases.Add(("Paper(21) 513x513 B1", paper + ",reps=5,warmup=2", none));
            cases.Add(("Paper(21) 513x513 B1, oneDNN off", paper + ",reps=3,warmup=1", mkldnnOff));
            cases.Add(("Paper(21) 513x513 B1, channels_last", paper + ",reps=3,warmup=1,channels_last=1", none));
            cases.Add(("Paper(21) 513x513 B1, 1 thread", paper + ",reps=2,warmup=1", oneThread));
            const string small = "kind=train,model=small,size=64";
            cases.Add(("CpuSmall(11) 64x64 B8", small + ",batch=8,reps=20,warmup=3", none));
            cases.Add(("CpuSmall(11) 64x64 B8, oneDNN off", small + ",batch=8,reps=20,warmup=3", mkldnnOff));
            cases.Add(("CpuSmall(11) 64x64 B8, channels_last", small + ",batch=8,reps=20,warmup=3,channels_last=1", none));
            cases.Add(("CpuSmall(11) 64x64 B8, 1 thread", small + ",batch=8,reps=20,warmup=3", oneThread));
            cases.Add(("CpuSmall(11) 64x64 B32", small + ",batch=32,reps=10,warmup=2", none));
        }

        var results = new JsonArray();
        foreach (var (label, spec, env) in cases)
        {
            Console.WriteLine($"train {label} ...");
            var result = ChildRunner.Run(spec, env, TimeSpan.FromSeconds(900), guard);
            result["label"] = label;
            results.Add(result);
            Console.WriteLine($"  -> {Summary.TrainLine(result)}");
        }
        return results;
    }

    private static JsonObject Skipped(string why) => new() { ["ok"] = false, ["error"] = why, ["skipped"] = true };
}
