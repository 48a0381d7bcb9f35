using System.Text.Json.Nodes;
using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

/// <summary>
/// Computed once for the resume tests: the final weights of an uninterrupted 8-step synthetic run, and a run of the
/// same settings killed in its last step (checkpoints at steps 3 and 6: CheckpointEvery 3, KeepLast 2), kept aside
/// as a template that each test copies back to where it was written (<see cref="Interrupted"/>'s run folder).
/// </summary>
public sealed class ReferenceRun : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "contrastseg-reference-" + Guid.NewGuid().ToString("N"));

    public ReferenceRun()
    {
        TorchFixture.Init();
        var config = SyntheticBatches.Config(Path.Combine(_root, "uninterrupted"));
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
        {
            Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
            Weights = CheckpointTests.WeightsOf(model);
        }
        Interrupted = SyntheticBatches.Config(Path.Combine(_root, "work"));
        using (var model = SyntheticBatches.Model(Interrupted))
        using (var objective = new CrossEntropyObjective())
            Assert.Throws<IOException>(() => Trainer.Run(Interrupted, model, objective, SyntheticBatches.Source(k => k == 7), null, TextWriter.Null));
        Assert.Equal(new[] { 3, 6 }, new CheckpointStore(Interrupted.RunDirectory).List().Select(c => c.Step));
        Template = Path.Combine(_root, "template");
        Directory.Move(Interrupted.RunDirectory, Template);
    }

    public Dictionary<string, float[]> Weights { get; }

    /// <summary>The config of the run killed in step 8; its folder is free for a test to copy <see cref="Template"/> into.</summary>
    public TrainConfig Interrupted { get; }

    /// <summary>The killed run's folder, moved aside.</summary>
    public string Template { get; }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }
}

/// <summary>
/// Checkpoints that are damaged (truncated, overwritten, unparsable), written to a full disk, left half-written,
/// or moved with their run folder: the run resumes from the newest intact checkpoint to the weights of an
/// uninterrupted run, and every failure names the file.
/// </summary>
[Collection(ContrastSeg.Tests.Models.ModelsCollection.Name)]
public sealed class CheckpointTests : IDisposable, IClassFixture<ReferenceRun>
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "contrastseg-checkpoints-" + Guid.NewGuid().ToString("N"));
    private readonly ReferenceRun _reference;
    private readonly ITestOutputHelper _output;

    public CheckpointTests(ReferenceRun reference, ITestOutputHelper output)
    {
        TorchFixture.Init();
        _reference = reference;
        _output = output;
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
        if (Directory.Exists(_reference.Interrupted.RunDirectory)) Directory.Delete(_reference.Interrupted.RunDirectory, true);
    }

    internal static Dictionary<string, float[]> WeightsOf(DeepLabV3Plus model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float32).data<float>().ToArray());

    /// <summary>
    /// The run killed in its last step (checkpoints at steps 3 and 6), copied back to the folder it was written in
    /// (tests of a class run one at a time; <see cref="Dispose"/> removes it).
    /// </summary>
    private TrainConfig Interrupted()
    {
        var config = _reference.Interrupted;
        Copy(_reference.Template, config.RunDirectory);
        return config;
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.GetDirectories(from)) Copy(dir, Path.Combine(to, Path.GetFileName(dir)));
    }

    /// <summary>Runs <paramref name="config"/> again as a new process would (fresh weights, other RNG state).</summary>
    private static (TrainResult Result, Dictionary<string, float[]> Weights) Rerun(TrainConfig config, TextWriter log,
        Func<long, IEnumerable<ContrastSeg.Data.Batch>>? source = null)
    {
        manual_seed(12345);
        using var model = new DeepLabV3Plus(config.Model.ToOptions(SyntheticBatches.NumClasses));
        using var objective = new CrossEntropyObjective();
        var result = Trainer.Run(config, model, objective, source ?? SyntheticBatches.Source(), null, log);
        return (result, WeightsOf(model));
    }

    private void AssertReferenceWeights(Dictionary<string, float[]> weights)
    {
        foreach (var (name, values) in _reference.Weights)
            Assert.True(values.SequenceEqual(weights[name]), $"{name} differs from the uninterrupted run");
    }

    private static string Step(TrainConfig config, int step) => Path.Combine(new CheckpointStore(config.RunDirectory).Directory, $"step-{step:D7}");

    /// <summary>Removes the checksums from every state.json, as checkpoints written before they were recorded have none.</summary>
    private static void AsOldCheckpoints(TrainConfig config)
    {
        foreach (var (_, path) in new CheckpointStore(config.RunDirectory).List())
        {
            var file = Path.Combine(path, "state.json");
            var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
            json.Remove("Files"); // (the test then checks that the resume says so)
            File.WriteAllText(file, json.ToJsonString());
        }
    }

    private static void Damage(string checkpoint, string how)
    {
        var (file, kind) = how.Split(':') is [var f, var k] ? (f, k) : (how, "truncate");
        var path = Path.Combine(checkpoint, file);
        var bytes = File.ReadAllBytes(path);
        switch (kind)
        {
            case "truncate": File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]); break;
            case "flip": bytes[bytes.Length / 2] ^= 0x40; File.WriteAllBytes(path, bytes); break; // same size, one value changed
            default: throw new ArgumentException(how);
        }
    }

    [Theory]
    [InlineData("model.bin", false, "bytes")]
    [InlineData("model.bin:flip", false, "SHA-256")]
    [InlineData("torch_rng.bin", false, "bytes")] // before: libtorch aborted the process (rc 134)
    [InlineData("state.json", false, "not a valid checkpoint record")]
    [InlineData("model.bin", true, "cannot be loaded")]
    [InlineData("optimizer.bin", true, "optimiser state")]
    [InlineData("torch_rng.bin", true, "a CPU generator's state is")]
    public void A_damaged_latest_checkpoint_is_skipped_naming_the_file_and_the_run_resumes_from_the_previous_one(string damage, bool old, string reason)
    {
        var config = Interrupted();
        if (old) AsOldCheckpoints(config);
        var latest = Step(config, 6);
        Damage(latest, damage);

        var log = new StringWriter();
        var (result, weights) = Rerun(config, log);

        var output = log.ToString();
        _output.WriteLine(output);
        Assert.Equal(3, result.ResumedFrom);
        Assert.Equal(8, result.Steps);
        Assert.Contains("skipped checkpoint step-0000006", output);
        Assert.Contains(Path.Combine(latest, damage.Split(':')[0]), output);
        Assert.Contains(reason, output);
        Assert.Contains("step-0000006.damaged", output);
        Assert.True(Directory.Exists(latest + ".damaged"), "the damaged checkpoint is kept for inspection");
        if (old) Assert.Contains($"{Step(config, 3)} was written without checksums", output);
        AssertReferenceWeights(weights);
    }

    [Fact]
    public void When_no_checkpoint_can_be_restored_the_error_names_each_one()
    {
        var config = Interrupted();
        Damage(Step(config, 3), "model.bin");
        Damage(Step(config, 6), "optimizer.bin");

        var ex = Assert.Throws<InvalidDataException>(() => Rerun(config, TextWriter.Null));
        _output.WriteLine(ex.Message);
        Assert.Contains(Path.Combine(Step(config, 3), "model.bin"), ex.Message);
        Assert.Contains(Path.Combine(Step(config, 6), "optimizer.bin"), ex.Message);
        Assert.Contains("start this run from step 0", ex.Message);
    }

    [Fact]
    public void Weights_for_evaluation_are_verified_before_they_are_loaded()
    {
        var config = SyntheticBatches.Config(_root, steps: 3) with { Name = "evaluated" };
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
            Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
        var best = new CheckpointStore(config.RunDirectory).BestDirectory;
        Damage(best, "model.bin:flip"); // before: loaded as if intact, one weight silently changed

        using var reloaded = SyntheticBatches.Model(config);
        var ex = Assert.Throws<InvalidDataException>(() => CheckpointStore.LoadWeights(config.RunDirectory, reloaded));
        _output.WriteLine(ex.Message);
        Assert.Contains(Path.Combine(best, "model.bin"), ex.Message);
        Assert.Contains("SHA-256", ex.Message);
    }

    /// <summary>A file on a disk with <paramref name="free"/> bytes left: writes past that fail as on a full disk.</summary>
    private sealed class FullDiskStream(string path, long free) : Stream
    {
        private readonly FileStream _file = new(path, FileMode.CreateNew, FileAccess.Write);
        private long _written;

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var fits = (int)Math.Min(buffer.Length, free - _written);
            _file.Write(buffer[..fits]);
            _written += fits;
            if (fits < buffer.Length) throw new IOException($"No space left on device : '{_file.Name}'", 28);
        }

        public override void Flush() => _file.Flush();
        protected override void Dispose(bool disposing)
        {
            if (disposing) _file.Dispose();
            base.Dispose(disposing);
        }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _written;
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    [Fact]
    public void A_full_disk_while_checkpointing_is_a_clear_error_that_leaves_no_partial_folder_and_the_rerun_resumes()
    {
        var config = SyntheticBatches.Config(_root) with { Name = "disk-full" };
        using (CheckpointStore.RedirectWrites(path => path.Contains(".tmp-0000006") && path.EndsWith("optimizer.bin")
                   ? new FullDiskStream(path, 1000) : new FileStream(path, FileMode.CreateNew, FileAccess.Write)))
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
        {
            var ex = Assert.Throws<CheckpointWriteException>(() => Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null));
            _output.WriteLine(ex.Message);
            Assert.Contains("the step-6 checkpoint", ex.Message);
            Assert.Contains("optimizer.bin (optimiser state)", ex.Message);
            Assert.Contains("No space left on device", ex.Message);
            Assert.Contains("step-0000003", ex.Message); // the checkpoint a rerun resumes from
        }
        var checkpoints = new CheckpointStore(config.RunDirectory).Directory;
        Assert.Empty(Directory.GetDirectories(checkpoints, ".tmp-*"));

        var (result, weights) = Rerun(config, TextWriter.Null);
        Assert.Equal(3, result.ResumedFrom);
        AssertReferenceWeights(weights);
    }

    [Fact]
    public void Partial_folders_left_by_a_failed_write_are_removed_when_a_run_starts()
    {
        var config = Interrupted();
        var checkpoints = new CheckpointStore(config.RunDirectory).Directory;
        // What a write cut off by a full disk (or a kill) leaves: a temporary folder with part of a checkpoint.
        var stale = Directory.CreateDirectory(Path.Combine(checkpoints, ".tmp-0000009-0123456789abcdef")).FullName;
        File.WriteAllBytes(Path.Combine(stale, "model.bin"), new byte[4096]);

        // On the full disk the rerun fails again at once (here: its first batch), before any checkpoint is written.
        Assert.Throws<IOException>(() => Rerun(config, TextWriter.Null, SyntheticBatches.Source(k => k >= 6)));
        Assert.False(Directory.Exists(stale), "the partial folder still holds its space");
    }

    [Fact]
    public void A_best_copy_cut_off_between_its_renames_is_put_back()
    {
        var config = SyntheticBatches.Config(_root, steps: 3) with { Name = "best" };
        using (var model = SyntheticBatches.Model(config))
        using (var objective = new CrossEntropyObjective())
            Trainer.Run(config, model, objective, SyntheticBatches.Source(), null, TextWriter.Null);
        var store = new CheckpointStore(config.RunDirectory);
        Directory.Move(store.BestDirectory, store.BestDirectory + ".old"); // killed after the first rename of a new best copy

        Rerun(config, TextWriter.Null);
        Assert.Equal(store.BestDirectory, CheckpointStore.Resolve(config.RunDirectory));
        Assert.False(Directory.Exists(store.BestDirectory + ".old"));
    }

    [Fact]
    public void A_run_folder_moved_to_another_disk_resumes_under_the_new_output_root()
    {
        var newRoot = Path.Combine(_root, "other-disk");
        var moved = _reference.Interrupted with { OutputRoot = newRoot };
        Copy(_reference.Template, moved.RunDirectory); // as `mv` to another disk would leave it

        var (result, weights) = Rerun(moved, TextWriter.Null);
        Assert.Equal(6, result.ResumedFrom);
        AssertReferenceWeights(weights);
    }
}
