using System.IO.Compression;
using System.Text;
using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

/// <summary>Weight files read through <see cref="WeightFile"/>: what torch.save writes loads; crafted files are refused without running or allocating.</summary>
public sealed class WeightFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("contrastseg-weightfile-").FullName;

    public WeightFileTests() => TorchFixture.Init();

    public void Dispose() => Directory.Delete(_dir, true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static ResNetEncoder Encoder() => new(new EncoderOptions(ResNetDepth.ResNet18, 16, 0.25));

    [Fact]
    public void A_file_written_like_torch_save_loads_views_and_scalars()
    {
        var path = PathOf("views.pth");
        var entries = new[]
        {
            TorchSaveFile.Floats("conv.weight", "0", 2, 3),
            new TorchSaveFile.Entry("conv.weight_t", "FloatStorage", "0", 6, 0, new long[] { 3, 2 }, new long[] { 1, 3 }), // transposed view
            new TorchSaveFile.Entry("row", "FloatStorage", "0", 6, 3, new long[] { 3 }, new long[] { 1 }),              // second row
            new TorchSaveFile.Entry("bn.num_batches_tracked", "LongStorage", "1", 1, 0, Array.Empty<long>(), Array.Empty<long>()),
        };
        TorchSaveFile.Write(path, TorchSaveFile.Pickle(entries), new Dictionary<string, byte[]>
        {
            ["0"] = TorchSaveFile.Counting(6), ["1"] = BitConverter.GetBytes(7L),
        });

        using var file = WeightFile.Open(path);
        Assert.Equal(4, file.Tensors.Count);
        using var w = file.Read("conv.weight");
        using var t = file.Read("conv.weight_t");
        using var row = file.Read("row");
        using var n = file.Read("bn.num_batches_tracked");
        Assert.Equal(new float[] { 0, 1, 2, 3, 4, 5 }, w.data<float>().ToArray());
        Assert.Equal(new long[] { 3, 2 }, t.shape);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, t.data<float>().ToArray());
        Assert.Equal(new float[] { 3, 4, 5 }, row.data<float>().ToArray());
        Assert.Equal(ScalarType.Int64, n.dtype);
        Assert.Empty(n.shape);
        Assert.Equal(7L, n.item<long>());
    }

    /// <summary>data.pkl: <c>os.system('touch &lt;marker&gt;')</c> as protocol 2 (GLOBAL + REDUCE) or protocol 4 (STACK_GLOBAL).</summary>
    private static byte[] CallingPickle(string module, string function, string argument, bool stackGlobal)
    {
        var p = new MemoryStream();
        void Text(string s) { p.WriteByte((byte)'X'); var b = Encoding.UTF8.GetBytes(s); p.Write(BitConverter.GetBytes(b.Length)); p.Write(b); }
        p.WriteByte(0x80); p.WriteByte(stackGlobal ? (byte)4 : (byte)2);
        if (stackGlobal) { Text(module); Text(function); p.WriteByte(0x93); }
        else p.Write(Encoding.ASCII.GetBytes($"c{module}\n{function}\n"));
        p.WriteByte((byte)'('); Text(argument); p.WriteByte((byte)'t');
        p.WriteByte((byte)'R');
        p.WriteByte((byte)'.');
        return p.ToArray();
    }

    [Theory]
    [InlineData("posix", "system", false)]
    [InlineData("builtins", "exec", true)]
    public void A_pickle_that_calls_a_function_is_refused_and_runs_nothing(string module, string function, bool stackGlobal)
    {
        var marker = PathOf("ran");
        var argument = function == "system" ? $"touch {marker}" : $"open('{marker}', 'w').close()";
        var path = PathOf("evil.pth");
        TorchSaveFile.Write(path, CallingPickle(module, function, argument, stackGlobal), new Dictionary<string, byte[]>());

        using var encoder = Encoder();
        var ex = Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadEncoder(encoder, path));
        Assert.Contains("evil.pth", ex.Message);
        Assert.Contains($"{module}.{function}", ex.Message);
        Assert.Contains("nothing in it was run", ex.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void A_storage_declared_larger_than_its_record_is_refused_naming_the_tensor()
    {
        // conv1.weight fits the encoder by shape, but its record holds 10 bytes of the 9,408 declared
        // (before: "Attempted to read past the end of the stream", naming neither the tensor nor the sizes).
        using var encoder = Encoder();
        var shape = encoder.state_dict()["conv1.weight"].shape;
        var entry = TorchSaveFile.Floats("conv1.weight", "0", shape);
        var path = PathOf("short.pth");
        TorchSaveFile.Write(path, TorchSaveFile.Pickle(new[] { entry }), new Dictionary<string, byte[]> { ["0"] = new byte[10] });

        var ex = Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadEncoder(encoder, path));
        Assert.Contains("short.pth", ex.Message);
        Assert.Contains("conv1.weight", ex.Message);
        Assert.Contains($"{entry.StorageElements * 4:N0} bytes", ex.Message);
    }

    [Fact]
    public void A_safetensors_header_or_tensor_larger_than_the_file_is_refused_before_allocating()
    {
        var header = PathOf("header.safetensors");
        File.WriteAllBytes(header, BitConverter.GetBytes(1UL << 30).Concat("{}"u8.ToArray()).ToArray()); // declares a 1 GB header
        using var encoder = Encoder();
        var ex = Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadEncoder(encoder, header));
        Assert.Contains("header.safetensors", ex.Message);
        Assert.Contains("header declares 1,073,741,824 bytes", ex.Message);

        var huge = PathOf("huge.safetensors");
        var json = """{"conv1.weight":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,4]}}""";
        File.WriteAllBytes(huge, BitConverter.GetBytes((ulong)json.Length).Concat(Encoding.ASCII.GetBytes(json)).Concat(new byte[4]).ToArray());
        ex = Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadEncoder(encoder, huge));
        Assert.Contains("huge.safetensors", ex.Message);
        Assert.Contains("conv1.weight", ex.Message);
        Assert.Contains("40,000,000,000 bytes", ex.Message);
    }

    [Fact]
    public void A_legacy_pytorch_file_is_named_as_such()
    {
        var path = PathOf("legacy.pth");
        File.WriteAllBytes(path, new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8 });
        using var encoder = Encoder();
        var ex = Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadEncoder(encoder, path));
        Assert.Contains("legacy.pth", ex.Message);
        Assert.Contains("legacy", ex.Message);
    }
}

[Collection(nameof(ContrastSeg.Tests.Losses.MemoryMeasurement))]
public sealed class WeightFileMemoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("contrastseg-weightbomb-").FullName;
    private readonly ITestOutputHelper _output;

    public WeightFileMemoryTests(ITestOutputHelper output)
    {
        _output = output;
        TorchFixture.Init();
    }

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void A_small_pth_with_a_compressed_400_MB_storage_costs_only_the_tensors_the_encoder_takes()
    {
        // As in issue 12: ~400 KB on disk, one 100M-float storage (400 MB of zeros, deflated). conv1.weight is a view
        // of its first elements and fits the encoder; layer1.0.conv1.weight claims the whole storage (a shape mismatch).
        using var encoder = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet18, 16, 0.25));
        var conv1 = encoder.state_dict()["conv1.weight"].shape;
        const long storageElements = 100_000_000;
        var fits = TorchSaveFile.Floats("conv1.weight", "0", conv1) with { StorageElements = storageElements };
        var claims = new TorchSaveFile.Entry("layer1.0.conv1.weight", "FloatStorage", "0", storageElements, 0, new[] { storageElements }, new long[] { 1 });
        var path = Path.Combine(_dir, "bomb.pth");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("archive/data.pkl").Open()) s.Write(TorchSaveFile.Pickle(new[] { fits, claims }));
            using var data = zip.CreateEntry("archive/data/0", CompressionLevel.Optimal).Open();
            var zeros = new byte[1 << 20];
            for (var written = 0L; written < storageElements * 4; written += zeros.Length) data.Write(zeros, 0, (int)Math.Min(zeros.Length, storageElements * 4 - written));
        }
        var fileBytes = new FileInfo(path).Length;

        ProcessMemory.FollowLiveMemory();
        var baseline = ProcessMemory.StartMeasuring();
        var report = PretrainedWeights.LoadEncoder(encoder, path);
        var extra = ProcessMemory.PeakBytes() - baseline;

        _output.WriteLine($"file {fileBytes / 1e3:F0} KB, declared storage {storageElements * 4 / 1e6:F0} MB, peak extra RSS {extra / 1e6:F1} MB");
        Assert.True(fileBytes < 2_000_000, $"the crafted file is {fileBytes:N0} bytes");
        Assert.Equal(new[] { "conv1.weight" }, report.Loaded);
        Assert.Single(report.ShapeMismatched);
        Assert.StartsWith("layer1.0.conv1.weight: file [100000000]", report.ShapeMismatched[0]);
        Assert.True(extra < 50_000_000, $"reading a {fileBytes / 1e3:F0} KB file raised memory by {extra / 1e6:F0} MB");
    }
}
