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

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Print(JsonObject report)
    {
        Console.WriteLine();
        Console.WriteLine("=== ContrastSeg benchmark summary ===");
        var m = report["machine"]!;
        Console.WriteLine($"machine: {m["cpu_model"]}, {m["cores"]} cores, {m["memory_gb"]} GB, {m["os"]}; threads {m["threads"]}, oneDNN {m["mkldnn"]}");
        foreach (var line in LossLines(report)) Console.WriteLine(line);
        foreach (var line in TrainLines(report)) Console.WriteLine(line);
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
        yield return "data loader: not yet available (placeholder; the loader is being written in parallel)";
    }

    public static string TrainLine(JsonObject r)
    {
        if (!(bool)r["ok"]!) return $"{r["label"]}: FAILED ({r["error"]})";
        var fraction = (double)r["roof_fraction"]!;
        return $"{r["label"],-40} step {(double)r["step_s"]!:F3} s (fwd {(double)r["forward_s"]!:F3} / bwd {(double)r["backward_s"]!:F3} / opt {(double)r["optimizer_s"]!:F3}), " +
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
            sb.AppendLine("| data loader | | | | | | | | | | | not yet available |");
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
        return sb.ToString();
    }

    private static string Fmt(double? value, string format, JsonNode? cell)
    {
        if (value is { } v) return v.ToString(format, Inv);
        return cell is JsonObject c && c["skipped"] is not null ? "not run" : "failed";
    }
}
