using static TorchSharp.torch;

namespace ContrastSeg.Data;

/// <summary>
/// One mini-batch: normalised float32 images [B, 3, H, W] and int64 labels [B, H, W] (255 = ignore),
/// and, for the cross-image contrastive loss, an independently distorted second view of the same
/// images. The batch owns its tensors: dispose it (or let a dispose scope take them).
/// </summary>
public sealed class Batch : IDisposable
{
    /// <summary>Creates a batch; <paramref name="images2"/> and <paramref name="labels2"/> go together.</summary>
    public Batch(IReadOnlyList<string> ids, Tensor images, Tensor labels, Tensor? images2 = null, Tensor? labels2 = null)
    {
        if ((images2 is null) != (labels2 is null)) throw new ArgumentException("A second view needs both images and labels.");
        Ids = ids;
        Images = images;
        Labels = labels;
        Images2 = images2;
        Labels2 = labels2;
    }

    /// <summary>Sample ids, in batch order.</summary>
    public IReadOnlyList<string> Ids { get; }

    /// <summary>[B, 3, H, W] float32, normalised.</summary>
    public Tensor Images { get; }

    /// <summary>[B, H, W] int64 labels.</summary>
    public Tensor Labels { get; }

    /// <summary>Second view's images, or null.</summary>
    public Tensor? Images2 { get; }

    /// <summary>Second view's labels, or null.</summary>
    public Tensor? Labels2 { get; }

    /// <summary>
    /// The batch on <paramref name="device"/>: new tensors this batch does not own (dispose both). The copies are
    /// non-blocking where libtorch can overlap them (a host-to-GPU copy from pinned memory; from the loader's ordinary
    /// host memory CUDA copies synchronously, so the source may be disposed right after); on the batch's own device they are new handles of the same memory.
    /// </summary>
    public Batch To(Device device)
    {
        Tensor Move(Tensor t) => t.to(device, non_blocking: true);
        return new Batch(Ids, Move(Images), Move(Labels), Images2 is null ? null : Move(Images2), Labels2 is null ? null : Move(Labels2));
    }

    /// <summary>Number of samples.</summary>
    public int Count => Ids.Count;

    /// <summary>Releases the tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
        Images2?.Dispose();
        Labels2?.Dispose();
    }
}
