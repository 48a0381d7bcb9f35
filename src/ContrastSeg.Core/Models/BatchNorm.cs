using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>
/// BatchNorm over [B, C, H, W] with PyTorch's parameter and buffer names (<c>weight</c>, <c>bias</c>,
/// <c>running_mean</c>, <c>running_var</c>, <c>num_batches_tracked</c>), so torchvision state dicts map 1:1.
/// </summary>
/// <remarks>
/// Used instead of TorchSharp's <c>BatchNorm2d</c>, whose training forward calls
/// <c>num_batches_tracked.add_(1)</c> with two temporary <c>Scalar</c>s: reachable only through their
/// handles while libtorch runs, the finalizer can free them mid-call and libtorch reads a reused handle
/// ("For integral input tensors, argument alpha must not be a floating point number", seen after ~450
/// steps). Here the increment uses the process-wide <see cref="Scalars.OneInt"/>.
/// </remarks>
public sealed class BatchNorm2d : nn.Module<Tensor, Tensor>
{
    private readonly double _eps;
    private readonly double _momentum;

    /// <summary>A BatchNorm with <paramref name="features"/> channels (PyTorch defaults: eps 1e-5, momentum 0.1).</summary>
    public BatchNorm2d(long features, double eps = 1e-5, double momentum = 0.1) : base(nameof(BatchNorm2d))
    {
        if (features < 1) throw new ArgumentException($"BatchNorm needs at least one channel, got {features}.", nameof(features));
        Features = features;
        _eps = eps;
        _momentum = momentum;
        // Detached: a model built inside a caller's dispose scope must outlive it.
        // Made on the CPU like TorchSharp's own layers: a model is built (and seeded) on the CPU, so its initial weights
        // are the same on every device, and moves as a whole (Module.to) before it trains.
        register_parameter("weight", (Parameter)nn.Parameter(ones(features, device: CPU).DetachFromDisposeScope()).DetachFromDisposeScope());
        register_parameter("bias", (Parameter)nn.Parameter(zeros(features, device: CPU).DetachFromDisposeScope()).DetachFromDisposeScope());
        register_buffer("running_mean", zeros(features, device: CPU).DetachFromDisposeScope());
        register_buffer("running_var", ones(features, device: CPU).DetachFromDisposeScope());
        register_buffer("num_batches_tracked", zeros(Array.Empty<long>(), ScalarType.Int64, device: CPU).DetachFromDisposeScope());
    }

    /// <summary>Number of channels.</summary>
    public long Features { get; }

    /// <summary>Scale (gamma).</summary>
    public Parameter weight => get_parameter("weight")!;

    /// <summary>Shift (beta).</summary>
    public Parameter bias => get_parameter("bias")!;

    /// <summary>Running mean used in eval mode.</summary>
    public Tensor running_mean => get_buffer("running_mean")!;

    /// <summary>Running variance used in eval mode.</summary>
    public Tensor running_var => get_buffer("running_var")!;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 4 || input.shape[1] != Features)
            throw new ArgumentException($"BatchNorm2d({Features}) expects [B, {Features}, H, W], got [{string.Join(", ", input.shape)}].", nameof(input));
        if (training)
        {
            using var noGrad = no_grad();
            get_buffer("num_batches_tracked")!.add_(Scalars.OneInt, Scalars.OneInt);
        }
        return nn.functional.batch_norm(input, running_mean, running_var, weight, bias, training, _momentum, _eps);
    }
}
