using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ContrastSeg.Losses;
using ContrastSeg.Runtime;
using static TorchSharp.torch;

namespace ContrastSeg.Bench;

/// <summary>
/// The peers' loss options (docs/loss.md) against the paper's loss: forward + backward of the loss (and the memory's write)
/// per step, at the scene studies' scale and at the paper's resolution. Each option runs in a child process
/// (<c>kind=peers</c>): median seconds per step with the default malloc, peak extra RSS with the 1 MiB mmap threshold.
/// </summary>
internal static class PeerCase
{
    /// <summary>A loss input shape: batch, views, side, channels, classes, variant.</summary>
    private sealed record Scale(string Name, int Batch, int Views, int Side, int Channels, int Classes, ContrastiveVariant Variant);

    private static readonly Scale[] Scales =
    [
        // The `peers` study: 8 scenes and their second views, 16x16 loss maps of 64-d projections, 11 classes, cross-image.
        new("scenes B8x2 16x16 D64", 8, 2, 16, 64, 11, ContrastiveVariant.CrossImage),
        // The paper's loss resolution: 65x65 maps of 256-d projections, 21 classes, within-image, two images of one view.
        new("paper B2 65x65 D256", 2, 1, 65, 256, 21, ContrastiveVariant.WithinImage),
    ];

    /// <summary>
    /// The options measured at a scale (name, options); the first is the paper's loss. At the scenes' scale the `peers`
    /// study's settings; at the paper's, ContrastiveSeg's budgets (100 anchors per class, 1,024 per image) and ReCo's
    /// 256 queries x 256 negatives, with a memory of 500 pixels + 100 regions per class (ContrastiveSeg keeps 5,000 + 5,000 on
    /// GPUs; the cost grows with anchors x keys) that always goes with the per-class budgets, as in ContrastiveSeg.
    /// </summary>
    private static List<(string Name, Func<PixelContrastiveOptions, PixelContrastiveOptions> Apply)> Options(Scale scale)
    {
        var paper = scale.Side > 16;
        var (perClass, cap) = paper ? (100, 1024) : (16, 256);
        var (pixels, regions) = paper ? (500, 100) : (256, 64);
        PixelContrastiveOptions Budgets(PixelContrastiveOptions o) => o with { AnchorsPerClass = perClass, MaxAnchors = cap };
        PixelContrastiveOptions Memory(PixelContrastiveOptions o) => o with { MemoryPixels = pixels, MemoryPixelsPerImage = 10, MemoryRegions = regions };
        return
        [
            ("paper", o => o),
            ("per-class anchors", Budgets),
            ("hard anchors", o => Budgets(o) with { HardAnchorFraction = 0.5 }),
            (paper ? "per-class anchors + memory" : "memory", o => paper ? Memory(Budgets(o)) : Memory(o)),
            ("hard anchors + memory", o => Memory(Budgets(o)) with { HardAnchorFraction = 0.5 }),
            ("reco", o => o with
            {
                Form = ContrastiveForm.Regional, AnchorsPerClass = paper ? 256 : 64, RegionalNegatives = paper ? 256 : 128, HardQueryThreshold = 0.97,
                Temperature = 0.5,
            }),
        ];
    }

    /// <summary>The parent's side: every option at every scale, memory then time, each in a child.</summary>
    public static JsonArray Cases(bool quick, long guard, CaseFilter filter)
    {
        var results = new JsonArray();
        var memoryEnv = new Dictionary<string, string> { [TorchRuntime.MmapThresholdVariable] = "1048576" };
        var reps = quick ? 3 : 7;
        for (var s = 0; s < Scales.Length; s++)
            foreach (var (o, (name, _)) in Options(Scales[s]).Select((x, i) => (i, x)))
            {
                var label = $"{Scales[s].Name}: {name}";
                if (!filter.Matches("peers " + label)) continue;
                var spec = $"kind=peers,scale={s},option={o},reps={reps}";
                Console.WriteLine($"peers {label}: memory, time ...");
                var memory = ChildRunner.Run(spec + ",mode=mem", memoryEnv, TimeSpan.FromSeconds(600), guard);
                var time = ChildRunner.Run(spec + ",mode=time", new Dictionary<string, string>(), TimeSpan.FromSeconds(600), guard);
                results.Add(new JsonObject { ["scale"] = Scales[s].Name, ["option"] = name, ["memory"] = memory, ["time"] = time });
                Console.WriteLine($"  -> {Cell(time, memory)}");
            }
        return results;
    }

    /// <summary>The child's side: one option at one scale.</summary>
    public static JsonObject Run(IReadOnlyDictionary<string, string> spec)
    {
        var scale = Scales[int.Parse(spec["scale"], CultureInfo.InvariantCulture)];
        var (name, apply) = Options(scale)[int.Parse(spec["option"], CultureInfo.InvariantCulture)];
        var mode = spec["mode"];
        var reps = int.Parse(spec["reps"], CultureInfo.InvariantCulture);
        var status = TorchRuntime.EnsureInitialized();
        var options = apply(new PixelContrastiveOptions
        {
            Variant = scale.Variant, ResizeTo = null, NormalizeEmbeddings = false, Seed = 7, Classes = scale.Classes,
            Pairing = CrossImagePairing.NextImage,
        });
        using var loss = new PixelContrastiveLoss(options);
        if (loss.Memory is { } memory) Fill(memory, scale.Channels);

        manual_seed(42);
        Tensor Embeddings() => nn.functional.normalize(randn(scale.Batch, scale.Channels, scale.Side, scale.Side), dim: 1);
        var labelShape = new long[] { scale.Batch, scale.Side, scale.Side };
        var x1 = Embeddings();
        var y1 = randint(0, scale.Classes, labelShape);
        var logits1 = randn(scale.Batch, scale.Classes, scale.Side, scale.Side);
        var two = scale.Views > 1;
        var x2 = two ? Embeddings() : null;
        var y2 = two ? randint(0, scale.Classes, labelShape) : null;
        var logits2 = two ? randn(scale.Batch, scale.Classes, scale.Side, scale.Side) : null;
        double value = double.NaN;
        double Step()
        {
            using var scope = NewDisposeScope();
            var a = x1.detach().requires_grad_(true);
            var b = x2?.detach().requires_grad_(true);
            var l = loss.Forward(a, y1, b, y2, logits1, logits2);
            l.backward();
            return l.item<float>();
        }
        value = Step(); // warm-up: code pages, allocator, thread pool
        var times = new List<double>();
        var peaks = new List<double>();
        for (var i = 0; i < reps; i++)
        {
            if (mode == "mem")
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Measure.ResetPeakRss();
                var baseline = Measure.RssBytes();
                value = Step();
                peaks.Add(Measure.PeakRssBytes() - baseline);
            }
            else times.Add(Measure.Time(() => value = Step()));
        }
        var result = new JsonObject
        {
            ["scale"] = scale.Name, ["option"] = name, ["mode"] = mode, ["loss"] = Math.Round(value, 6), ["threads"] = status.Threads,
            ["memory_keys"] = loss.Memory?.Keys(CPU)?.Embeddings.shape[0] ?? 0,
        };
        if (mode == "mem") result["median_peak_extra_bytes"] = Measure.Median(peaks);
        else
        {
            result["times_s"] = Measure.ToJson(times);
            result["median_s"] = Math.Round(Measure.Median(times), 6);
        }
        return result;
    }

    /// <summary>A memory as full as a long run leaves it: every ring filled with random unit entries (the saved state's layout).</summary>
    private static void Fill(ClassMemoryBank memory, int dim)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write("CSMEM1");
            w.Write(memory.Classes);
            w.Write(memory.PixelSize);
            w.Write(memory.RegionSize);
            w.Write((long)dim);
            foreach (var size in new[] { memory.PixelSize, memory.RegionSize })
            {
                for (var c = 0; c < memory.Classes; c++) w.Write(0L);     // next slot
                for (var c = 0; c < memory.Classes; c++) w.Write((long)size); // full
            }
            foreach (var size in new[] { memory.PixelSize, memory.RegionSize })
            {
                if (size == 0) continue;
                using var entries = nn.functional.normalize(randn(memory.Classes, size, dim), dim: 2);
                foreach (var v in entries.data<float>()) w.Write(v);
            }
        }
        stream.Position = 0;
        memory.Load(stream);
    }

    /// <summary>One result as the tables show it: median s/step and peak extra MB.</summary>
    public static string Cell(JsonNode? time, JsonNode? memory)
    {
        var t = time?["ok"]?.GetValue<bool>() == true ? $"{time["median_s"]!.GetValue<double>() * 1e3:F1} ms/step" : $"time failed: {time?["error"]}";
        var m = memory?["ok"]?.GetValue<bool>() == true ? $"{memory["median_peak_extra_bytes"]!.GetValue<double>() / 1e6:F1} MB peak" : $"memory failed: {memory?["error"]}";
        return $"{t}, {m}";
    }

    /// <summary>The Markdown table of the peers' cases (ratios against the paper's loss at the same scale).</summary>
    public static string Markdown(JsonArray rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| scale | option | s/step (median) | vs paper | peak extra memory | vs paper | memory keys |").AppendLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var row in rows.Select(r => r!.AsObject()))
        {
            var paper = rows.Select(r => r!.AsObject()).FirstOrDefault(r => (string)r["scale"]! == (string)row["scale"]! && (string)r["option"]! == "paper");
            double? T(JsonObject? r) => r?["time"]?["ok"]?.GetValue<bool>() == true ? r["time"]!["median_s"]!.GetValue<double>() : null;
            double? M(JsonObject? r) => r?["memory"]?["ok"]?.GetValue<bool>() == true ? r["memory"]!["median_peak_extra_bytes"]!.GetValue<double>() : null;
            string Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? (x / y).ToString("0.00x", CultureInfo.InvariantCulture) : "-";
            var keys = row["time"]?["memory_keys"] ?? row["memory"]?["memory_keys"];
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {row["scale"]} | {row["option"]} | {(T(row) is { } t ? $"{t:F4}" : "failed")} | {Ratio(T(row), T(paper))} | {(M(row) is { } m ? $"{m / 1e6:F1} MB" : "failed")} | {Ratio(M(row), M(paper))} | {keys} |");
        }
        return sb.ToString();
    }
}
