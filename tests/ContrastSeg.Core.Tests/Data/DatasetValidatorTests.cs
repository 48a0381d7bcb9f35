using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class DatasetValidatorTests
{
    [Fact]
    public void Shared_samples_are_valid()
    {
        foreach (var split in new[] { "train", "val" })
        {
            var report = DatasetValidator.ValidateVoc(SharedData.Voc2012, new VocOptions { Split = split });
            Assert.True(report.IsValid, report.ToString());
            Assert.Equal(3, report.SamplesChecked);
            Assert.EndsWith("3 samples checked, no problems", report.ToString());
        }
        var city = DatasetValidator.ValidateCityscapes(SharedData.Cityscapes, new CityscapesOptions { Split = "val" });
        Assert.True(city.IsValid, city.ToString());
        Assert.Equal(1, city.SamplesChecked);
        var trainIds = DatasetValidator.ValidateCityscapes(SharedData.Cityscapes, new CityscapesOptions { Split = "val", UseTrainIdFiles = true });
        Assert.True(trainIds.IsValid, trainIds.ToString());
    }

    [Fact]
    public void Reports_every_problem_in_one_pass()
    {
        using var voc = new TempVoc("ok", "corrupt", "rgbmask", "size", "range", "nomask");
        File.WriteAllText(voc.Image("corrupt"), "not an image");
        TestFiles.WriteSkiaPng(voc.Mask("rgbmask"), 16, 12);
        ImageCodec.WriteIndexPng(voc.Mask("size"), TestFiles.Labels(16, 10, 21), Palettes.Voc);
        var bad = TestFiles.Labels(16, 12, 21);
        bad.Labels[20] = 99;
        ImageCodec.WriteIndexPng(voc.Mask("range"), bad, Palettes.Voc);
        File.Delete(voc.Mask("nomask"));
        voc.WriteSplit("train", "ok", "corrupt", "rgbmask", "size", "range", "nomask", "ghost", "ok");

        var report = DatasetValidator.ValidateVoc(voc.Root, maxParallelism: 2);
        Assert.False(report.IsValid);
        var kinds = report.Issues.Select(i => i.Problem).ToArray();
        Assert.Equal(
            [DatasetProblem.DuplicateId, DatasetProblem.MissingFile, DatasetProblem.MissingFile, DatasetProblem.MissingFile,
             DatasetProblem.CorruptFile, DatasetProblem.NotIndexMask, DatasetProblem.SizeMismatch, DatasetProblem.LabelOutOfRange],
            kinds);
        Assert.Equal(3, report.OfKind(DatasetProblem.MissingFile).Count); // nomask's mask, ghost's image and mask
        Assert.Equal(voc.Image("corrupt"), report.OfKind(DatasetProblem.CorruptFile)[0].File);
        Assert.Contains("value 99", report.OfKind(DatasetProblem.LabelOutOfRange)[0].Message);
        Assert.Equal(6, report.SamplesChecked); // ghost has no image; the duplicate is checked once

        var text = report.ToString();
        Assert.Contains("8 problems", text);
        Assert.Contains("DuplicateId 1", text);
        Assert.Contains(voc.Mask("size") + ": mask is 16x10", text);
        Assert.Equal(9, text.Split('\n').Length);

        // The reader stops at the first problem but says there are more.
        var e = Assert.Throws<DatasetException>(() => new VocDataset(voc.Root));
        Assert.Contains("duplicate id 'ok'", e.Message);
        Assert.Contains("and 3 more problems", e.Message);
    }

    [Fact]
    public void Structural_problems_are_reported_without_throwing()
    {
        var missing = Path.Combine(Path.GetTempPath(), "contrastseg-no-such-" + Guid.NewGuid().ToString("N"));
        var r = DatasetValidator.ValidateVoc(missing);
        Assert.Equal(DatasetProblem.MissingRoot, Assert.Single(r.Issues).Problem);

        using var voc = new TempVoc("a");
        r = DatasetValidator.ValidateVoc(voc.Root, new VocOptions { Split = "val" });
        Assert.Equal(DatasetProblem.MissingSplitFile, Assert.Single(r.Issues).Problem);
        voc.WriteSplit("val");
        r = DatasetValidator.ValidateVoc(voc.Root, new VocOptions { Split = "val" });
        Assert.Equal(DatasetProblem.EmptySplit, Assert.Single(r.Issues).Problem);
    }

    [Fact]
    public void Folder_dataset_problems_are_all_reported()
    {
        using var tmp = new TempDir();
        File.WriteAllLines(tmp.File("classes.txt"), ["background", "thing"]);
        TestFiles.WriteJpeg(tmp.File("images", "a.jpg"), 8, 8);
        TestFiles.WriteJpeg(tmp.File("images", "b.jpg"), 8, 8);
        File.WriteAllBytes(tmp.File("images", "c.png"), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]);
        ImageCodec.WriteGrayscalePng(tmp.File("masks", "a.png"), TestFiles.Labels(8, 8, 2));
        ImageCodec.WriteGrayscalePng(tmp.File("masks", "b.png"), TestFiles.Labels(8, 8, 3)); // label 2 with 2 classes
        var r = DatasetValidator.ValidateFolder(tmp.Path);
        Assert.Equal([DatasetProblem.MissingFile, DatasetProblem.LabelOutOfRange, DatasetProblem.CorruptFile], r.Issues.Select(i => i.Problem));
        Assert.Equal(tmp.File("masks", "c.png"), r.Issues[0].File); // c has no mask
        Assert.Equal(3, r.SamplesChecked);
    }
}
