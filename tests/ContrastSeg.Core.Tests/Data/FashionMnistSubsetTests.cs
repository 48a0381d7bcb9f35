using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class FashionMnistSubsetTests
{
    [Fact]
    public void Committed_subset_opens_with_balanced_counts_and_notices()
    {
        var source = FashionMnistSource.OpenEmbedded();
        Assert.Equal(FashionMnistSourceKind.Embedded, source.Kind);
        Assert.StartsWith("embedded:", source.Description);

        Assert.Equal(6000, source.Train.Count);
        Assert.Equal(2000, source.Test.Count);
        Assert.All(source.Train.ClassCounts(), c => Assert.Equal(FashionMnistSubset.DefaultTrainPerClass, c));
        Assert.All(source.Test.ClassCounts(), c => Assert.Equal(FashionMnistSubset.DefaultTestPerClass, c));
        Assert.Equal(FashionMnistItems.Side, source.Train.Images.Rows);

        foreach (var (name, count) in new[] { ("train", 6000), ("t10k", 2000) })
        {
            var indices = File.ReadAllLines(Path.Combine(source.Folder, $"{name}-indices.txt")).Select(int.Parse).ToArray();
            Assert.Equal(count, indices.Length);
            Assert.True(indices.Zip(indices.Skip(1)).All(p => p.First < p.Second), $"{name}-indices.txt is not ascending");
        }
        Assert.Contains("Zalando", File.ReadAllText(Path.Combine(source.Folder, "LICENSE")));
        var readme = File.ReadAllText(Path.Combine(source.Folder, "README.md"));
        Assert.Contains("dataset-fashion-mnist", readme);
        Assert.Contains(FashionMnistSubset.DefaultSeed.ToString(), readme);

        var size = Directory.GetFiles(source.Folder).Sum(f => new FileInfo(f).Length);
        Assert.True(size <= 5_000_000, $"subset is {size} bytes");
    }

    [Fact]
    public void Committed_test_items_are_the_listed_items_of_the_full_set_when_installed()
    {
        if (!Directory.Exists(FashionMnistSource.SystemFolder)) return; // the full set is optional
        var full = FashionMnistSource.Open(FashionMnistSource.SystemFolder).Test;
        var subset = FashionMnistSource.OpenEmbedded();
        var chosen = FashionMnistSubset.Select(full, FashionMnistSubset.DefaultTestPerClass, FashionMnistSubset.DefaultSeed, split: 1);
        var listed = File.ReadAllLines(Path.Combine(subset.Folder, "t10k-indices.txt")).Select(int.Parse).ToArray();
        Assert.Equal(chosen, listed);
        for (var k = 0; k < listed.Length; k += 97)
        {
            Assert.Equal(full.Labels[listed[k]], subset.Test.Labels[k]);
            Assert.True(full.Image(listed[k]).SequenceEqual(subset.Test.Image(k)), $"item {k}");
        }
    }

    [Fact]
    public void Open_prefers_the_callers_folder_and_names_missing_files()
    {
        var embedded = FashionMnistSource.FindEmbeddedFolder();
        Assert.NotNull(embedded);
        var s = FashionMnistSource.Open(embedded);
        Assert.Equal(FashionMnistSourceKind.Folder, s.Kind);

        var empty = Directory.CreateTempSubdirectory("fm-empty").FullName;
        try
        {
            var e = Assert.Throws<DatasetException>(() => FashionMnistSource.Open(empty));
            Assert.Contains(empty, e.Message);
            Assert.Contains("train-images-idx3-ubyte", e.Message);
        }
        finally { Directory.Delete(empty); }
    }
}
