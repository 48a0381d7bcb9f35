using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>
/// The one home of TorchSharp <see cref="Scalar"/>s in the kit. TorchSharp 0.107 turns every number passed to
/// a tensor operation (<c>t * 0.5</c>, <c>t + 1</c>, <c>clamp_min(0)</c>, <c>fill_(v)</c>, <c>lt(0.5)</c>, the
/// alpha of <c>add_(x, alpha: a)</c>, and the implicit alpha 1 of <c>a + b</c>, <c>softplus()</c>, <c>square()</c>)
/// into a native Scalar that is reachable only through its handle while libtorch runs; a collection during the
/// native call lets the finalizer free it, and libtorch then reads freed memory ("alpha must not be a floating
/// point number", or a silently wrong value). The kit's code therefore never makes a temporary Scalar:
/// constants are the process-wide fields below, values known only at run time come from a
/// <see cref="HeldScalars"/> that the caller disposes after the native calls that read them.
/// <c>ScalarAuditTests</c> reads the compiled kit and fails on any other Scalar it would create.
/// </summary>
public static class Scalars
{
    /// <summary>Floating-point constants (for float tensors: alphas, fills, clamps).</summary>
    public static readonly Scalar Zero = 0.0, One = 1.0, MinusOne = -1.0, Two = 2.0, Half = 0.5, NegativeInfinity = double.NegativeInfinity;

    /// <summary>Integral constants: an int64 tensor rejects a floating-point alpha.</summary>
    public static readonly Scalar ZeroInt = 0L, OneInt = 1L;
}

/// <summary>
/// Scalars for values known only at run time (a learning rate, a temperature, an ignore label), kept alive
/// until <see cref="Dispose"/>: the list holds every one, so even a Scalar passed inline (<c>t.mul(held.Of(s))</c>)
/// outlives the native call. Create one per call or per step with <c>using</c>, or one per object for its lifetime.
/// Not thread-safe: one owner.
/// </summary>
public sealed class HeldScalars : IDisposable
{
    private readonly List<Scalar> _held = new();
    private bool _disposed;

    /// <summary>A floating-point Scalar held until disposal.</summary>
    public Scalar Of(double value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Hold(value.ToScalar());
    }

    /// <summary>An integral Scalar held until disposal (for int64 and bool tensors, and integer alphas).</summary>
    public Scalar Of(long value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Hold(value.ToScalar());
    }

    private Scalar Hold(Scalar s)
    {
        _held.Add(s);
        return s;
    }

    /// <summary>Frees every Scalar made here (after the last native call that reads them).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _held) s.Dispose();
        _held.Clear();
    }
}
