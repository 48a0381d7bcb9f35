using TorchSharp;

namespace ContrastSeg.Runtime;

/// <summary>
/// Scalars that live for the whole process. TorchSharp 0.107 builds a temporary <see cref="Scalar"/> for
/// implicit arguments (e.g. the alpha of <c>a + b</c>) and passes only its handle to libtorch, so the
/// finalizer can free it during the native call; holding these in static fields keeps them alive.
/// </summary>
internal static class Scalars
{
    public static readonly Scalar One = 1.0;
}
