using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// Issue 29, case 4: classes.txt needs at least 2 classes, colours of exactly three integers 0..255, and each name
/// and colour once; every refusal names the file and the line. The formats read before stay valid.
/// </summary>
public class ClassTableTests
{
    private static string Write(TempDir tmp, params string[] lines)
    {
        var path = tmp.File("classes.txt");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static DatasetException Refused(params string[] lines)
    {
        using var tmp = new TempDir();
        var path = Write(tmp, lines);
        var e = Assert.Throws<DatasetException>(() => FolderDataset.ReadClassTable(path));
        Assert.Equal(path, e.Path);
        Assert.StartsWith(path + ": ", e.Message);
        return e;
    }

    [Fact]
    public void One_class_is_refused_naming_it_and_its_line()
    {
        var e = Refused("# the only class", "Sky 128 128 128");
        Assert.Contains("1 class ('Sky', line 2)", e.Message);
        Assert.Contains("at least 2", e.Message);
        Assert.Contains("lists no classes", Refused("# nothing but a comment").Message);
    }

    [Fact]
    public void A_folder_dataset_with_one_class_does_not_open_and_the_validator_says_why()
    {
        using var data = new TempFolderDataset(["a"]);
        File.WriteAllLines(data.File("classes.txt"), ["thing"]);
        var e = Assert.Throws<DatasetException>(() => new FolderDataset(data.Root, new FolderOptions { Split = "train" }));
        Assert.Equal(data.File("classes.txt"), e.Path);
        var issue = Assert.Single(DatasetValidator.ValidateFolder(data.Root, new FolderOptions { Split = "train" }).OfKind(DatasetProblem.BadClassTable));
        Assert.Contains("at least 2", issue.Message);
    }

    [Theory]
    [InlineData("Sky 300 128", "line 2: 'Sky 300 128' ends in two numbers (300 128)")]
    [InlineData("Sky 128 128 999", "line 2: colour '128 128 999' of 'Sky': colour values must be integers 0..255")]
    [InlineData("Sky 128 128 -1", "line 2: colour '128 128 -1'")]
    [InlineData("Sky 128 128.5 0", "line 2: colour '128 128.5 0'")]
    [InlineData("128 128 128", "line 2: '128 128 128' is a colour without a class name")]
    [InlineData("Sky 128,128,128", "line 2: colour '128,128,128' of 'Sky': separate the values by spaces")]
    public void A_colour_that_is_not_three_integers_0_to_255_is_refused_naming_line_and_value(string line, string expected)
    {
        var e = Refused("Road 128 64 128", line);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("Sky", "sky")]
    [InlineData("traffic light", "traffic  light")]
    public void A_class_listed_twice_is_refused_with_both_lines(string first, string second)
    {
        var e = Refused(first + " 128 128 128", "Road 128 64 128", second);
        Assert.Contains($"line 3: class '{second}' is also on line 1", e.Message);
    }

    [Fact]
    public void Two_classes_with_one_colour_are_refused_with_both_lines()
    {
        var e = Refused("Sky 128 128 128", "Road 128 64 128", "Building 128 128 128");
        Assert.Contains("line 3: colour 128 128 128 of 'Building' is also that of 'Sky' on line 1", e.Message);
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        using var tmp = new TempDir();
        Write(tmp, "Sky 300 128", "Road", "Road", "Car 0 0 999");
        Directory.CreateDirectory(tmp.File("images"));
        var issues = DatasetValidator.ValidateFolder(tmp.Path).OfKind(DatasetProblem.BadClassTable);
        Assert.Equal(["line 1", "line 3", "line 4"], issues.Select(i => i.Message[..6]));
    }

    [Fact]
    public void The_formats_read_before_stay_valid()
    {
        using var tmp = new TempDir();
        var info = FolderDataset.ReadClassTable(Write(tmp,
            "# name [R G B]", "", "background 0 0 0", "traffic light 250 170 30", "crack", "lane 1", "lane 2 255 0 0", "  padded  name  "));
        Assert.Equal(["background", "traffic light", "crack", "lane 1", "lane 2", "padded  name"], info.ClassNames);
        Assert.Equal(new Rgb(250, 170, 30), info.Palette[1]);
        Assert.Equal(Palettes.VocColor(2), info.Palette[2]);
        Assert.Equal(new Rgb(255, 0, 0), info.Palette[4]);
        // The shared CamVid example reads as it always did.
        Assert.Equal(11, FolderDataset.ReadClassTable(SharedData.File("camvid-dev", "classes.txt")).NumClasses);
    }
}
