using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public sealed class LabelSubsetsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("subsets").FullName;
    private static readonly string[] Train = Enumerable.Range(0, 200).Select(i => $"img_{i:D4}").ToArray();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File_(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Same_seed_gives_the_same_ids_and_the_rest_is_unlabelled_in_list_order()
    {
        var a = LabelSubsets.Choose(Train, 20, seed: 3, File_("a/labelled.txt"));
        var b = LabelSubsets.Choose(Train, 20, seed: 3, File_("b/labelled.txt"));
        var c = LabelSubsets.Choose(Train, 20, seed: 4, File_("c/labelled.txt"));
        Assert.False(a.Reused);
        Assert.Equal(a.Labelled, b.Labelled);
        Assert.NotEqual(a.Labelled, c.Labelled);
        Assert.Equal(20, a.Labelled.Distinct().Count());
        Assert.Equal(180, a.Unlabelled.Count);
        Assert.Equal(Train, a.Labelled.Concat(a.Unlabelled).Order(StringComparer.Ordinal));
        Assert.Equal(a.Unlabelled, Train.Where(t => !a.Labelled.Contains(t)));
        Assert.Equal(a.Labelled, a.LabelledIndices.Select(i => Train[i]));
        Assert.Equal(a.Labelled, File.ReadAllLines(File_("a/labelled.txt")));
    }

    [Fact]
    public void Cells_that_draw_the_same_subset_at_once_all_get_it()
    {
        // Grid cells on several nodes open the same subset file at the same moment (a shared runs folder): each draws
        // the same ids from the seed and writes them. With one fixed temporary name (before) a writer's rename found
        // its temporary file already renamed by another (FileNotFoundException, the cell failed) or a reader saw half a list.
        var expected = LabelSubsets.Choose(Train, 150, seed: 5, File_("reference.txt")).Labelled;
        for (var round = 0; round < 20; round++)
        {
            var path = File_($"shared/n150-{round}.txt");
            var results = new LabelSubset[8];
            Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 },
                k => results[k] = LabelSubsets.Choose(Train, 150, seed: 5, path));
            Assert.All(results, r => Assert.Equal(expected, r.Labelled));
            Assert.Equal(expected, File.ReadAllLines(path));
        }
        Assert.Empty(Directory.GetFiles(File_("shared"), "*.tmp"));
    }

    [Fact]
    public void Existing_file_is_reused_not_redrawn()
    {
        var path = File_("l.txt");
        File.WriteAllLines(path, ["img_0150", "img_0007", "", "  img_0100  "]);
        var s = LabelSubsets.Choose(Train, 3, seed: 99, path);
        Assert.True(s.Reused);
        Assert.Equal(["img_0007", "img_0100", "img_0150"], s.Labelled);
        Assert.Equal([7, 100, 150], s.LabelledIndices);
        Assert.Equal(197, s.UnlabelledIndices.Count);

        var first = LabelSubsets.Choose(Train, 10, seed: 1, File_("m.txt"));
        var again = LabelSubsets.Choose(Train, 10, seed: 2, File_("m.txt")); // another seed: the file wins
        Assert.True(again.Reused);
        Assert.Equal(first.Labelled, again.Labelled);
    }

    [Fact]
    public void Count_mismatch_and_foreign_ids_are_errors_not_silent_redraws()
    {
        var path = File_("n.txt");
        LabelSubsets.Choose(Train, 183, seed: 1, path);
        var e = Assert.Throws<DatasetException>(() => LabelSubsets.Choose(Train, 92, seed: 1, path));
        Assert.Contains($"subset file {path} has 183 ids but 92 were asked for; delete it or pass a different path", e.Message);
        Assert.Equal(183, File.ReadAllLines(path).Length); // untouched

        var foreign = File_("f.txt");
        File.WriteAllLines(foreign, ["img_0001", "cat_0001"]);
        var f = Assert.Throws<DatasetException>(() => LabelSubsets.Choose(Train, 2, seed: 1, foreign));
        Assert.Contains("cat_0001", f.Message);
        Assert.Contains("not in the training list", f.Message);
    }

    [Fact]
    public void ReadIdList_names_missing_file_empty_list_and_duplicates_with_lines()
    {
        var missing = File_("missing.txt");
        var m = Assert.Throws<DatasetException>(() => LabelSubsets.ReadIdList(missing));
        Assert.Contains(missing, m.Message);
        Assert.Contains("not found", m.Message);

        var empty = File_("empty.txt");
        File.WriteAllLines(empty, ["", "  "]);
        Assert.Contains("empty", Assert.Throws<DatasetException>(() => LabelSubsets.ReadIdList(empty)).Message);

        var dup = File_("dup.txt");
        File.WriteAllLines(dup, ["a", "b", "c", "", "b"]);
        var d = Assert.Throws<DatasetException>(() => LabelSubsets.ReadIdList(dup));
        Assert.Contains("'b'", d.Message);
        Assert.Contains("lines 2 and 5", d.Message);
        Assert.Contains(dup, d.Message);

        File.WriteAllLines(dup, ["x", "y"]);
        Assert.Equal(["x", "y"], LabelSubsets.ReadIdList(dup));
    }
}
