using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ContrastSeg.Data;

/// <summary>
/// Draws the class-balanced Fashion-MNIST subset that the repository ships in
/// <c>data/fashion-mnist-subset</c>, so that scenes work where the full set is not installed.
/// Rule: for each class, the items whose key SplitMix64-mix(seed, split, index) is smallest
/// (see <see cref="Key"/>), written in their original order; the chosen original indices are
/// listed in <c>train-indices.txt</c> / <c>t10k-indices.txt</c>.
/// </summary>
public static class FashionMnistSubset
{
    /// <summary>Seed of the committed subset.</summary>
    public const long DefaultSeed = 20211010;

    /// <summary>Training items per class in the committed subset.</summary>
    public const int DefaultTrainPerClass = 600;

    /// <summary>Test items per class in the committed subset.</summary>
    public const int DefaultTestPerClass = 200;

    /// <summary>The selection key of item <paramref name="index"/> of a split (0 = train, 1 = t10k).</summary>
    public static ulong Key(long seed, int split, int index) => SeedHash.Mix(seed, split, index);

    /// <summary>The chosen original indices of one split, ascending.</summary>
    public static int[] Select(FashionMnistItems items, int perClass, long seed, int split)
    {
        ArgumentNullException.ThrowIfNull(items);
        var chosen = new List<int>();
        for (var c = 0; c < FashionMnistItems.ClassNames.Count; c++)
        {
            var pool = items.IndicesOfClass(c);
            if (pool.Count < perClass)
                throw new DatasetException($"class {c} has {pool.Count} items, fewer than the {perClass} asked for.", items.Origin);
            chosen.AddRange(pool.OrderBy(i => Key(seed, split, i)).ThenBy(i => i).Take(perClass));
        }
        chosen.Sort();
        return chosen.ToArray();
    }

    /// <summary>
    /// Writes the subset of the full set in <paramref name="sourceFolder"/> to <paramref name="outputFolder"/>:
    /// four gzip IDX files, the index lists, README.md and LICENSE. Returns the files written.
    /// </summary>
    public static IReadOnlyList<string> Write(string sourceFolder, string outputFolder,
        int trainPerClass = DefaultTrainPerClass, int testPerClass = DefaultTestPerClass, long seed = DefaultSeed)
    {
        var source = FashionMnistSource.Open(sourceFolder);
        Directory.CreateDirectory(outputFolder);
        var written = new List<string>();
        var counts = new Dictionary<string, int>();
        foreach (var (split, name, items, perClass) in new[]
                 {
                     (0, "train", source.Train, trainPerClass),
                     (1, "t10k", source.Test, testPerClass),
                 })
        {
            var chosen = Select(items, perClass, seed, split);
            var side = FashionMnistItems.Side;
            var pixels = new byte[chosen.Length * side * side];
            var labels = new byte[chosen.Length];
            for (var k = 0; k < chosen.Length; k++)
            {
                items.Image(chosen[k]).CopyTo(pixels.AsSpan(k * side * side));
                labels[k] = items.Labels[chosen[k]];
            }
            var img = Path.Combine(outputFolder, $"{name}-images-idx3-ubyte.gz");
            var lab = Path.Combine(outputFolder, $"{name}-labels-idx1-ubyte.gz");
            var idx = Path.Combine(outputFolder, $"{name}-indices.txt");
            Idx.WriteImages(img, new IdxImages(chosen.Length, side, side, pixels));
            Idx.WriteLabels(lab, labels);
            File.WriteAllLines(idx, chosen.Select(i => i.ToString(CultureInfo.InvariantCulture)));
            written.AddRange([img, lab, idx]);
            counts[name] = chosen.Length;
        }

        var license = Path.Combine(outputFolder, "LICENSE");
        File.WriteAllText(license, LicenseText);
        var readme = Path.Combine(outputFolder, "README.md");
        File.WriteAllText(readme, Readme(source, trainPerClass, testPerClass, seed, counts));
        written.AddRange([license, readme]);
        return written;
    }

    private static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    private static string Readme(FashionMnistSource source, int trainPerClass, int testPerClass, long seed, Dictionary<string, int> counts)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Fashion-MNIST subset (class-balanced)");
        sb.AppendLine();
        sb.AppendLine("A small, class-balanced subset of Fashion-MNIST (Zalando Research), so that the kit's");
        sb.AppendLine("Fashion-MNIST scenes work where the full set is not installed. `FashionMnistSource.Open()` uses");
        sb.AppendLine("the full set when the Debian package `dataset-fashion-mnist` is installed and this subset otherwise;");
        sb.AppendLine("results record which one was used (`FashionMnistSource.Description`).");
        sb.AppendLine();
        sb.AppendLine("| file | items | per class |");
        sb.AppendLine("|---|---:|---:|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz | {counts["train"]} | {trainPerClass} |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz | {counts["t10k"]} | {testPerClass} |");
        sb.AppendLine();
        sb.AppendLine("Format: gzip-compressed IDX, as the original (28x28 uint8 images, magic 2051; uint8 labels 0..9, magic 2049).");
        sb.AppendLine();
        sb.AppendLine("## Source");
        sb.AppendLine();
        sb.AppendLine("Fashion-MNIST by Zalando SE (https://github.com/zalandoresearch/fashion-mnist), as installed by the");
        sb.AppendLine("Debian package `dataset-fashion-mnist` (version 0.0~git20200523.55506a9-1) in");
        sb.AppendLine("`/usr/share/datasets/fashion-mnist/`. SHA-256 of the source files:");
        sb.AppendLine();
        foreach (var n in new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" })
        {
            var p = FashionMnistSource.FindFile(source.Folder, n)!;
            sb.AppendLine(CultureInfo.InvariantCulture, $"- `{Path.GetFileName(p)}`: `{Sha256(p)}`");
        }
        sb.AppendLine();
        sb.AppendLine("## Selection");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Seed {seed}. For each split (0 = train, 1 = t10k) and each class, the items with the smallest key");
        sb.AppendLine("(`ContrastSeg.Data.FashionMnistSubset.Key`; ties by index) are kept, then all kept items are written in");
        sb.AppendLine("their original order. The key is `h = 0x9E3779B97F4A7C15; for p in (seed, split, index, 0, 0): h = splitmix64(h ^ p)`,");
        sb.AppendLine("with splitmix64 the 64-bit finaliser (z += 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;");
        sb.AppendLine("z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31). `train-indices.txt` and `t10k-indices.txt`");
        sb.AppendLine("list the original (0-based) index of each item, one per line, in file order.");
        sb.AppendLine();
        sb.AppendLine("Regenerate (needs the Debian package): `dotnet build -c Release src/ContrastSeg.Core` then");
        sb.AppendLine("`dotnet fsi scripts/make-fashion-mnist-subset.fsx` at the repository root.");
        sb.AppendLine();
        sb.AppendLine("## Licence");
        sb.AppendLine();
        sb.AppendLine("Fashion-MNIST is distributed under the MIT licence (Debian: \"Expat\"); see `LICENSE` beside this file.");
        return sb.ToString();
    }

    /// <summary>The MIT licence of Fashion-MNIST, as stated by its authors and Debian's copyright file.</summary>
    public const string LicenseText =
        """
        The MIT License (MIT)

        Copyright (c) 2017 Zalando SE, https://tech.zalando.com

        Permission is hereby granted, free of charge, to any person obtaining a copy
        of this software and associated documentation files (the "Software"), to deal
        in the Software without restriction, including without limitation the rights
        to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
        copies of the Software, and to permit persons to whom the Software is
        furnished to do so, subject to the following conditions:

        The above copyright notice and this permission notice shall be included in all
        copies or substantial portions of the Software.

        THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
        IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
        FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
        AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
        LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
        OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
        SOFTWARE.

        """;
}
