using ContrastSeg.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ContrastSeg.Models;

/// <summary>Configuration of the pixel-wise contrastive <see cref="ProjectionHead"/>.</summary>
/// <param name="Layers">Number of 1x1 convolutions (at least 1).</param>
/// <param name="Channels">Channels of every layer, i.e. the embedding dimension.</param>
/// <param name="BatchNorm">Whether a BatchNorm precedes each hidden ReLU.</param>
public sealed record ProjectionHeadOptions(int Layers = 3, int Channels = 256, bool BatchNorm = false)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the offending field.</summary>
    public void Validate()
    {
        if (Layers < 1)
            throw new ArgumentException($"ProjectionHeadOptions.Layers = {Layers} must be at least 1 (one 1x1 convolution).", nameof(Layers));
        if (Channels < 1)
            throw new ArgumentException($"ProjectionHeadOptions.Channels = {Channels} must be at least 1.", nameof(Channels));
    }
}

/// <summary>
/// Per-pixel projection head for contrastive pretraining (Zhao et al., ICCV 2021): <c>Layers</c> 1x1
/// convolutions with [BatchNorm] + ReLU between them and no activation after the last, followed by L2
/// normalisation over the channel dimension, so every pixel embedding has unit norm.
/// </summary>
public sealed class ProjectionHead : nn.Module<Tensor, Tensor>
{
    private readonly Sequential head;

    /// <summary>Builds the head (PyTorch's default Conv2d initialisation).</summary>
    /// <param name="inChannels">Channels of the decoder features.</param>
    /// <param name="options">Depth, width and normalisation; null = defaults (3 x 256, no BatchNorm).</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public ProjectionHead(int inChannels, ProjectionHeadOptions? options = null) : base(nameof(ProjectionHead))
    {
        TorchRuntime.EnsureInitialized();
        Options = options ?? new ProjectionHeadOptions();
        Options.Validate();
        if (inChannels < 1) throw new ArgumentException($"ProjectionHead inChannels = {inChannels} must be at least 1.", nameof(inChannels));

        var layers = new List<nn.Module<Tensor, Tensor>>();
        long width = inChannels;
        for (var i = 0; i < Options.Layers; i++)
        {
            var last = i == Options.Layers - 1;
            // A bias right before BatchNorm is cancelled by its mean subtraction.
            layers.Add(nn.Conv2d(width, Options.Channels, 1, bias: last || !Options.BatchNorm));
            width = Options.Channels;
            if (last) break;
            if (Options.BatchNorm) layers.Add(new BatchNorm2d(Options.Channels));
            layers.Add(nn.ReLU());
        }
        head = nn.Sequential(layers);
        RegisterComponents();
    }

    /// <summary>The options the head was built with.</summary>
    public ProjectionHeadOptions Options { get; }

    /// <summary>Embedding dimension.</summary>
    public int Channels => Options.Channels;

    /// <summary>Projects [B, C, h, w] features to unit-norm embeddings [B, Channels, h, w] (eps 1e-12).</summary>
    public override Tensor forward(Tensor features)
    {
        using var scope = NewDisposeScope();
        var z = head.call(features);
        return nn.functional.normalize(z, p: 2, dim: 1, eps: 1e-12).MoveToOuterDisposeScope();
    }
}
