using System.Diagnostics.Tracing;
using TorchSharp;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Support;

/// <summary>
/// Garbage collections and finalizers forced continuously on a background thread (what makes a temporary Scalar's
/// finalizer run while libtorch may still read it), and a count of the Scalars and tensors whose finalizer ran
/// meanwhile. A finalized Scalar is one that was never disposed: a temporary, the precondition of the
/// use-after-free. The count comes from the runtime's FinalizeObject events, so it does not depend on the race
/// actually hitting a native call.
/// </summary>
public sealed class GcStress : IDisposable
{
    private readonly FinalizerCounter _counter = new();
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _collections;
    private readonly long _scalarsBefore, _tensorsBefore;

    /// <summary>Flushes earlier garbage, then starts collecting.</summary>
    public GcStress()
    {
        _counter.Flush();
        (_scalarsBefore, _tensorsBefore) = (_counter.Scalars, _counter.Tensors);
        _thread = new Thread(Collect) { IsBackground = true, Name = "gc-stress" };
        _thread.Start();
    }

    private void Collect()
    {
        while (!_stop)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Interlocked.Increment(ref _collections);
        }
    }

    /// <summary>Collections forced so far.</summary>
    public long Collections => Interlocked.Read(ref _collections);

    /// <summary>Stops the thread, collects what is left and waits until every finalizer event is counted.</summary>
    public (long ScalarsFinalized, long TensorsFinalized) Stop()
    {
        _stop = true;
        _thread.Join();
        _counter.Flush();
        return (_counter.Scalars - _scalarsBefore, _counter.Tensors - _tensorsBefore);
    }

    public void Dispose()
    {
        if (!_stop) Stop();
        _counter.Dispose();
    }

    private sealed class Marker
    {
        ~Marker() { }
    }

    /// <summary>Counts FinalizeObject events (runtime provider, GC keyword, verbose) by method table.</summary>
    private sealed class FinalizerCounter : EventListener
    {
        private static readonly IntPtr ScalarType = typeof(Scalar).TypeHandle.Value;
        private static readonly IntPtr TensorType = typeof(Tensor).TypeHandle.Value;
        private static readonly IntPtr ParameterType = typeof(TorchSharp.Modules.Parameter).TypeHandle.Value;
        private static readonly IntPtr MarkerType = typeof(Marker).TypeHandle.Value;
        private long _scalars, _tensors, _markers;

        public long Scalars => Interlocked.Read(ref _scalars);
        public long Tensors => Interlocked.Read(ref _tensors);

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventName != "FinalizeObject" || e.Payload is not { Count: > 0 } payload || payload[0] is not IntPtr type) return;
            if (type == ScalarType) Interlocked.Increment(ref _scalars);
            else if (type == TensorType || type == ParameterType) Interlocked.Increment(ref _tensors);
            else if (type == MarkerType) Interlocked.Increment(ref _markers);
        }

        /// <summary>
        /// Finalizes all garbage, then a marker, and waits until the marker's event is counted: the finalizer thread
        /// writes its events in order, and the marker is made only after every earlier finalizer has run (finalizers
        /// of one collection run in no set order, so a marker collected with them could be reported first).
        /// </summary>
        public void Flush()
        {
            var seen = Interlocked.Read(ref _markers);
            CollectAll();
            MakeMarker();
            CollectAll();
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (Interlocked.Read(ref _markers) == seen)
            {
                if (waited.Elapsed > TimeSpan.FromSeconds(60))
                    throw new InvalidOperationException("the runtime's FinalizeObject events did not arrive: the finalizer count cannot be trusted");
                Thread.Sleep(20);
            }
        }

        private static void CollectAll()
        {
            for (var i = 0; i < 2; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void MakeMarker() => _ = new Marker();
    }
}
