using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Training;

/// <summary>
/// Stochastic gradient descent with momentum and weight decay: torch.optim.SGD's update (and TorchSharp's), per
/// parameter p with gradient g:
/// <code>
/// g = g + weight_decay * p
/// b = g (first step), else b = momentum * b + (1 - dampening) * g
/// g = g + momentum * b (Nesterov), else g = b
/// p = p - lr * g
/// </code>
/// Unlike TorchSharp's SGD, which makes a temporary Scalar for each of those factors on every parameter at every
/// step (the use-after-free of <see cref="Scalars"/>), the factors are Scalars held for the optimiser's lifetime and
/// the learning rate is one Scalar per step, freed after the step. The state (momentum buffers) is saved in
/// TorchSharp's SGD format, so checkpoints written before this class load, and the other way round. Momentum buffers
/// live on their parameter's device (made from its gradient, moved there on load); the file holds CPU copies.
/// </summary>
public sealed class SgdOptimizer : IDisposable
{
    // The name TorchSharp's SGD writes first into its state file (checked on load).
    private const string FormatName = "SGD";

    private readonly Parameter[] _parameters;
    private readonly Tensor?[] _buffers;
    private readonly HeldScalars _held = new();
    private readonly Scalar _momentum, _dampeningComplement, _weightDecay;
    private bool _disposed;

    /// <summary>An optimiser of <paramref name="parameters"/> (enumerated once, in order: the state file follows that order).</summary>
    /// <exception cref="ArgumentException">A negative or non-finite rate, momentum or weight decay, or Nesterov without momentum or with dampening.</exception>
    public SgdOptimizer(IEnumerable<Parameter> parameters, double learningRate, double momentum = 0, double weightDecay = 0,
        double dampening = 0, bool nesterov = false)
    {
        if (!(learningRate >= 0) || double.IsInfinity(learningRate)) throw new ArgumentException($"learning rate must be a finite number >= 0, got {learningRate}.", nameof(learningRate));
        if (!(momentum >= 0) || double.IsInfinity(momentum)) throw new ArgumentException($"momentum must be a finite number >= 0, got {momentum}.", nameof(momentum));
        if (!(weightDecay >= 0) || double.IsInfinity(weightDecay)) throw new ArgumentException($"weight decay must be a finite number >= 0, got {weightDecay}.", nameof(weightDecay));
        if (!double.IsFinite(dampening)) throw new ArgumentException($"dampening must be finite, got {dampening}.", nameof(dampening));
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException("Nesterov momentum needs a momentum above 0 and no dampening.", nameof(nesterov));
        _parameters = parameters.ToArray();
        _buffers = new Tensor?[_parameters.Length];
        LearningRate = InitialLearningRate = learningRate;
        (Momentum, WeightDecay, Dampening, Nesterov) = (momentum, weightDecay, dampening, nesterov);
        _momentum = _held.Of(momentum);
        _dampeningComplement = _held.Of(1 - dampening);
        _weightDecay = _held.Of(weightDecay);
    }

    /// <summary>The learning rate the next <see cref="Step"/> uses (the schedule sets it before each step).</summary>
    public double LearningRate { get; set; }

    /// <summary>The learning rate at construction (kept in the state file, as TorchSharp's SGD does).</summary>
    public double InitialLearningRate { get; private set; }

    /// <summary>Momentum factor.</summary>
    public double Momentum { get; }

    /// <summary>L2 penalty added to the gradient.</summary>
    public double WeightDecay { get; }

    /// <summary>Dampening of the momentum (0 in the kit).</summary>
    public double Dampening { get; }

    /// <summary>Nesterov momentum.</summary>
    public bool Nesterov { get; }

    /// <summary>The optimised parameters, in state-file order.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>The momentum buffer of parameter <paramref name="index"/> (null before its first step or without momentum).</summary>
    public Tensor? MomentumBuffer(int index) => _buffers[index];

    /// <summary>Sets every existing gradient to zero (in place, as TorchSharp's optimisers do).</summary>
    public void ZeroGrad()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (var p in _parameters)
        {
            using var grad = p.grad;
            grad?.zero_();
        }
    }

    /// <summary>One update of every parameter that has a gradient, at <see cref="LearningRate"/>.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var step = new HeldScalars();
        var alpha = step.Of(-LearningRate);
        for (var i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            var grad = p.grad;
            if (grad is null) continue;
            if (WeightDecay != 0) grad = grad.add(p, _weightDecay);
            if (Momentum != 0)
            {
                var buffer = _buffers[i];
                if (buffer is null) _buffers[i] = buffer = grad.clone().detach().DetachFromDisposeScope();
                else buffer.mul_(_momentum).add_(grad, _dampeningComplement);
                grad = Nesterov ? grad.add(buffer, _momentum) : buffer;
            }
            p.add_(grad, alpha);
        }
    }

    /// <summary>Writes the state (rates, settings, momentum buffers) to <paramref name="path"/> in TorchSharp's SGD format.</summary>
    public void Save(string path)
    {
        using var stream = File.Create(path);
        Save(stream);
    }

    /// <summary>Writes the state to <paramref name="stream"/> (left open), as <see cref="Save(string)"/> does.</summary>
    public void Save(Stream stream)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(FormatName);
        // TorchSharp writes the counts in LEB128, which is .NET's 7-bit encoding for non-negative values.
        writer.Write7BitEncodedInt64(1);                  // parameter groups
        writer.Write7BitEncodedInt64(_parameters.Length); // per-parameter states
        writer.Write(InitialLearningRate);
        writer.Write(LearningRate);
        writer.Write(Momentum);
        writer.Write(Dampening);
        writer.Write(WeightDecay);
        writer.Write(Nesterov);
        writer.Write(false);                // maximize
        foreach (var buffer in _buffers)
        {
            writer.Write(buffer is not null);
            buffer?.Save(writer); // dtype, shape, data
        }
    }

    /// <summary>
    /// Restores the state written by <see cref="Save(string)"/> (or by TorchSharp's SGD). Every mismatch names the file
    /// and what differs; the current state is kept unless the whole file reads.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not an SGD state of these parameters and settings, or is truncated.</exception>
    public void Load(string path)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var loaded = new Tensor?[_parameters.Length];
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream);
            var name = reader.ReadString();
            if (name != FormatName) throw Bad($"it holds the state of a '{name}' optimiser, not SGD");
            var groups = reader.Read7BitEncodedInt64();
            var states = reader.Read7BitEncodedInt64();
            if (groups != 1) throw Bad($"it holds {groups} parameter groups, this optimiser has 1");
            if (states != _parameters.Length) throw Bad($"it holds the state of {states} parameters, this optimiser has {_parameters.Length} (other model settings?)");
            var initial = reader.ReadDouble();
            var rate = reader.ReadDouble();
            Expect("momentum", reader.ReadDouble(), Momentum);
            Expect("dampening", reader.ReadDouble(), Dampening);
            Expect("weight decay", reader.ReadDouble(), WeightDecay);
            if (reader.ReadBoolean() != Nesterov) throw Bad($"it was written {(Nesterov ? "without" : "with")} Nesterov momentum");
            if (reader.ReadBoolean()) throw Bad("it was written by a maximising optimiser");
            for (var i = 0; i < loaded.Length; i++)
            {
                if (!reader.ReadBoolean()) continue;
                TensorExtensionMethods.Load(ref loaded[i], reader);
                var buffer = loaded[i]!.DetachFromDisposeScope();
                if (!buffer.shape.SequenceEqual(_parameters[i].shape) || buffer.dtype != _parameters[i].dtype)
                    throw Bad($"the momentum buffer of parameter {i} is {buffer.dtype} [{string.Join(", ", buffer.shape)}], " +
                              $"the parameter is {_parameters[i].dtype} [{string.Join(", ", _parameters[i].shape)}]");
                // Buffers are read onto the CPU (the file is device-independent); the update needs them where the parameter is.
                var p = _parameters[i];
                if (buffer.device_type != p.device_type || buffer.device_index != p.device_index)
                {
                    loaded[i] = buffer.to(p.device).DetachFromDisposeScope();
                    buffer.Dispose();
                }
            }
            if (stream.Position != stream.Length) throw Bad($"{stream.Length - stream.Position} bytes follow the state");
            (InitialLearningRate, LearningRate) = (initial, rate);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or FormatException or NotSupportedException or System.Runtime.InteropServices.ExternalException)
        {
            foreach (var t in loaded) t?.Dispose();
            throw Bad($"it is truncated or damaged ({e.Message.Split('\n')[0]})", e);
        }
        catch
        {
            foreach (var t in loaded) t?.Dispose();
            throw;
        }
        for (var i = 0; i < _buffers.Length; i++)
        {
            _buffers[i]?.Dispose();
            _buffers[i] = loaded[i];
        }

        InvalidDataException Bad(string why, Exception? inner = null) => new($"{path} cannot be restored into this optimiser: {why}.", inner);
        void Expect(string what, double found, double expected)
        {
            if (found != expected) throw Bad($"it was written with {what} {found}, this run uses {expected}");
        }
    }

    /// <summary>Frees the momentum buffers and the held Scalars.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var b in _buffers) b?.Dispose();
        Array.Clear(_buffers);
        _held.Dispose();
    }
}
