using System.Diagnostics;
using ContrastSeg.Data;
using Xunit;

namespace ContrastSeg.Tests.Data;

/// <summary>
/// A FIFO (or device, socket) named like an image or mask is refused at once, naming the file: opening a FIFO for
/// reading blocks until a writer comes, so reading it as an image hung the validator and training without a word.
/// </summary>
public class NonRegularFileTests
{
    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(30); // milliseconds when fixed; a hang otherwise

    [Fact(Timeout = 120_000)]
    public async Task A_fifo_named_like_an_image_or_a_mask_is_an_error_naming_it_not_a_hang()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return; // FIFOs in a folder are Unix's
        using var data = new TempFolderDataset(["a", "b"]);
        File.Delete(data.Image("b"));
        MakeFifo(data.Image("b"));
        File.Delete(data.Mask("a"));
        MakeFifo(data.Mask("a"));
        string[] fifos = [data.Image("b"), data.Mask("a")];
        var options = new FolderOptions { Split = "train" };

        var report = await Quickly(() => DatasetValidator.ValidateFolder(data.Root, options, maxParallelism: 2), fifos);
        Assert.Equal(fifos.Order(), report.Issues.Select(i => i.File).Order());
        Assert.All(report.Issues, i =>
        {
            Assert.Equal(DatasetProblem.CorruptFile, i.Problem);
            Assert.Contains("not a regular file", i.Message);
            if (OperatingSystem.IsLinux()) Assert.Contains("FIFO", i.Message);
        });

        var ds = new FolderDataset(data.Root, options);
        var check = await Quickly(() => DatasetValidator.CheckBeforeRun([new DataPart("training split 'train'", ds, [0, 1], NeedsLabels: true)], maxParallelism: 2), fifos);
        Assert.Equal(fifos.Order(), check.Issues.Select(i => i.File).Distinct().Order());

        var e = await Quickly(() => Assert.Throws<DatasetException>(() => ds.Load(1)), fifos);
        Assert.Equal(data.Image("b"), e.Path);
        Assert.Contains("not a regular file", e.Message);
    }

    [Fact]
    public void A_device_is_refused_unopened_and_an_empty_regular_file_keeps_its_message()
    {
        if (!OperatingSystem.IsLinux()) return; // the kind of a file is read on Linux (statx)
        var e = Assert.Throws<DatasetException>(() => ImageCodec.DecodeIndexPng("/dev/null"));
        Assert.Equal("/dev/null", e.Path);
        Assert.Contains("not a regular file: it is a character device", e.Message);

        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("empty.png"), []);
        Assert.Contains("empty file", Assert.Throws<DatasetException>(() => ImageCodec.DecodeImage(dir.File("empty.png"))).Message);
    }

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    /// <summary>The result of <paramref name="work"/>, or a failure when it takes longer than <see cref="Quick"/>.</summary>
    private static async Task<T> Quickly<T>(Func<T> work, string[] fifos)
    {
        var task = Task.Run(work);
        try { return await task.WaitAsync(Quick); }
        catch (TimeoutException)
        {
            // Release the reader blocked in open(2): opening read-write never blocks (Linux) and its close is the end of the data.
            foreach (var fifo in fifos)
                try { using var _ = new FileStream(fifo, FileMode.Open, FileAccess.ReadWrite); } catch (IOException) { }
            throw new Xunit.Sdk.XunitException($"still reading after {Quick.TotalSeconds} s: a FIFO named like an image hangs the reader");
        }
    }
}
