using System.Text.Json.Nodes;
using ContrastSeg.Losses;
using ContrastSeg.Models;
using ContrastSeg.Runtime;
using ContrastSeg.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Bench;

/// <summary>
/// The child-process side of a training-step case: one supervised DeepLabV3+ step (forward, pixel-wise
/// cross-entropy on logits upsampled to the input size, backward, SGD with momentum), timed per phase,
/// against the fp32 matmul rate measured in the same process.
/// </summary>
internal static class TrainCase
{
    public const int MatmulSize = 2048;

    public static JsonObject Run(IReadOnlyDictionary<string, string> spec)
    {
        var preset = spec["model"];
        var size = int.Parse(spec["size"]);
        var batch = int.Parse(spec["batch"]);
        var reps = int.Parse(spec["reps"]);
        var channelsLast = spec.GetValueOrDefault("channels_last") == "1";
        var status = TorchRuntime.EnsureInitialized();

        var roof = MatmulGflops(reps: 9);

        var options = preset == "paper" ? SegmentationModelOptions.Paper(21) : SegmentationModelOptions.CpuSmall(11);
        manual_seed(0);
        using var model = new DeepLabV3Plus(options);
        model.train();
        var images = randn(batch, 3, size, size);
        var labels = randint(0, options.NumClasses, new long[] { batch, size, size });
        if (channelsLast)
        {
            ToChannelsLast(model);
            images = ChannelsLast(images);
        }

        var (convs, forwardFlops, firstConvFlops) = CountConvFlops(model, images);
        // Backward: weight gradient + input gradient, each as costly as the forward; the first
        // convolution's input (the images) needs no gradient.
        var backwardFlops = 2 * forwardFlops - firstConvFlops;
        var stepFlops = forwardFlops + backwardFlops;

        var parameters = model.ParametersExceptProjection().ToList();
        using var optimizer = new SgdOptimizer(parameters, learningRate: 0.007, momentum: 0.9, weightDecay: 4e-5); // the kit's optimiser: what training steps run
        var warmup = int.Parse(spec.GetValueOrDefault("warmup") ?? "2");
        // data=...: the batches come from the preset's training loader (worker threads running alongside the step),
        // and the step's time includes waiting for the next batch.
        using var feed = spec.ContainsKey("data") ? new LoaderFeed(spec) : null;
        if (feed is not null && feed.Description is { } fed && !fed.Contains($"batch {batch}"))
            throw new ArgumentException($"the loader's batches ({fed}) do not match batch={batch}");
        var fwd = new List<double>();
        var bwd = new List<double>();
        var opt = new List<double>();
        var dat = new List<double>();
        var total = new List<double>();
        double lossValue = double.NaN;
        for (var i = 0; i < warmup + reps; i++)
        {
            using var scope = NewDisposeScope();
            Tensor? loss = null;
            var (x, y) = (images, labels);
            var td = feed is null ? 0 : Measure.Time(() => (x, y) = feed.Next());
            var tf = Measure.Time(() =>
            {
                var logits = model.forward(x);
                loss = SegmentationCrossEntropy.Compute(logits, y);
            });
            var tb = Measure.Time(() => loss!.backward());
            var to = Measure.Time(() =>
            {
                optimizer.Step();
                optimizer.ZeroGrad();
            });
            lossValue = loss!.item<float>();
            if (i < warmup) continue;
            fwd.Add(tf);
            bwd.Add(tb);
            opt.Add(to);
            dat.Add(td);
            total.Add(td + tf + tb + to);
        }

        var step = Measure.Median(total);
        var achieved = stepFlops / step / 1e9;
        return new JsonObject
        {
            ["model"] = preset,
            ["size"] = size,
            ["batch"] = batch,
            ["channels_last"] = channelsLast,
            ["threads"] = status.Threads,
            ["mkldnn"] = status.MkldnnEnabled,
            ["mkldnn_reason"] = status.MkldnnReason,
            ["matmul_gflops"] = Math.Round(roof.Median, 2),
            ["matmul_gflops_samples"] = Measure.ToJson(roof.Samples),
            ["conv_layers"] = convs.Count,
            ["forward_gflop"] = Math.Round(forwardFlops / 1e9, 3),
            ["backward_gflop"] = Math.Round(backwardFlops / 1e9, 3),
            ["step_gflop"] = Math.Round(stepFlops / 1e9, 3),
            ["forward_gflop_by_part"] = ByPart(convs),
            ["forward_s"] = Math.Round(Measure.Median(fwd), 4),
            ["backward_s"] = Math.Round(Measure.Median(bwd), 4),
            ["optimizer_s"] = Math.Round(Measure.Median(opt), 4),
            ["data_s"] = feed is null ? null : Math.Round(Measure.Median(dat), 4),
            ["loader"] = feed?.Description,
            ["loader_workers"] = feed?.Workers,
            ["step_s"] = Math.Round(step, 4),
            ["step_samples_s"] = Measure.ToJson(total),
            ["forward_gflops"] = Math.Round(forwardFlops / Measure.Median(fwd) / 1e9, 2),
            ["backward_gflops"] = Math.Round(backwardFlops / Measure.Median(bwd) / 1e9, 2),
            ["step_gflops"] = Math.Round(achieved, 2),
            ["roof_fraction"] = Math.Round(achieved / roof.Median, 4),
            ["loss"] = Math.Round(lossValue, 4),
            ["parameters"] = parameters.Sum(p => p.numel()),
        };
    }

    /// <summary>Batches of a preset's training loader, one after the other (the loader's tensors are the step's inputs).</summary>
    private sealed class LoaderFeed : IDisposable
    {
        private readonly DirectoryInfo _scratch = Directory.CreateTempSubdirectory("contrastseg-bench-feed-");
        private readonly IEnumerator<ContrastSeg.Data.Batch> _batches;
        private ContrastSeg.Data.Batch? _current;

        public LoaderFeed(IReadOnlyDictionary<string, string> spec)
        {
            var setup = LoaderSetup.FromSpec(spec, _scratch.FullName);
            Description = setup.Description;
            var loader = new ContrastSeg.Data.SegmentationLoader(setup.Dataset, setup.Pipeline, setup.Options, setup.Indices);
            Workers = loader.Workers;
            _batches = loader.Steps(0).GetEnumerator();
        }

        public string Description { get; }

        public int Workers { get; }

        /// <summary>The next batch's images and labels (the previous batch is released).</summary>
        public (Tensor Images, Tensor Labels) Next()
        {
            _current?.Dispose();
            if (!_batches.MoveNext()) throw new InvalidOperationException("the loader ended");
            _current = _batches.Current;
            return (_current.Images, _current.Labels);
        }

        public void Dispose()
        {
            _current?.Dispose();
            _batches.Dispose();
            _scratch.Delete(recursive: true);
        }
    }

    /// <summary>GFLOP/s of a 2048 x 2048 fp32 torch.mm, median of <paramref name="reps"/> after a warm-up.</summary>
    public static (double Median, List<double> Samples) MatmulGflops(int reps)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var a = randn(MatmulSize, MatmulSize);
        var b = randn(MatmulSize, MatmulSize);
        for (var i = 0; i < 2; i++) a.mm(b).Dispose();
        var flops = 2.0 * MatmulSize * MatmulSize * MatmulSize;
        var samples = new List<double>();
        for (var i = 0; i < reps; i++)
        {
            var t = Measure.Time(() => a.mm(b).Dispose());
            samples.Add(flops / t / 1e9);
        }
        return (Measure.Median(samples), samples);
    }

    /// <summary>
    /// Forward FLOPs of every Conv2d (2 * Cout * Cin/groups * kh * kw * Hout * Wout * B) recorded by forward
    /// hooks during one no-grad forward; also the first convolution's share (it needs no input gradient).
    /// </summary>
    private static (List<(string Name, double Flops)> Convs, double Forward, double FirstConv) CountConvFlops(DeepLabV3Plus model, Tensor images)
    {
        var names = model.named_modules().ToDictionary(m => (object)m.module, m => m.name, ReferenceEqualityComparer.Instance);
        var convs = new List<(string Name, double Flops)>();
        var removers = new List<Action>();
        foreach (var (_, module) in model.named_modules())
        {
            if (module is not Conv2d conv) continue;
            var remover = conv.register_forward_hook((m, input, output) =>
            {
                var c = (Conv2d)m;
                // weight: [Cout, Cin/groups, kh, kw]; output: [B, Cout, Hout, Wout]
                var macsPerOutputPixel = (double)c.weight!.numel() / c.out_channels;
                convs.Add((names[m], 2.0 * macsPerOutputPixel * output.numel()));
                return output;
            });
            removers.Add(() => remover.remove());
        }
        using (no_grad())
        using (NewDisposeScope())
        {
            model.eval();
            model.forward(images);
            model.train();
        }
        foreach (var remove in removers) remove();
        var forward = convs.Sum(c => c.Flops);
        return (convs, forward, convs.Count > 0 ? convs[0].Flops : 0);
    }

    private static JsonObject ByPart(List<(string Name, double Flops)> convs)
    {
        var parts = new JsonObject();
        foreach (var group in convs.GroupBy(c => PartName(c.Name)))
            parts[group.Key] = Math.Round(group.Sum(c => c.Flops) / 1e9, 3);
        return parts;
    }

    private static string PartName(string name)
    {
        var parts = name.Split('.');
        return parts[0] == "backbone" && parts.Length > 1 && parts[1].StartsWith("layer", StringComparison.Ordinal) ? $"backbone.{parts[1]}" : parts[0] == "backbone" ? "backbone.stem" : parts[0];
    }

    /// <summary>
    /// NCHW-shaped tensor with NHWC strides (PyTorch's channels_last). TorchSharp 0.107 has no
    /// memory_format argument, but libtorch infers the format from the strides.
    /// </summary>
    private static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    private static void ToChannelsLast(nn.Module model)
    {
        using var _ = no_grad();
        foreach (var p in model.parameters())
            if (p.dim() == 4) p.set_(ChannelsLast(p));
    }
}
