using System.Diagnostics;
using System.Text.Json.Nodes;
using ContrastSeg.Losses;
using ContrastSeg.Runtime;

namespace ContrastSeg.Bench;

internal sealed record BenchSettings(string JsonPath, bool Quick, string? Only, string CommandLine, CaseFilter Cases);

/// <summary>
/// <c>--cases</c>: semicolon-separated substrings of case names (labels contain commas). A case runs when its name
/// contains one of the patterns (or none is given) and none of the patterns prefixed with <c>!</c>. Loss case names
/// are the table's case plus the kernel, e.g. <c>cross 129x129 2 views blockwise</c>; training and loader cases use
/// their labels.
/// </summary>
internal sealed record CaseFilter(IReadOnlyList<string> Include, IReadOnlyList<string> Exclude)
{
    public static CaseFilter All { get; } = new(Array.Empty<string>(), Array.Empty<string>());

    public static CaseFilter Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return All;
        var parts = text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new(parts.Where(p => !p.StartsWith('!')).ToArray(), parts.Where(p => p.StartsWith('!')).Select(p => p[1..]).ToArray());
    }

    public bool Matches(string name) =>
        (Include.Count == 0 || Include.Any(p => name.Contains(p, StringComparison.OrdinalIgnoreCase)))
        && !Exclude.Any(p => name.Contains(p, StringComparison.OrdinalIgnoreCase));

    public override string ToString() => string.Join(";", Include.Concat(Exclude.Select(e => "!" + e)));
}

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

        if (settings.Cases != CaseFilter.All) report["cases"] = settings.Cases.ToString();
        if (settings.Only is null or "loss") report["loss"] = LossCases(settings.Quick, guard, settings.Cases);
        if (settings.Only is null or "train") report["train"] = TrainCases(settings.Quick, guard, settings.Cases);
        if (settings.Only is null or "loader") report["loader"] = LoaderCases(settings.Quick, guard, settings.Cases, report["train"] as JsonArray);
        if (settings.Only is null or "peers") report["peers"] = PeerCase.Cases(settings.Quick, guard, settings.Cases);
        report["wall_s"] = Math.Round(watch.Elapsed.TotalSeconds, 1);
        Summary.Print(report);
        return report;
    }

    private static JsonArray LossCases(bool quick, long guard, CaseFilter filter)
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
            bool Selected(LossSetup s) => filter.Matches($"{s.Name} {LossSetup.ImplName(s.Implementation)}");
            if (!Selected(naive) && !Selected(blockwise)) continue;
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

            var skipNaive = Selected(naive) ? NaiveSkipReason(naive, quick, guard) : "not selected (--cases)";
            var memoryEnv = new Dictionary<string, string> { [TorchRuntime.MmapThresholdVariable] = "1048576" };
            var cells = new Dictionary<string, JsonObject>();
            foreach (var setup in new[] { naive, blockwise })
            {
                var key = LossSetup.ImplName(setup.Implementation);
                var skip = setup == naive ? skipNaive : Selected(setup) ? null : "not selected (--cases)";
                if (skip is not null)
                {
                    Console.WriteLine($"loss {setup.Name} {key}: {skip}");
                    cells[key] = Skipped(skip);
                    continue;
                }
                Console.WriteLine($"loss {setup.Name} {key}: memory ({memReps}x) ...");
                cells[key] = new JsonObject { ["memory"] = ChildRunner.Run(setup.Spec("mem", memReps), memoryEnv, timeout, guard) };
            }
            if (side >= 129 && batch == 1 && cells["blockwise"]["skipped"] is null)
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

    private static JsonArray TrainCases(bool quick, long guard, CaseFilter filter)
    {
        var cases = new List<(string Label, string Spec, Dictionary<string, string> Env)>();
        var none = new Dictionary<string, string>();
        var mkldnnOff = new Dictionary<string, string> { [TorchRuntime.MkldnnVariable] = "off" };
        var oneThread = new Dictionary<string, string> { [TorchRuntime.ThreadsVariable] = "1" };
        // What portable numerics cost: the same step under both modes (unlabelled cases run in the default, portable).
        var oneThreadPortable = new Dictionary<string, string> { [TorchRuntime.ThreadsVariable] = "1", [Numerics.Variable] = "portable" };
        var oneThreadNative = new Dictionary<string, string> { [TorchRuntime.ThreadsVariable] = "1", [Numerics.Variable] = "native" };
        cases.Add(("CpuSmall(11) 64x64 B8, 1 thread, portable numerics", "kind=train,model=small,size=64,batch=8,reps=20,warmup=3", oneThreadPortable));
        cases.Add(("CpuSmall(11) 64x64 B8, 1 thread, native numerics", "kind=train,model=small,size=64,batch=8,reps=20,warmup=3", oneThreadNative));
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
            cases.Add(("Paper(21) 513x513 B1, 1 thread, native numerics", paper + ",reps=2,warmup=1", oneThreadNative));
            const string small = "kind=train,model=small,size=64";
            cases.Add(("CpuSmall(11) 64x64 B8", small + ",batch=8,reps=20,warmup=3", none));
            cases.Add(("CpuSmall(11) 64x64 B8, oneDNN off", small + ",batch=8,reps=20,warmup=3", mkldnnOff));
            cases.Add(("CpuSmall(11) 64x64 B8, channels_last", small + ",batch=8,reps=20,warmup=3,channels_last=1", none));
            cases.Add(("CpuSmall(11) 64x64 B8, 1 thread", small + ",batch=8,reps=20,warmup=3", oneThread));
            cases.Add(("CpuSmall(11) 64x64 B32", small + ",batch=32,reps=10,warmup=2", none));
        }

        var results = new JsonArray();
        foreach (var (label, spec, env) in cases.Where(c => filter.Matches(c.Label)))
        {
            Console.WriteLine($"train {label} ...");
            var result = ChildRunner.Run(spec, env, TimeSpan.FromSeconds(900), guard);
            result["label"] = label;
            results.Add(result);
            Console.WriteLine($"  -> {Summary.TrainLine(result)}");
        }
        return results;
    }

    /// <summary>Images per second the CPU-scale loader must deliver, as a multiple of the training step's consumption.</summary>
    public const double LoaderTarget = 3.0;

    /// <summary>
    /// Loader throughput (images/s decoded and augmented, 1 and 2 workers) of the cpu preset's Fashion-MNIST scenes
    /// and of the voc preset on a VOC-layout folder written here, against the consumption of the training steps
    /// measured in the same run (taken from the training half when it ran, else measured here), and training steps
    /// fed by the loader.
    /// </summary>
    private static JsonObject LoaderCases(bool quick, long guard, CaseFilter filter, JsonArray? train)
    {
        var result = new JsonObject();
        var fixture = Directory.CreateTempSubdirectory("contrastseg-bench-voc-");
        try
        {
            var vocRoot = Path.Combine(fixture.FullName, "VOC2012");
            var count = quick ? 32 : 48;
            var watch = Stopwatch.StartNew();
            var (jpeg, png) = VocFixture.Write(vocRoot, count);
            result["voc_fixture"] = new JsonObject
            {
                ["images"] = count, ["width"] = VocFixture.Width, ["height"] = VocFixture.Height,
                ["mean_jpeg_bytes"] = Math.Round(jpeg), ["mean_png_bytes"] = Math.Round(png), ["write_s"] = Math.Round(watch.Elapsed.TotalSeconds, 1),
            };
            Console.WriteLine($"loader: wrote {count} VOC samples ({jpeg / 1e3:F0} KB JPEG, {png / 1e3:F1} KB PNG on average) in {watch.Elapsed.TotalSeconds:F1} s");

            // Consumption: the training steps of this run.
            var none = new Dictionary<string, string>();
            var oneThread = new Dictionary<string, string> { [TorchRuntime.ThreadsVariable] = "1" };
            var consumers = new List<(string Label, string Spec, Dictionary<string, string> Env)>
            {
                ("CpuSmall(11) 64x64 B8", "kind=train,model=small,size=64,batch=8,reps=20,warmup=3", none),
                ("CpuSmall(11) 64x64 B8, 1 thread", "kind=train,model=small,size=64,batch=8,reps=20,warmup=3", oneThread),
                ("Paper(21) 513x513 B1, 1 thread", "kind=train,model=paper,size=513,batch=1,reps=2,warmup=1", oneThread),
            };
            var consumption = new JsonArray();
            foreach (var (label, spec, env) in consumers)
            {
                var existing = train?.Select(r => r!.AsObject()).FirstOrDefault(r => (string?)r["label"] == label && (bool)r["ok"]!);
                JsonObject row;
                if (existing is not null) row = (JsonObject)existing.DeepClone();
                else
                {
                    if (quick && label.StartsWith("Paper", StringComparison.Ordinal)) continue;
                    Console.WriteLine($"loader: consumption, train {label} ...");
                    row = ChildRunner.Run(spec, env, TimeSpan.FromSeconds(900), guard);
                    row["label"] = label;
                    Console.WriteLine($"  -> {Summary.TrainLine(row)}");
                }
                if (!(bool)row["ok"]!) { consumption.Add(new JsonObject { ["label"] = label, ["ok"] = false, ["error"] = row["error"]?.DeepClone() }); continue; }
                consumption.Add(new JsonObject
                {
                    ["label"] = label, ["ok"] = true, ["model"] = row["model"]?.DeepClone(), ["threads"] = row["threads"]?.DeepClone(),
                    ["batch"] = row["batch"]?.DeepClone(), ["step_s"] = row["step_s"]?.DeepClone(),
                    ["roof_fraction"] = row["roof_fraction"]?.DeepClone(), ["matmul_gflops"] = row["matmul_gflops"]?.DeepClone(),
                    ["images_per_s"] = Math.Round((int)row["batch"]! / (double)row["step_s"]!, 2),
                    ["measured"] = existing is not null ? "training half of this run" : "loader half of this run",
                });
            }
            result["consumption"] = consumption;

            // Loader throughput, alternating 1 and 2 workers.
            var cases = new List<(string Label, string Spec, int Batches)>
            {
                ("Fashion-MNIST scenes 64x64 (cpu preset), cross-entropy augmentation", "kind=loader,data=scenes,stage=baseline,views=1", quick ? 20 : 125),
                ("Fashion-MNIST scenes 64x64 (cpu preset), contrastive augmentation, two views", "kind=loader,data=scenes,stage=contrastive,views=2", quick ? 20 : 125),
                ("VOC 500x375 JPEG+PNG (voc preset), cross-entropy augmentation, crop 513", $"kind=loader,data=voc,stage=baseline,views=1,root={vocRoot}", quick ? 2 : 6),
            };
            var rounds = quick ? 1 : 2;
            var reps = 3;
            var rows = new JsonArray();
            foreach (var (label, spec, batches) in cases.Where(c => filter.Matches(c.Label)))
            {
                var runs = new Dictionary<int, List<JsonObject>> { [1] = [], [2] = [] };
                JsonNode? profile = null;
                for (var round = 0; round < rounds; round++)
                    foreach (var workers in new[] { 1, 2 })
                    {
                        var withProfile = round == 0 && workers == 1;
                        Console.WriteLine($"loader {label}, {workers} worker(s): round {round + 1} ({reps} x {batches} batches){(withProfile ? ", with a serial profile" : "")} ...");
                        var run = ChildRunner.Run($"{spec},workers={workers},reps={reps},batches={batches}{(withProfile ? ",profile=1" : "")}", none, TimeSpan.FromSeconds(900), guard);
                        if (!(bool)run["ok"]!) Console.WriteLine($"  FAILED: {run["error"]}");
                        else Console.WriteLine($"  -> {(double)run["images_per_s"]!:F1} images/s");
                        if (withProfile && (bool)run["ok"]!) profile = run["profile_ms_per_sample"]?.DeepClone();
                        runs[workers].Add(run);
                    }
                var row = new JsonObject { ["label"] = label };
                foreach (var (workers, list) in runs)
                {
                    var ok = list.Where(r => (bool)r["ok"]!).ToList();
                    if (ok.Count == 0) { row[$"workers_{workers}"] = new JsonObject { ["ok"] = false, ["error"] = list.FirstOrDefault()?["error"]?.DeepClone() }; continue; }
                    var samples = ok.SelectMany(r => r["images_per_s_samples"]!.AsArray().Select(v => (double)v!)).ToList();
                    row[$"workers_{workers}"] = new JsonObject
                    {
                        ["ok"] = true, ["images_per_s"] = Math.Round(Measure.Median(samples), 2), ["images_per_s_samples"] = Measure.ToJson(samples),
                        ["round_medians"] = Measure.ToJson(ok.Select(r => (double)r["images_per_s"]!)),
                        ["gc_pause_fraction"] = Math.Round(Measure.Median(ok.Select(r => (double)r["gc"]!["pause_fraction"]!)), 4),
                        ["allocated_mb_per_image"] = Math.Round(Measure.Median(ok.Select(r => (double)r["gc"]!["allocated_mb_per_image"]!)), 2),
                    };
                    row["description"] ??= ok[0]["description"]?.DeepClone();
                    row["data"] ??= ok[0]["data"]?.DeepClone();
                    row["views"] ??= ok[0]["views"]?.DeepClone();
                    row["images_per_rep"] ??= ok[0]["images_per_rep"]?.DeepClone();
                }
                if (profile is not null) row["profile_ms_per_sample"] = profile;
                rows.Add(row);
                foreach (var line in Summary.LoaderVerdicts(row, consumption)) Console.WriteLine($"  {line}");
            }
            result["cases"] = rows;

            // Training steps fed by the loader: what the step waits for its batch when both share the cores.
            var fed = new List<(string Label, string Spec, Dictionary<string, string> Env)>
            {
                ("CpuSmall(11) 64x64 B8, fed by the loader (2 workers, 2 threads: the cpu preset's defaults here)", "kind=train,model=small,size=64,batch=8,reps=20,warmup=3,data=scenes,stage=baseline,workers=2", none),
                ("CpuSmall(11) 64x64 B8, fed by the loader (1 worker, 1 thread)", "kind=train,model=small,size=64,batch=8,reps=20,warmup=3,data=scenes,stage=baseline,workers=1", oneThread),
            };
            var fedRows = new JsonArray();
            foreach (var (label, spec, env) in fed.Where(c => filter.Matches(c.Label)))
            {
                Console.WriteLine($"loader: train {label} ...");
                var run = ChildRunner.Run(spec, env, TimeSpan.FromSeconds(900), guard);
                run["label"] = label;
                Console.WriteLine($"  -> {Summary.TrainLine(run)}");
                fedRows.Add(run);
            }
            result["fed_steps"] = fedRows;
        }
        finally
        {
            fixture.Delete(recursive: true);
        }
        return result;
    }

    private static JsonObject Skipped(string why) => new() { ["ok"] = false, ["error"] = why, ["skipped"] = true };
}
