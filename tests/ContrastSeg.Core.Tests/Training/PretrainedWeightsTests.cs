using ContrastSeg.Models;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Training;

public sealed class PretrainedWeightsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("contrastseg-weights-").FullName;

    public PretrainedWeightsTests() => TorchFixture.Init();

    public void Dispose() => Directory.Delete(_dir, true);

    private static ResNetEncoder Encoder(long seed)
    {
        manual_seed(seed);
        return new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet18, 16, 0.25));
    }

    [Theory]
    [InlineData("weights.safetensors")]
    [InlineData("weights.pth")]
    public void Torchvision_style_files_load_one_to_one(string file)
    {
        using var source = Encoder(1);
        using var target = Encoder(2);
        var path = Path.Combine(_dir, file);
        if (file.EndsWith(".safetensors")) source.save_safetensors(path); else source.save_py(path);

        var report = PretrainedWeights.LoadEncoder(target, path, strict: true);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        Assert.Equal(source.state_dict().Count, report.Loaded.Count);
        foreach (var (key, value) in source.state_dict())
            Assert.True(value.equal(target.state_dict()[key]).all().item<bool>(), key);
    }

    [Fact]
    public void Missing_unexpected_and_mismatched_keys_are_reported_by_name()
    {
        using var source = Encoder(1);
        using var target = Encoder(2);
        var dict = source.state_dict().ToDictionary(kv => "module." + kv.Key, kv => kv.Value);
        dict.Remove("module.layer4.1.bn2.weight");
        dict["module.fc.weight"] = zeros(1000, 128);
        dict["module.conv1.weight"] = zeros(16, 3, 3, 3);
        var path = Path.Combine(_dir, "partial.safetensors");
        Safetensors.SaveStateDict(path, dict);

        var report = PretrainedWeights.LoadEncoder(target, path);
        Assert.Equal(new[] { "layer4.1.bn2.weight" }, report.Missing);
        Assert.Equal(new[] { "fc.weight" }, report.Unexpected);
        Assert.Single(report.ShapeMismatched);
        Assert.StartsWith("conv1.weight: file [16, 3, 3, 3] vs model [16, 3, 7, 7]", report.ShapeMismatched[0]);
        Assert.Contains("layer4.1.bn2.weight", report.ToString());
        var ex = Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadEncoder(target, path, strict: true));
        Assert.Contains("conv1.weight", ex.Message);
    }

    [Fact]
    public void A_missing_or_unreadable_file_is_named()
    {
        using var target = Encoder(2);
        Assert.Contains("nope.pth", Assert.Throws<FileNotFoundException>(() => PretrainedWeights.LoadEncoder(target, Path.Combine(_dir, "nope.pth"))).Message);
        var junk = Path.Combine(_dir, "junk.pth");
        File.WriteAllText(junk, "not a pickle");
        Assert.Contains("junk.pth", Assert.Throws<InvalidDataException>(() => PretrainedWeights.LoadEncoder(target, junk)).Message);
    }
}
