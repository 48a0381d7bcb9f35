using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

public class SbdConverterTests
{
    // 3 rows x 5 columns, every value distinct by position, so a transposed or column-major
    // misreading cannot produce the same row-major map.
    private const int Rows = 3, Cols = 5;
    private static readonly double[] Seg = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 255];
    private static readonly byte[] Expected = Seg.Select(v => (byte)v).ToArray();

    public static TheoryData<bool, int, int, bool> Variants => new()
    {
        { false, MatWriter.MxUInt8, MatWriter.MiUInt8, false },  // uncompressed uint8
        { true, MatWriter.MxUInt8, MatWriter.MiUInt8, false },   // miCOMPRESSED uint8
        { false, MatWriter.MxDouble, MatWriter.MiDouble, false },// uncompressed double
        { true, MatWriter.MxDouble, MatWriter.MiDouble, false }, // miCOMPRESSED double
        { true, MatWriter.MxDouble, MatWriter.MiUInt8, false },  // double class stored as uint8 (MATLAB's compaction)
        { false, MatWriter.MxUInt8, MatWriter.MiUInt8, true },   // big-endian file
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Reads_GTcls_Segmentation_column_major(bool compressed, int classId, int storage, bool bigEndian)
    {
        var bytes = new MatWriter(bigEndian).SbdFile(Rows, Cols, Seg, compressed, classId, storage);
        var labels = SbdConverter.ReadSegmentation(bytes, "2008_000002.mat");
        Assert.Equal((Cols, Rows), (labels.Width, labels.Height));
        Assert.Equal(Expected, labels.Labels);
    }

    [Fact]
    public void Converts_mat_files_to_grayscale_pngs()
    {
        using var tmp = new TempDir();
        var w = new MatWriter();
        File.WriteAllBytes(tmp.File("sbd", "cls", "2008_000002.mat"), w.SbdFile(Rows, Cols, Seg, compressed: true, MatWriter.MxUInt8, MatWriter.MiUInt8));
        File.WriteAllBytes(tmp.File("sbd", "cls", "2008_000003.mat"), w.SbdFile(Rows, Cols, Seg.Select(v => v == 255 ? 0.0 : v).ToArray(), compressed: false, MatWriter.MxDouble, MatWriter.MiDouble));
        Directory.CreateDirectory(tmp.File("VOCdevkit", "VOC2012", "JPEGImages", "x"));

        var result = SbdConverter.Convert(tmp.File("sbd"), tmp.File("VOCdevkit"));
        Assert.Equal(2, result.Written);
        var png = Path.Combine(result.OutputFolder, "2008_000002.png");
        Assert.Equal(Expected, ImageCodec.DecodeIndexPng(png).Labels);
        Assert.Null(ImageCodec.ReadPalette(png)); // grayscale, like the common SegmentationClassAug
        Assert.Equal(0, ImageCodec.DecodeIndexPng(Path.Combine(result.OutputFolder, "2008_000003.png")).Labels[^1]);
        Assert.Equal(2, SbdConverter.Convert(tmp.File("sbd"), tmp.File("VOCdevkit")).Skipped);
    }

    [Fact]
    public void Bad_mat_files_are_refused_naming_the_file_and_problem()
    {
        var w = new MatWriter();
        var bad = Seg.ToArray();
        bad[7] = 37; // row 1, column 2
        var e = Assert.Throws<DatasetException>(() => SbdConverter.ReadSegmentation(w.SbdFile(Rows, Cols, bad, true, MatWriter.MxUInt8, MatWriter.MiUInt8), "x.mat"));
        Assert.Contains("x.mat", e.Message);
        Assert.Contains("value 37 at pixel (x=2, y=1)", e.Message);

        var good = w.SbdFile(Rows, Cols, Seg, true, MatWriter.MxUInt8, MatWriter.MiUInt8);
        e = Assert.Throws<DatasetException>(() => SbdConverter.ReadSegmentation(good[..(good.Length - 30)], "cut.mat"));
        Assert.Contains("cut.mat", e.Message);
        Assert.Contains("MAT file", e.Message);

        var noGt = (byte[])[.. w.Header(), .. w.Numeric(MatWriter.MxDouble, MatWriter.MiDouble, 1, 1, [1], "other")];
        Assert.Contains("no struct variable 'GTcls'", Assert.Throws<DatasetException>(() => SbdConverter.ReadSegmentation(noGt, "n.mat")).Message);
        Assert.Contains("not a MATLAB", Assert.Throws<DatasetException>(() => SbdConverter.ReadSegmentation(new byte[200], "z.mat")).Message);
    }

    [Fact]
    public void Train_aug_list_arithmetic()
    {
        var list = SbdConverter.BuildTrainAugList(["c", "a", "b"], ["b", "d"], ["e", "a"], ["d", "x"]);
        Assert.Equal(["a", "b", "c", "e"], list);
    }

    private static string[] Ids(string prefix, int from, int count) => Enumerable.Range(from, count).Select(i => $"{prefix}{i:D5}").ToArray();

    [Fact]
    public void Official_sized_lists_must_give_10582_ids()
    {
        // SBD train 0..8497, SBD val 8498..11354, VOC train inside SBD train; VOC val removes 773 SBD ids
        // (11,355 - 773 = 10,582) and holds 676 ids SBD does not have.
        var sbdTrain = Ids("i", 0, 8498);
        var sbdVal = Ids("i", 8498, 2857);
        var vocTrain = Ids("i", 0, 1464);
        var vocVal = Ids("i", 10582, 773).Concat(Ids("v", 0, 676)).ToArray();
        var list = SbdConverter.BuildTrainAugList(sbdTrain, sbdVal, vocTrain, vocVal);
        Assert.Equal(10582, list.Count);

        // Same sizes, different overlap: not the official lists.
        var wrongVal = Ids("i", 10000, 773).Concat(Ids("v", 0, 676)).ToArray();
        wrongVal[0] = "v99999"; // one fewer SBD id removed -> 10,583
        var e = Assert.Throws<DatasetException>(() => SbdConverter.BuildTrainAugList(sbdTrain, sbdVal, vocTrain, wrongVal));
        Assert.Contains("has 10583 ids, expected 10582", e.Message);

        // Other sizes are not checked against the official count.
        Assert.Equal(3, SbdConverter.BuildTrainAugList(sbdTrain[..2], sbdVal[..1], [], []).Count);
    }

    [Fact]
    public void Official_train_aug_is_consistent_with_the_list_arithmetic()
    {
        var trainAug = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "train_aug.txt"));
        var train = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "train.txt"));
        var val = IdLists.Read(Path.Combine(SharedData.OfficialSplits, "val.txt"));
        // train_aug ⊇ train and ∩ val = ∅, so rebuilding it with VOC train added and val removed changes nothing.
        var rebuilt = SbdConverter.BuildTrainAugList(trainAug, [], train, val);
        Assert.Equal(trainAug.Order(StringComparer.Ordinal), rebuilt);
    }

    [Fact]
    public void Writes_train_aug_list_from_the_four_lists()
    {
        using var tmp = new TempDir();
        File.WriteAllLines(tmp.File("sbd", "train.txt"), ["s1", "s2", "v1"]);
        File.WriteAllLines(tmp.File("sbd", "val.txt"), ["s3"]);
        File.WriteAllLines(tmp.File("VOC2012", "ImageSets", "Segmentation", "train.txt"), ["t1"]);
        File.WriteAllLines(tmp.File("VOC2012", "ImageSets", "Segmentation", "val.txt"), ["v1"]);
        Directory.CreateDirectory(tmp.File("VOC2012", "JPEGImages", "x"));
        var ids = SbdConverter.WriteTrainAugList(tmp.File("sbd"), tmp.File("VOC2012"));
        Assert.Equal(["s1", "s2", "s3", "t1"], ids);
        Assert.Equal(ids, IdLists.Read(tmp.File("VOC2012", "ImageSets", "Segmentation", "train_aug.txt")));
    }
}
