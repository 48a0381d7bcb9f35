using ContrastSeg.Data;
using ContrastSeg.Tests.Data;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Training;

/// <summary>What a run opens from a folder dataset: which images it trains on and scores, and the counts it logs.</summary>
public sealed class RunDataTests : IDisposable
{
    private readonly TempDir _runs = new();

    public void Dispose() => _runs.Dispose();

    private static DataSettings Folder(string root) => new() { Dataset = "folder", Root = root, Workers = 1 };

    [Fact]
    public void A_training_split_with_a_missing_mask_is_refused_when_the_run_opens_its_data()
    {
        using var data = new TempFolderDataset(["a", "b", "c"], ["v1", "v2"]);
        File.Move(data.Mask("b"), data.File("masks", "b_L.png"));
        var e = Assert.Throws<DatasetException>(() => DataFactory.Open(Folder(data.Root), _runs.Path));
        Assert.Contains(data.Image("b"), e.Message);
        Assert.Contains("found masks/b_L.png", e.Message);
    }

    [Fact]
    public void A_validation_split_with_a_missing_mask_is_refused_when_the_run_opens_its_data()
    {
        using var data = new TempFolderDataset(["a", "b"], ["v1", "v2"]);
        File.Delete(data.Mask("v2"));
        var e = Assert.Throws<DatasetException>(() => DataFactory.Open(Folder(data.Root), _runs.Path));
        Assert.Equal(data.Mask("v2"), e.Path);
        Assert.Contains("line 2 of val.txt", e.Message);
    }

    [Fact]
    public void Only_images_with_a_mask_are_trained_on_and_scored_and_the_counts_say_so()
    {
        using var data = new TempFolderDataset(["a", "b", "c", "d"], ["v1", "v2", "v3"]);
        File.Delete(data.Mask("b"));
        File.Delete(data.Mask("v3"));
        data.WriteSplit("train", "#unlabelled", "a", "b", "c", "d");
        data.WriteSplit("val", "#unlabelled", "v1", "v2", "v3");

        var run = DataFactory.Open(Folder(data.Root), _runs.Path);
        Assert.Equal([0, 2, 3], run.Labelled);
        Assert.Equal([1], run.Unlabelled);
        Assert.Equal([0, 1], run.ValScored);
        var text = run.Describe(withValidation: true);
        Assert.StartsWith("3 training images (1 image of the training split 'train' without a mask, declared unlabelled, not trained on)", text);
        Assert.Contains(", 2 validation images (1 of the validation split 'val' without a mask, declared unlabelled, not scored)", text);
        Assert.True(run.CheckBeforeRun(RunParts.Training | RunParts.Scoring).IsValid);

        // A labelled subset is drawn from the images with a mask; the subset size is checked against them.
        var subset = DataFactory.Open(Folder(data.Root) with { Labelled = 2 }, _runs.Path);
        Assert.Equal(2, subset.Labelled.Count);
        Assert.DoesNotContain(1, subset.Labelled);
        Assert.Contains(1, subset.Unlabelled);
        Assert.Equal(2, subset.Unlabelled.Count);
        var e = Assert.Throws<ConfigException>(() => DataFactory.Open(Folder(data.Root) with { Labelled = 4 }, _runs.Path));
        Assert.Contains("only 3 labelled images (and 1 without a mask, declared unlabelled)", e.Message);
    }

    [Fact]
    public void A_split_declared_unlabelled_without_any_mask_cannot_be_trained_on_or_scored_but_can_be_predicted()
    {
        using var data = new TempFolderDataset(["a", "b"], ["v1"]);
        foreach (var id in new[] { "a", "b", "v1" }) File.Delete(data.Mask(id));
        data.WriteSplit("train", "#unlabelled", "a", "b");
        data.WriteSplit("val", "#unlabelled", "v1");

        var run = DataFactory.Open(Folder(data.Root), _runs.Path);
        Assert.Empty(run.Labelled);
        var e = Assert.Throws<DatasetException>(() => run.CheckBeforeRun(RunParts.Training));
        Assert.Contains("training split 'train'", e.Message);
        Assert.Contains("has no images with a mask", e.Message);
        e = Assert.Throws<DatasetException>(() => run.CheckBeforeRun(RunParts.Scoring));
        Assert.Contains("validation split 'val'", e.Message);
        Assert.Equal(1, run.CheckBeforeRun(RunParts.ValImages).SamplesChecked);
        Assert.Equal(2, run.CheckBeforeRun(RunParts.UnlabelledImages).SamplesChecked);
    }

    [Fact]
    public void Pseudo_labels_without_unlabelled_images_are_refused_instead_of_ignored()
    {
        using var data = new TempFolderDataset(["a", "b"], ["v1"]);
        var pseudo = Directory.CreateDirectory(Path.Combine(_runs.Path, "pseudo")).FullName;
        var e = Assert.Throws<ConfigException>(() => DataFactory.Open(Folder(data.Root) with { PseudoLabels = pseudo }, _runs.Path));
        Assert.Equal("Data.PseudoLabels", e.Field);
    }

    [Fact]
    public void Pseudo_labels_are_checked_before_the_run_and_counted()
    {
        using var data = new TempFolderDataset(["a", "b", "c"], ["v1"]);
        var pseudo = Directory.CreateDirectory(Path.Combine(_runs.Path, "pseudo")).FullName;
        var settings = Folder(data.Root) with { Labelled = 1, PseudoLabels = pseudo };
        var plain = DataFactory.Open(settings with { PseudoLabels = null }, _runs.Path);
        var ids = plain.Unlabelled.Select(i => plain.Train.Ids[i]).ToArray();
        ImageCodec.WriteGrayscalePng(Path.Combine(pseudo, ids[0] + ".png"), TestFiles.Labels(24, 20, 3));
        ImageCodec.WriteGrayscalePng(Path.Combine(pseudo, ids[1] + ".png"), TestFiles.Labels(20, 20, 3));

        var run = DataFactory.Open(settings, _runs.Path);
        Assert.Equal(3, run.Labelled.Count);
        Assert.StartsWith("3 training images (1 labelled + 2 pseudo-labelled;", run.Describe(withValidation: false));
        var e = Assert.Throws<DatasetException>(() => run.CheckBeforeRun(RunParts.Training));
        Assert.Equal(Path.Combine(pseudo, ids[1] + ".png"), e.Path);
        Assert.Contains("pseudo-labels are 20x20", e.Message);
    }
}
