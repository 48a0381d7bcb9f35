using Xunit;

namespace ContrastSeg.Tests.Models;

/// <summary>
/// The model tests run one after another: the machine has 2 cores and libtorch already uses both, so running
/// classes in parallel only makes every test slower.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ModelsCollection
{
    public const string Name = "Models";
}
