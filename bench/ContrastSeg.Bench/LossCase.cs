using System.Text.Json.Nodes;
using ContrastSeg.Losses;
using ContrastSeg.Runtime;
using static TorchSharp.torch;

namespace ContrastSeg.Bench;

/// <summary>Embeddings and labels of one or two views (or, for scope=kernel, a ready pixel group).</summary>
internal sealed record Inputs(Tensor x1, Tensor y1, Tensor? x2, Tensor? y2);

/// <summary>One loss configuration: variant, kernel, image side, batch and views.</summary>
internal sealed record LossSetup(ContrastiveVariant Variant, ContrastiveImplementation Implementation, int Side, int Batch, int Views)
{
    public const int Channels = 256;
    public const int Classes = 21;
    public const int BatchSample = 10_000;

    /// <summary>Pixels of one group: an image, an image pair, or the batch sample.</summary>
    public long GroupPixels => Variant switch
    {
        ContrastiveVariant.CrossImage => 2L * Side * Side,
        ContrastiveVariant.Batch => Math.Min(BatchSample, (long)Batch * Views * Side * Side),
        _ => (long)Side * Side,
    };

    public string Name => $"{VariantName(Variant)} {(Batch > 1 ? $"B{Batch}x" : "")}{Side}x{Side}{(Views > 1 ? " 2 views" : "")}";

    public static string VariantName(ContrastiveVariant v) => v switch
    {
        ContrastiveVariant.WithinImage => "within",
        ContrastiveVariant.CrossImage => "cross",
        _ => "batch",
    };

    public static string ImplName(ContrastiveImplementation i) => i == ContrastiveImplementation.FullMatrix ? "naive" : "blockwise";

    public string Spec(string mode, int reps, string scope = "loss") =>
        $"kind=loss,mode={mode},scope={scope},variant={VariantName(Variant)},impl={ImplName(Implementation)},side={Side},batch={Batch},views={Views},reps={reps}";

    public static LossSetup FromSpec(IReadOnlyDictionary<string, string> s) => new(
        s["variant"] switch { "within" => ContrastiveVariant.WithinImage, "cross" => ContrastiveVariant.CrossImage, "batch" => ContrastiveVariant.Batch, var v => throw new ArgumentException($"variant {v}") },
        s["impl"] == "naive" ? ContrastiveImplementation.FullMatrix : ContrastiveImplementation.Blockwise,
        int.Parse(s["side"]), int.Parse(s["batch"]), int.Parse(s["views"]));
}

/// <summary>
/// The child-process side of a loss case. <c>mode=mem</c>: peak extra RSS of one forward+backward (the
/// parent sets CONTRASTSEG_MMAP_THRESHOLD so RSS follows live memory); <c>mode=time</c>: median
/// forward+backward time with glibc's default malloc (how the kit normally runs).
/// </summary>
internal static class LossCase
{
    public static JsonObject Run(IReadOnlyDictionary<string, string> spec)
    {
        var setup = LossSetup.FromSpec(spec);
        var mode = spec["mode"];
        var reps = int.Parse(spec["reps"]);
        var status = TorchRuntime.EnsureInitialized();
        if (mode == "mem" && (status.MmapThreshold is null || !Measure.ProcSupported))
            throw new InvalidOperationException("mem mode needs Linux /proc and CONTRASTSEG_MMAP_THRESHOLD (RSS must follow live memory)");

        using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions
        {
            Variant = setup.Variant,
            Implementation = setup.Implementation,
            ResizeTo = null,
            Seed = 7,
            BlockSize = int.Parse(spec.GetValueOrDefault("block") ?? "0"),
            NormalizeEmbeddings = spec.GetValueOrDefault("normalize") != "0",
        });

        // scope=kernel: ContrastiveKernel.Blockwise alone on a ready [N, D] group (no resize, normalisation,
        // flattening or concatenation of views), to tell the kernel's memory from the loss pipeline's.
        var kernelOnly = spec.GetValueOrDefault("scope") == "kernel";
        Inputs Make(LossSetup s, long seed) => kernelOnly ? KernelGroup(s, MakeInputs(s, seed)) : MakeInputs(s, seed);
        Tensor Step(Inputs inputs)
        {
            var (x1, x2) = Leaves(inputs);
            var value = kernelOnly
                ? ContrastiveKernel.Blockwise(x1, inputs.y1, ones(inputs.y1.shape[0], ScalarType.Bool), inputs.y2, loss.Options.Temperature)
                : loss.Forward(x1, inputs.y1, x2, inputs.y2);
            value.backward();
            return value.detach();
        }

        // Warm-up on a small input: the first call of each libtorch kernel faults its code pages into RSS.
        using (NewDisposeScope()) Step(Make(setup with { Side = 17, Batch = Math.Min(setup.Batch, 2) }, seed: 1));

        var inputs = Make(setup, seed: 42);
        var times = new List<double>();
        var peaks = new List<double>();
        var forwardPeaks = new List<double>();
        var backwardPeaks = new List<double>();
        double value = double.NaN;
        if (mode == "time")
        {
            using (NewDisposeScope()) Step(inputs); // first full-size call (allocator, thread pool)
            for (var i = 0; i < reps; i++)
            {
                using var scope = NewDisposeScope();
                Tensor? output = null;
                times.Add(Measure.Time(() => output = Step(inputs)));
                value = output!.item<float>();
            }
        }
        else
        {
            for (var i = 0; i < reps; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Measure.ResetPeakRss();
                var baseline = Measure.RssBytes();
                using (var scope = NewDisposeScope())
                {
                    // Forward and backward peaks separately (clear_refs resets the peak to the current RSS).
                    var watch = System.Diagnostics.Stopwatch.StartNew();
                    var (x1, x2) = Leaves(inputs);
                    var output = kernelOnly
                        ? ContrastiveKernel.Blockwise(x1, inputs.y1, ones(inputs.y1.shape[0], ScalarType.Bool), inputs.y2, loss.Options.Temperature)
                        : loss.Forward(x1, inputs.y1, x2, inputs.y2);
                    forwardPeaks.Add(Measure.PeakRssBytes() - baseline);
                    Measure.ResetPeakRss();
                    output.backward();
                    times.Add(watch.Elapsed.TotalSeconds);
                    backwardPeaks.Add(Measure.PeakRssBytes() - baseline);
                    value = output.item<float>();
                }
                peaks.Add(Math.Max(forwardPeaks[^1], backwardPeaks[^1]));
            }
        }

        var p = (long)setup.Side * setup.Side;
        var result = new JsonObject
        {
            ["case"] = setup.Name,
            ["mode"] = mode,
            ["scope"] = kernelOnly ? "kernel" : "loss",
            ["variant"] = LossSetup.VariantName(setup.Variant),
            ["impl"] = LossSetup.ImplName(setup.Implementation),
            ["side"] = setup.Side,
            ["batch"] = setup.Batch,
            ["views"] = setup.Views,
            ["group_pixels"] = setup.GroupPixels,
            ["image_pixels"] = p,
            ["pp_matrix_bytes"] = p * p * sizeof(float),
            ["group_matrix_bytes"] = setup.GroupPixels * setup.GroupPixels * sizeof(float),
            ["block_rows"] = setup.Implementation == ContrastiveImplementation.Blockwise ? ContrastiveKernel.ResolveBlockSize(0, setup.GroupPixels) : null,
            ["loss"] = Math.Round(value, 6),
            ["threads"] = status.Threads,
            ["mkldnn"] = status.MkldnnEnabled,
            ["mmap_threshold"] = status.MmapThreshold,
            ["times_s"] = Measure.ToJson(times),
            ["median_s"] = Math.Round(Measure.Median(times), 6),
        };
        if (mode == "mem")
        {
            result["peak_extra_bytes"] = Measure.ToJson(peaks);
            result["median_peak_extra_bytes"] = Measure.Median(peaks);
            result["max_peak_extra_bytes"] = peaks.Max();
            result["median_forward_peak_extra_bytes"] = Measure.Median(forwardPeaks);
            result["median_backward_peak_extra_bytes"] = Measure.Median(backwardPeaks);
        }
        return result;
    }

    /// <summary>Fresh leaves per step (views of the same storage), so no gradient accumulates across steps.</summary>
    private static (Tensor x1, Tensor? x2) Leaves(Inputs inputs) =>
        (inputs.x1.detach().requires_grad_(true), inputs.x2?.detach().requires_grad_(true));

    private static Inputs MakeInputs(LossSetup setup, long seed)
    {
        manual_seed(seed);
        var shape = new long[] { setup.Batch, LossSetup.Channels, setup.Side, setup.Side };
        var labelShape = new long[] { setup.Batch, setup.Side, setup.Side };
        Tensor Embeddings() => nn.functional.normalize(randn(shape), dim: 1);
        var x1 = Embeddings();
        var y1 = randint(0, LossSetup.Classes, labelShape);
        if (setup.Views < 2 && setup.Variant != ContrastiveVariant.CrossImage) return new(x1, y1, null, null);
        return new(x1, y1, Embeddings(), randint(0, LossSetup.Classes, labelShape));
    }

    /// <summary>
    /// The pixel group the loss would hand to the kernel, built outside the measurement: [N, D] embeddings in
    /// x1, labels in y1, the view index per pixel (cross-image) in y2.
    /// </summary>
    private static Inputs KernelGroup(LossSetup setup, Inputs images)
    {
        if (setup.Batch != 1 && setup.Variant != ContrastiveVariant.Batch)
            throw new ArgumentException("scope=kernel takes one image (pair) for the within-image and cross-image variants");
        Tensor Flat(Tensor x) => x.flatten(2).transpose(1, 2).reshape(-1, x.shape[1]); // [B*P, D]
        switch (setup.Variant)
        {
            case ContrastiveVariant.CrossImage:
                var p = setup.Side * setup.Side;
                return new(cat(new[] { Flat(images.x1), Flat(images.x2!) }).contiguous(),
                    cat(new[] { images.y1[0].flatten(), images.y2![0].flatten() }),
                    null, cat(new[] { zeros(p, ScalarType.Int64), ones(p, ScalarType.Int64) }));
            case ContrastiveVariant.Batch:
                var all = images.x2 is null ? Flat(images.x1) : cat(new[] { Flat(images.x1), Flat(images.x2) });
                var labels = images.y2 is null ? images.y1.flatten() : cat(new[] { images.y1.flatten(), images.y2.flatten() });
                var pick = randperm(all.shape[0]).narrow(0, 0, Math.Min(LossSetup.BatchSample, all.shape[0]));
                return new(all.index_select(0, pick).contiguous(), labels.index_select(0, pick), null, null);
            default:
                return new(Flat(images.x1).contiguous(), images.y1[0].flatten(), null, null);
        }
    }
}
