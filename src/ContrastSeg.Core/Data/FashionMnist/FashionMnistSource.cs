namespace ContrastSeg.Data;

/// <summary>Where a <see cref="FashionMnistSource"/> found its files.</summary>
public enum FashionMnistSourceKind
{
    /// <summary>A folder passed by the caller.</summary>
    Folder,

    /// <summary>The folder named by the <c>CONTRASTSEG_FASHION_MNIST</c> environment variable.</summary>
    Environment,

    /// <summary>The full set of the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).</summary>
    System,

    /// <summary>The class-balanced subset committed in the repository (data/fashion-mnist-subset).</summary>
    Embedded,
}

/// <summary>
/// The Fashion-MNIST files (train and t10k, images and labels, gzip or raw IDX) in one folder.
/// <see cref="Open"/> picks the folder: the caller's, else <c>CONTRASTSEG_FASHION_MNIST</c>, else the
/// full Debian set when installed, else the subset committed in the repository. Record
/// <see cref="Description"/> with results: scenes differ between the full set and the subset.
/// Items are read once, lazily, thread-safely.
/// </summary>
public sealed class FashionMnistSource
{
    /// <summary>Environment variable naming a Fashion-MNIST folder.</summary>
    public const string EnvironmentVariable = "CONTRASTSEG_FASHION_MNIST";

    /// <summary>Where the Debian package dataset-fashion-mnist installs the full set.</summary>
    public const string SystemFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>The subset's folder relative to the repository root.</summary>
    public const string EmbeddedRelativeFolder = "data/fashion-mnist-subset";

    private readonly Lazy<FashionMnistItems> _train;
    private readonly Lazy<FashionMnistItems> _test;

    private FashionMnistSource(string folder, FashionMnistSourceKind kind)
    {
        Folder = Path.GetFullPath(folder);
        Kind = kind;
        _train = new(() => Load("train"), LazyThreadSafetyMode.ExecutionAndPublication);
        _test = new(() => Load("t10k"), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The folder holding the four files.</summary>
    public string Folder { get; }

    /// <summary>How the folder was chosen.</summary>
    public FashionMnistSourceKind Kind { get; }

    /// <summary>A one-line description for result files, e.g. "system:/usr/share/datasets/fashion-mnist".</summary>
    public string Description => $"{Kind.ToString().ToLowerInvariant()}:{Folder}";

    /// <summary>The training items (60,000 in the full set).</summary>
    public FashionMnistItems Train => _train.Value;

    /// <summary>The test items (10,000 in the full set).</summary>
    public FashionMnistItems Test => _test.Value;

    /// <summary>
    /// Opens <paramref name="folder"/> when given, else the folder in <c>CONTRASTSEG_FASHION_MNIST</c>,
    /// else <see cref="SystemFolder"/> when its files exist, else the repository's subset.
    /// </summary>
    /// <exception cref="DatasetException">The chosen folder lacks a file, or no source exists at all.</exception>
    public static FashionMnistSource Open(string? folder = null)
    {
        if (!string.IsNullOrWhiteSpace(folder)) return Checked(folder, FashionMnistSourceKind.Folder);
        var env = System.Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return Checked(env, FashionMnistSourceKind.Environment);
        if (HasAllFiles(SystemFolder)) return new FashionMnistSource(SystemFolder, FashionMnistSourceKind.System);
        return OpenEmbedded();
    }

    /// <summary>Opens the subset committed in the repository, whatever else is installed (reproducible everywhere).</summary>
    /// <exception cref="DatasetException">The repository's data folder is not found above the application or working directory.</exception>
    public static FashionMnistSource OpenEmbedded()
    {
        var found = FindEmbeddedFolder()
            ?? throw new DatasetException(
                $"no Fashion-MNIST found: not in {SystemFolder} (Debian package dataset-fashion-mnist), " +
                $"{EnvironmentVariable} is not set, no '{EmbeddedRelativeFolder}' folder lies above " +
                $"'{AppContext.BaseDirectory}' or '{Directory.GetCurrentDirectory()}', and the kit's package has no '{PackagedRelativeFolder}' " +
                $"(the kit was loaded from '{typeof(FashionMnistSource).Assembly.Location}').");
        return Checked(found, FashionMnistSourceKind.Embedded);
    }

    /// <summary>
    /// The subset's folder: found by walking up from <see cref="AppContext.BaseDirectory"/> (a program that references the
    /// ContrastSeg.Core package has a copy in its output folder; the repository's lies above its builds), then from the
    /// working directory (<c>dotnet fsi</c> scripts in the repository), then in the package the kit was loaded from
    /// (scripts with <c>#r "nuget: ContrastSeg.Core"</c>: <c>contentFiles/any/any/data/fashion-mnist-subset</c> in the
    /// NuGet cache); null when absent.
    /// </summary>
    public static string? FindEmbeddedFolder() => FindEmbeddedFolder(typeof(FashionMnistSource).Assembly.Location);

    /// <summary>As <see cref="FindEmbeddedFolder()"/>, for the kit's assembly at <paramref name="kitAssembly"/> (tests use a fake package).</summary>
    internal static string? FindEmbeddedFolder(string? kitAssembly)
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, EmbeddedRelativeFolder);
                if (HasAllFiles(candidate)) return candidate;
            }
        }
        var lib = string.IsNullOrEmpty(kitAssembly) ? null : Path.GetDirectoryName(kitAssembly); // <package>/lib/net10.0
        if (lib is null) return null;
        var packaged = Path.GetFullPath(Path.Combine(lib, "..", "..", PackagedRelativeFolder));
        return HasAllFiles(packaged) ? packaged : null;
    }

    /// <summary>Where the ContrastSeg.Core package holds the subset, relative to the package's root.</summary>
    public const string PackagedRelativeFolder = "contentFiles/any/any/" + EmbeddedRelativeFolder;

    /// <summary>The path of a split's file in <paramref name="folder"/> (".gz" or raw), or null when neither exists.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="baseName">e.g. "train-images-idx3-ubyte".</param>
    public static string? FindFile(string folder, string baseName)
    {
        foreach (var name in new[] { baseName + ".gz", baseName })
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    private static readonly string[] BaseNames =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    private static bool HasAllFiles(string folder) => Directory.Exists(folder) && BaseNames.All(n => FindFile(folder, n) is not null);

    private static FashionMnistSource Checked(string folder, FashionMnistSourceKind kind)
    {
        if (!Directory.Exists(folder)) throw new DatasetException("Fashion-MNIST folder not found.", folder);
        var missing = BaseNames.Where(n => FindFile(folder, n) is null).ToList();
        if (missing.Count > 0)
            throw new DatasetException($"Fashion-MNIST folder lacks {string.Join(", ", missing.Select(m => m + "[.gz]"))}.", folder);
        return new FashionMnistSource(folder, kind);
    }

    private FashionMnistItems Load(string split)
    {
        var images = Idx.ReadImages(FindFile(Folder, $"{split}-images-idx3-ubyte")!);
        var labels = Idx.ReadLabels(FindFile(Folder, $"{split}-labels-idx1-ubyte")!);
        return new FashionMnistItems(images, labels, Folder);
    }
}
