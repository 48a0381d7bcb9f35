using System.Text;
using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// Issue 29, case 2: a split line is one id as a whole (file names may contain spaces) or a pair of image and mask
/// paths, never cut at its first space; ids and file names are compared in NFC.
/// </summary>
public class SplitLineTests
{
    private const string Stem = "0001TP_006690";

    [Fact]
    public void A_line_with_a_space_is_one_id_and_reads_the_image_of_that_name()
    {
        using var data = new TempFolderDataset([Stem, Stem + " copy"]);
        TestFiles.WriteJpeg(data.Image(Stem + " copy"), 12, 10); // tell the two images apart by size
        ImageCodec.WriteGrayscalePng(data.Mask(Stem + " copy"), TestFiles.Labels(12, 10));
        data.WriteSplit("train", Stem + " copy");

        var ds = new FolderDataset(data.Root, new FolderOptions { Split = "train" });

        Assert.Equal([Stem + " copy"], ds.Ids);
        Assert.Equal(data.Image(Stem + " copy"), ds.ImagePath(0));
        Assert.Equal(12, ds.Load(0).Image.Width);
    }

    [Fact]
    public void A_line_with_a_space_that_names_no_image_is_refused_naming_the_list_line_and_the_text()
    {
        // The issue's case: only 0001TP_006690.jpg exists; the line trained on it, silently.
        using var data = new TempFolderDataset([Stem, "b"]);
        data.WriteSplit("train", "b", Stem + " copy");

        var e = Assert.Throws<DatasetException>(() => new FolderDataset(data.Root, new FolderOptions { Split = "train" }));

        Assert.Contains($"id '{Stem} copy' (line 2 of train.txt)", e.Message);
        Assert.Contains($"images/{Stem}.jpg exists", e.Message);
        var issue = Assert.Single(DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }).Issues);
        Assert.Equal(DatasetProblem.MissingFile, issue.Problem);
    }

    [Fact]
    public void Path_pairs_and_single_paths_with_spaces_still_name_their_image()
    {
        using var data = new TempFolderDataset(["a", "la rue"]);
        data.WriteSplit("train", "JPEGImages/a.jpg SegmentationClass/a.png", "images/la rue.jpg");
        Assert.Equal(["a", "la rue"], new FolderDataset(data.Root, new FolderOptions { Split = "train" }).Ids);

        // Lists of the kit and of other tools read the same way.
        Assert.Equal(["a", "la rue"], IdLists.Read(data.Split("train")));
        Assert.Equal(["a", "la rue"], LabelSubsets.ReadIdList(data.Split("train")));
    }

    [Fact]
    public void Labelled_subsets_keep_ids_with_spaces_whole()
    {
        using var data = new TempFolderDataset(["a b", "c", "d e"]);
        var train = new FolderDataset(data.Root, new FolderOptions { Split = "train" });
        var file = data.File("subset.txt");

        var drawn = LabelSubsets.Choose(train.Ids, 2, seed: 3, file);
        var reread = LabelSubsets.Choose(train.Ids, 2, seed: 3, file);

        Assert.True(reread.Reused);
        Assert.Equal(drawn.Labelled, reread.Labelled);
        Assert.All(File.ReadAllLines(file), line => Assert.Contains(line, train.Ids));
    }

    [Theory]
    [InlineData("#x")]
    [InlineData(" x")]
    [InlineData("a.jpg b.png")]
    [InlineData("images/x")]
    [InlineData("")]
    public void An_id_that_would_read_back_as_another_is_not_written(string id)
    {
        using var tmp = new TempDir();
        Assert.Throws<ArgumentException>(() => IdLists.Write(tmp.File("list.txt"), ["ok", id]));
        Assert.Throws<ArgumentException>(() => LabelSubsets.WriteIdList(tmp.File("subset.txt"), ["ok", id]));
        IdLists.Write(tmp.File("spaces.txt"), ["ok", "with space"]);
        Assert.Equal(["ok", "with space"], IdLists.Read(tmp.File("spaces.txt")));
    }

    [Fact]
    public void Decomposed_file_names_match_a_composed_list()
    {
        var nfc = "caf\u00e9_01";                            // é as one code point, as typed in an editor
        var nfd = nfc.Normalize(NormalizationForm.FormD);    // e + combining accent, as macOS names files
        Assert.NotEqual(nfc, nfd);
        using var data = new TempFolderDataset(["a"]);
        data.AddGood(nfd);
        data.WriteSplit("train", "a", nfc);

        var ds = new FolderDataset(data.Root, new FolderOptions { Split = "train" });

        Assert.Equal(["a", nfc], ds.Ids);
        Assert.Equal(data.Image(nfd), ds.ImagePath(1));
        Assert.Equal(data.Mask(nfd), ds.MaskPath(1));
        Assert.NotNull(ds.Load(1).Labels);
        // Every image, without a list: ids in NFC too, so a list and the folder agree.
        Assert.Equal(["a", nfc], new FolderDataset(data.Root).Ids);
    }

    [Fact]
    public void Two_spellings_of_one_name_are_one_id_listed_twice()
    {
        var nfc = "\u00e9t\u00e9";
        using var tmp = new TempDir();
        File.WriteAllLines(tmp.File("list.txt"), [nfc, nfc.Normalize(NormalizationForm.FormD)]);
        var e = Assert.Throws<DatasetException>(() => IdLists.Read(tmp.File("list.txt")));
        Assert.Contains("lines 1, 2", e.Message);
    }
}
