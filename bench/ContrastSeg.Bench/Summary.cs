using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace ContrastSeg.Bench;

/// <summary>Targets, the stdout summary and the Markdown tables.</summary>
internal static class Summary
{
    /// <summary>Blockwise peak extra memory at 129x129, as a fraction of one P x P float32 matrix.</summary>
    public const double MemoryTarget = 0.10;

    /// <summary>Blockwise forward+backward time at 65x65, as a multiple of the naive time.</summary>
    public const double TimeTarget = 1.3;

    /// <summary>Training step FLOP rate as a fraction of the 2048x2048 fp32 matmul rate.</summary>
    public const double RoofTarget = 0.5;

    /// <summary>CPU-scale loader throughput as a multiple of the training step's consumption (images/s).</summary>
    public const double LoaderTarget = Suite.LoaderTarget;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Print(JsonObject report)
    {
        Console.WriteLine();
        Console.WriteLine("=== ContrastSeg benchmark summary ===");
        var m = report["machine"]!;
        Console.WriteLine($"machine: {m["cpu_model"]}, {m["cores"]} cores, {m["memory_gb"]} GB, {m["os"]}; threads {m["threads"]}, oneDNN {m["mkldnn"]}");
        foreach (var line in LossLines(report)) Console.WriteLine(line);
        foreach (var line in TrainLines(report)) Console.WriteLine(line);
        foreach (var line in LoaderLines(report)) Console.WriteLine(line);
        Console.WriteLine($"total wall time {report["wall_s"]} s");
    }

    private static IEnumerable<string> LossLines(JsonObject report)
    {
        if (report["loss"] is not JsonArray rows) yield break;
        yield return "-- loss: forward+backward median time (default malloc), peak extra RSS (mmap threshold 1 MiB) --";
        foreach (var row in rows.Select(r => r!.AsObject()))
        {
            yield return $"{row["case"],-26} N={row["group_pixels"],-6} naive: {LossCell(row["naive"]!.AsObject())}";
            yield return $"{"",-26} {"",-8} blockwise: {LossCell(row["blockwise"]!.AsObject())}";
            foreach (var verdict in Verdicts(row)) yield return $"{"",-26} {"",-8} {verdict}";
        }
    }

    /// <summary>Target verdicts of one loss row (empty when no target applies).</summary>
    public static IEnumerable<string> Verdicts(JsonObject row)
    {
        var side = (int)row["side"]!;
        var batch = (int)row["batch"]!;
        if (side == 129 && batch == 1)
        {
            var peak = Peak(row["blockwise"]);
            var pp = 129.0 * 129 * 129 * 129 * 4;
            var kernel = row["blockwise"]?["kernel_only_memory"] is JsonObject k && (bool)k["ok"]! ? (double?)k["median_peak_extra_bytes"] : null;
            var kernelText = kernel is { } kb ? $"; the kernel alone on the same pixel group: {kb / 1e6:F1} MB = {kb / pp:P1} ({(kb / pp <= MemoryTarget ? "within" : "above")} the limit)" : "";
            yield return peak is { } p
                ? $"TARGET blockwise memory <= {MemoryTarget:P0} of one PxP matrix ({pp / 1e9:F3} GB): {p / 1e6:F1} MB = {p / pp:P1} -> {(p / pp <= MemoryTarget ? "MET" : "MISSED")} ({p / pp / MemoryTarget:F2}x the limit){kernelText}"
                : "TARGET blockwise memory: no measurement";
        }
        if (side == 65 && batch == 1)
        {
            var naive = Median(row["naive"]);
            var block = Median(row["blockwise"]);
            yield return naive is { } n && block is { } b
                ? $"TARGET blockwise time <= {TimeTarget:F1}x naive: {b:F4} s / {n:F4} s = {b / n:F2}x -> {(b / n <= TimeTarget ? "MET" : "MISSED")}"
                : "TARGET blockwise time: no measurement";
        }
    }

    public static string LossCell(JsonObject cell)
    {
        if (cell["ok"] is { } ok && !(bool)ok!) return $"FAILED ({cell["error"]})";
        var mem = cell["memory"]!.AsObject();
        var time = cell["time"]!.AsObject();
        var memText = (bool)mem["ok"]! ? $"peak +{(double)mem["median_peak_extra_bytes"]! / 1e6:F1} MB (max {(double)mem["max_peak_extra_bytes"]! / 1e6:F1})" : $"memory FAILED ({mem["error"]})";
        var timeText = (bool)time["ok"]! ? $"{(double)time["median_s"]!:F4} s" : $"time FAILED ({time["error"]})";
        var loss = (bool)time["ok"]! ? $", loss {time["loss"]}" : "";
        return $"{timeText}, {memText}{loss}";
    }

    private static double? Median(JsonNode? cell) =>
        cell?["time"] is JsonObject t && (bool)t["ok"]! ? (double)t["median_s"]! : null;

    private static double? MedianUnderThreshold(JsonNode? cell) =>
        cell?["memory"] is JsonObject t && (bool)t["ok"]! ? (double)t["median_s"]! : null;

    private static double? Peak(JsonNode? cell) =>
        cell?["memory"] is JsonObject t && (bool)t["ok"]! ? (double)t["median_peak_extra_bytes"]! : null;

    private static IEnumerable<string> TrainLines(JsonObject report)
    {
        if (report["train"] is not JsonArray rows) yield break;
        yield return "-- training step: conv FLOPs (forward + 2x backward, first conv without input grad) / median step time vs 2048^2 fp32 matmul --";
        foreach (var row in rows.Select(r => r!.AsObject())) yield return TrainLine(row);
        if (report["loader"] is null) yield return "data loader: see the loader half (--only loader)";
    }

    private static IEnumerable<string> LoaderLines(JsonObject report)
    {
        if (report["loader"] is not JsonObject loader) yield break;
        yield return "-- data loader: images/s decoded + augmented + batched (median of repetitions), vs the training steps' consumption --";
        foreach (var c in loader["consumption"]!.AsArray().Select(x => x!.AsObject()))
            yield return (bool)c["ok"]!
                ? $"consumption {c["label"],-34} step {(double)c["step_s"]!:F3} s, batch {c["batch"]} -> {(double)c["images_per_s"]!:G3} images/s ({c["measured"]})"
                : $"consumption {c["label"]}: FAILED ({c["error"]})";
        foreach (var row in loader["cases"]!.AsArray().Select(x => x!.AsObject()))
        {
            yield return $"{row["label"]}: {row["description"]}";
            foreach (var w in new[] { 1, 2 })
                if (row[$"workers_{w}"] is JsonObject cell)
                    yield return (bool)cell["ok"]!
                        ? $"  {w} worker(s): {(double)cell["images_per_s"]!:F1} images/s" +
                          (cell["gc_pause_fraction"] is JsonValue gc ? $" (GC pauses {(double)gc:P1} of the time, {(double)cell["allocated_mb_per_image"]!:F2} MB allocated per image)" : "")
                        : $"  {w} worker(s): FAILED ({cell["error"]})";
            foreach (var v in LoaderVerdicts(row, loader["consumption"]!.AsArray())) yield return "  " + v;
        }
        foreach (var r in loader["fed_steps"]?.AsArray().Select(x => x!.AsObject()) ?? [])
            yield return TrainLine(r);
    }

    /// <summary>Target verdicts of one loader row against the consumption rates of the same run.</summary>
    public static IEnumerable<string> LoaderVerdicts(JsonObject row, JsonArray consumption)
    {
        var rates = consumption.Select(c => c!.AsObject()).Where(c => (bool)c["ok"]!).ToList();
        var scenes = (string?)row["data"] == "scenes";
        var references = rates.Where(c => ((string?)c["label"] ?? "").StartsWith(scenes ? "CpuSmall" : "Paper", StringComparison.Ordinal)).ToList();
        if (references.Count == 0) { yield return scenes ? "TARGET: no consumption rate measured" : "no consumption rate measured"; yield break; }
        var fastest = references.MaxBy(c => (double)c["images_per_s"]!)!;
        var need = (double)fastest["images_per_s"]!;
        foreach (var w in new[] { 1, 2 })
        {
            if (row[$"workers_{w}"] is not JsonObject cell || !(bool)cell["ok"]!) continue;
            var ips = (double)cell["images_per_s"]!;
            var ratio = ips / need;
            var others = string.Join(", ", references.Where(c => c != fastest).Select(c => $"{ips / (double)c["images_per_s"]!:F1}x vs {c["label"]}"));
            yield return scenes
                ? $"TARGET {w} worker(s) >= {LoaderTarget:F0}x consumption ({fastest["label"]}: {need:F1} images/s): {ips:F1} images/s = {ratio:F1}x -> {(ratio >= LoaderTarget ? "MET" : "MISSED")}{(others.Length > 0 ? $"; {others}" : "")}"
                : $"{w} worker(s): {ratio:F0}x the consumption of {fastest["label"]} ({need:F2} images/s){(others.Length > 0 ? $"; {others}" : "")}";
        }
    }

    public static string TrainLine(JsonObject r)
    {
        if (!(bool)r["ok"]!) return $"{r["label"]}: FAILED ({r["error"]})";
        var fraction = (double)r["roof_fraction"]!;
        var data = r["data_s"] is JsonValue d ? $"data {(double)d:F3} / " : "";
        return $"{r["label"],-40} step {(double)r["step_s"]!:F3} s ({data}fwd {(double)r["forward_s"]!:F3} / bwd {(double)r["backward_s"]!:F3} / opt {(double)r["optimizer_s"]!:F3}), " +
               $"{(double)r["step_gflop"]!:F1} GFLOP -> {(double)r["step_gflops"]!:F1} GFLOP/s vs matmul {(double)r["matmul_gflops"]!:F1} GFLOP/s = {fraction:P1}; " +
               $"TARGET >= {RoofTarget:P0} -> {(fraction >= RoofTarget ? "MET" : "MISSED")} ({fraction / RoofTarget:F2}x the target)";
    }

    /// <summary>The figures as Markdown tables (pasted into docs/performance.md).</summary>
    public static string Markdown(JsonObject report)
    {
        var sb = new StringBuilder();
        var m = report["machine"]!;
        sb.AppendLine($"Command: `{report["command"]}` (wall time {report["wall_s"]} s, {report["started_utc"]}, commit {m["git_commit"]})");
        sb.AppendLine();
        sb.AppendLine($"Machine: {m["cpu_model"]}, {m["cores"]} cores, {m["memory_gb"]} GB RAM, {m["os"]} (kernel {m["kernel"]}), {m["dotnet"]}, TorchSharp {m["torchsharp"]}; " +
                      $"libtorch threads {m["threads"]}, oneDNN {((bool)m["mkldnn"]! ? "on" : "off")} ({m["mkldnn_reason"]}); load average at start {m["load_average_at_start"]}.");
        sb.AppendLine();

        if (report["peers"] is JsonArray peers)
        {
            sb.AppendLine("### The peers' loss options, forward + backward (and the memory's write) per step");
            sb.AppendLine();
            sb.AppendLine(PeerCase.Markdown(peers));
        }

        if (report["loss"] is JsonArray rows)
        {
            sb.AppendLine("### Contrastive loss, forward + backward (D = 256, 21 classes)");
            sb.AppendLine();
            sb.AppendLine("| case | N (group) | naive time (s) | blockwise time (s) | blockwise / naive | naive peak (MB) | blockwise peak (MB) | blockwise peak / one PxP matrix (P = side^2) | blockwise peak / one NxN matrix | time with mmap threshold, naive / blockwise (s) |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var row in rows.Select(r => r!.AsObject()))
            {
                var (n, b) = (row["naive"], row["blockwise"]);
                var side = (int)row["side"]!;
                var pp = Math.Pow(side, 4) * 4;
                var ratio = Median(n) is { } tn && Median(b) is { } tb ? $"{tb / tn:F2}" : "-";
                var nn = Math.Pow((long)row["group_pixels"]!, 2) * 4;
                var share = Peak(b) is { } pb ? $"{pb / pp:P1} of {pp / 1e6:F0} MB" : "-";
                var groupShare = Peak(b) is { } pg ? $"{pg / nn:P1} of {nn / 1e6:F0} MB" : "-";
                sb.AppendLine($"| {row["case"]} | {row["group_pixels"]} | {Fmt(Median(n), "F4", n)} | {Fmt(Median(b), "F4", b)} | {ratio} | {Fmt(Peak(n) / 1e6, "F1", n)} | {Fmt(Peak(b) / 1e6, "F1", b)} | {share} | {groupShare} | {Fmt(MedianUnderThreshold(n), "F3", n)} / {Fmt(MedianUnderThreshold(b), "F3", b)} |");
            }
            sb.AppendLine();
            var failures = new List<string>();
            foreach (var row in rows.Select(r => r!.AsObject()))
                foreach (var impl in new[] { "naive", "blockwise" })
                {
                    if (row[impl] is not JsonObject c) continue;
                    if (c["skipped"] is not null) failures.Add($"- {row["case"]} {impl}: {c["error"]}");
                    foreach (var part in new[] { "memory", "time" })
                        if (c[part] is JsonObject p && !(bool)p["ok"]!)
                            failures.Add($"- {row["case"]} {impl}, {part}: {p["error"]}" +
                                         (p["max_rss_seen_gb"] is { } rss ? $" (largest RSS seen {rss} GB, after {p["child_wall_s"]} s)" : ""));
                }
            if (failures.Count > 0)
            {
                sb.AppendLine("Not measured:");
                failures.ForEach(f => sb.AppendLine(f));
                sb.AppendLine();
            }
            sb.AppendLine("Targets:");
            sb.AppendLine();
            foreach (var row in rows.Select(r => r!.AsObject()))
                foreach (var v in Verdicts(row)) sb.AppendLine($"- {row["case"]}: {v}");
            sb.AppendLine();
        }

        if (report["train"] is JsonArray train)
        {
            sb.AppendLine("### Training step (SGD momentum, cross-entropy at input size)");
            sb.AppendLine();
            sb.AppendLine("| configuration | threads | oneDNN | GFLOP/step | forward (s) | backward (s) | optimizer (s) | step (s) | GFLOP/s | matmul GFLOP/s | of roof | target >= 50% |");
            sb.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var r in train.Select(x => x!.AsObject()))
            {
                if (!(bool)r["ok"]!) { sb.AppendLine($"| {r["label"]} | | | | | | | | | | | failed: {r["error"]} |"); continue; }
                var f = (double)r["roof_fraction"]!;
                sb.AppendLine($"| {r["label"]} | {r["threads"]} | {((bool)r["mkldnn"]! ? "on" : "off")} | {(double)r["step_gflop"]!:F1} | {(double)r["forward_s"]!:F3} | {(double)r["backward_s"]!:F3} | {(double)r["optimizer_s"]!:F4} | {(double)r["step_s"]!:F3} | {(double)r["step_gflops"]!:F1} | {(double)r["matmul_gflops"]!:F1} | {f:P1} | {(f >= RoofTarget ? "met" : "missed")} ({f / RoofTarget:F2}x) |");
            }
            sb.AppendLine();
            sb.AppendLine("Forward GFLOP by part (convolutions only):");
            sb.AppendLine();
            foreach (var r in train.Select(x => x!.AsObject()).Where(x => (bool)x["ok"]!).DistinctBy(x => $"{x["model"]}{x["size"]}{x["batch"]}"))
            {
                var parts = r["forward_gflop_by_part"]!.AsObject().Select(p => $"{p.Key} {(double)p.Value!:F2}");
                sb.AppendLine($"- {r["model"]} {r["size"]}x{r["size"]} B{r["batch"]}: forward {(double)r["forward_gflop"]!:F2} GFLOP ({string.Join(", ", parts)}); forward {(double)r["forward_gflops"]!:F1} GFLOP/s, backward {(double)r["backward_gflops"]!:F1} GFLOP/s");
            }
            sb.AppendLine();
        }
        if (report["loader"] is JsonObject loader) LoaderMarkdown(sb, loader);
        return sb.ToString();
    }

    private static void LoaderMarkdown(StringBuilder sb, JsonObject loader)
    {
        sb.AppendLine("### Data loader (images/s decoded + augmented + batched, median of repetitions)");
        sb.AppendLine();
        if (loader["voc_fixture"] is JsonObject f)
            sb.AppendLine($"VOC fixture written by the bench: {f["images"]} images {f["width"]}x{f["height"]}, JPEG {(double)f["mean_jpeg_bytes"]! / 1e3:F0} KB and palette PNG {(double)f["mean_png_bytes"]! / 1e3:F1} KB on average.");
        sb.AppendLine();
        sb.AppendLine("Consumption (training steps of the same run):");
        sb.AppendLine();
        foreach (var c in loader["consumption"]!.AsArray().Select(x => x!.AsObject()))
            sb.AppendLine((bool)c["ok"]!
                ? $"- {c["label"]}: step {(double)c["step_s"]!:F3} s, batch {c["batch"]}: **{(double)c["images_per_s"]!:G3} images/s** ({c["measured"]})"
                : $"- {c["label"]}: failed ({c["error"]})");
        sb.AppendLine();
        sb.AppendLine("| loader | pipeline | 1 worker (images/s) | 2 workers (images/s) | 2 / 1 workers | managed MB allocated per image; GC pauses (1 / 2 workers) | target |");
        sb.AppendLine("|---|---|---:|---:|---:|---|---|");
        foreach (var row in loader["cases"]!.AsArray().Select(x => x!.AsObject()))
        {
            double? Rate(int w) => row[$"workers_{w}"] is JsonObject c && (bool)c["ok"]! ? (double)c["images_per_s"]! : null;
            var (one, two) = (Rate(1), Rate(2));
            var verdicts = string.Join("<br>", LoaderVerdicts(row, loader["consumption"]!.AsArray()));
            string Gc(int w) => row[$"workers_{w}"] is JsonObject c && c["gc_pause_fraction"] is JsonValue gc ? $"{(double)c["allocated_mb_per_image"]!:F2}; {(double)gc:P1}" : "-";
            sb.AppendLine($"| {row["label"]} | {row["description"]} | {one?.ToString("F1", Inv) ?? "failed"} | {two?.ToString("F1", Inv) ?? "failed"} | {(one is { } a && two is { } b ? (b / a).ToString("F2", Inv) : "-")} | {Gc(1)} / {Gc(2)} | {verdicts} |");
        }
        sb.AppendLine();
        var profiled = loader["cases"]!.AsArray().Select(x => x!.AsObject()).Where(r => r["profile_ms_per_sample"] is JsonObject).ToList();
        if (profiled.Count > 0)
        {
            sb.AppendLine("Serial cost per sample and view (ms, one thread, mean over 40 samples; a step applied with probability p counts p times its cost; stacking into batch tensors not included):");
            sb.AppendLine();
            foreach (var r in profiled)
                sb.AppendLine($"- {r["label"]}: " + string.Join(", ", r["profile_ms_per_sample"]!.AsObject().Select(p => $"{p.Key} {(double)p.Value!:F3}")));
            sb.AppendLine();
        }
        if (loader["fed_steps"] is JsonArray fed && fed.Count > 0)
        {
            sb.AppendLine("Training steps fed by the loader (the step includes waiting for its batch):");
            sb.AppendLine();
            sb.AppendLine("| configuration | threads | workers | data wait (s) | forward (s) | backward (s) | optimizer (s) | step (s) | images/s |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in fed.Select(x => x!.AsObject()))
            {
                if (!(bool)r["ok"]!) { sb.AppendLine($"| {r["label"]} | | | | | | | | failed: {r["error"]} |"); continue; }
                sb.AppendLine($"| {r["label"]} | {r["threads"]} | {r["loader_workers"]} | {(double)r["data_s"]!:F4} | {(double)r["forward_s"]!:F3} | {(double)r["backward_s"]!:F3} | {(double)r["optimizer_s"]!:F4} | {(double)r["step_s"]!:F3} | {(int)r["batch"]! / (double)r["step_s"]!:F1} |");
            }
            sb.AppendLine();
        }
    }

    private static string Fmt(double? value, string format, JsonNode? cell)
    {
        if (value is { } v) return v.ToString(format, Inv);
        return cell is JsonObject c && c["skipped"] is not null ? "not run" : "failed";
    }
}
