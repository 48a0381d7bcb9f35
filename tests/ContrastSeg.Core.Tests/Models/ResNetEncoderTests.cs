using ContrastSeg.Models;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Models;

[Collection(ModelsCollection.Name)]
public sealed class ResNetEncoderTests
{
    // torchvision resnet{18,34,50,101} parameter counts (11,689,512 / 21,797,672 / 25,557,032 / 44,549,160)
    // minus fc: 512*1000+1000 = 513,000 for the BasicBlock nets, 2048*1000+1000 = 2,049,000 for the Bottleneck nets.
    [Theory]
    [InlineData(ResNetDepth.ResNet18, 11_176_512L)]
    [InlineData(ResNetDepth.ResNet34, 21_284_672L)]
    [InlineData(ResNetDepth.ResNet50, 23_508_032L)]
    [InlineData(ResNetDepth.ResNet101, 42_500_160L)]
    public void Parameter_count_equals_torchvision_without_fc(ResNetDepth depth, long expected)
    {
        using var encoder = new ResNetEncoder(new EncoderOptions(depth));
        Assert.Equal(expected, encoder.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void ResNet50_state_dict_keys_match_torchvision()
    {
        using var encoder = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet50, WidthMultiplier: 0.125));
        var keys = encoder.state_dict().Keys.ToHashSet();
        string[] expected =
        {
            "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
            "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.conv2.weight", "layer1.0.conv3.weight", "layer1.0.bn3.bias",
            "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_var", "layer1.2.bn3.running_mean",
            "layer2.0.downsample.0.weight", "layer3.5.conv2.weight", "layer4.0.downsample.1.weight", "layer4.2.conv3.weight",
        };
        foreach (var key in expected) Assert.Contains(key, keys);
        Assert.DoesNotContain(keys, k => k.StartsWith("fc.", StringComparison.Ordinal) || k.StartsWith("avgpool", StringComparison.Ordinal));
        Assert.DoesNotContain("layer1.1.downsample.0.weight", keys);
        // torchvision resnet50: 320 entries, 2 of them fc.*
        Assert.Equal(318, keys.Count);
    }

    [Fact]
    public void ResNet18_state_dict_keys_match_torchvision()
    {
        using var encoder = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet18, WidthMultiplier: 0.125));
        var keys = encoder.state_dict().Keys.ToHashSet();
        foreach (var key in new[] { "conv1.weight", "layer1.1.conv2.weight", "layer2.0.downsample.0.weight", "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.running_var" })
            Assert.Contains(key, keys);
        Assert.DoesNotContain("layer1.0.downsample.0.weight", keys); // 64 -> 64, stride 1: no projection
        Assert.DoesNotContain(keys, k => k.StartsWith("fc.", StringComparison.Ordinal));
        Assert.Equal(120, keys.Count); // torchvision resnet18: 122 entries, 2 of them fc.*
    }

    [Fact]
    public void State_dict_round_trips_with_strict_key_matching()
    {
        var options = new EncoderOptions(ResNetDepth.ResNet50, WidthMultiplier: 0.125);
        using var source = new ResNetEncoder(options);
        using var target = new ResNetEncoder(options);
        var (missing, unexpected) = target.load_state_dict(source.state_dict(), strict: true);
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        var s = source.state_dict();
        var t = target.state_dict();
        Assert.True(s["layer3.1.conv2.weight"].equal(t["layer3.1.conv2.weight"]).all().item<bool>());
    }

    [Theory]
    [InlineData(16, new long[] { 1, 1, 1, 2 }, new long[] { 2, 2, 1, 1 })]
    [InlineData(8, new long[] { 1, 2, 2, 4 }, new long[] { 2, 1, 1, 1 })]
    public void Dilation_follows_replace_stride_with_dilation(int outputStride, long[] firstAndRestDilation, long[] strides)
    {
        // firstAndRestDilation = layer3.0, layer3.1, layer4.0, layer4.1 dilations of the 3x3 conv;
        // strides = layer2.0, layer3.0, layer4.0 3x3 conv strides and layer4.0's downsample stride.
        using var encoder = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet50, outputStride, 0.125));
        var convs = encoder.named_modules().Where(m => m.module is Conv2d).ToDictionary(m => m.name, m => (Conv2d)m.module);
        Assert.Equal(firstAndRestDilation, new[] { "layer3.0", "layer3.1", "layer4.0", "layer4.1" }.Select(b => convs[b + ".conv2"].dilation![0]));
        Assert.Equal(firstAndRestDilation, new[] { "layer3.0", "layer3.1", "layer4.0", "layer4.1" }.Select(b => convs[b + ".conv2"].padding![0]));
        Assert.Equal(strides, new[] { "layer2.0.conv2", "layer3.0.conv2", "layer4.0.conv2", "layer4.0.downsample.0" }.Select(n => convs[n].stride![0]));
    }

    [Theory]
    [InlineData(ResNetDepth.ResNet18, 8)]
    [InlineData(ResNetDepth.ResNet18, 16)]
    [InlineData(ResNetDepth.ResNet50, 8)]
    [InlineData(ResNetDepth.ResNet50, 16)]
    public void Outputs_are_at_stride_4_and_the_output_stride(ResNetDepth depth, int outputStride)
    {
        using var encoder = new ResNetEncoder(new EncoderOptions(depth, outputStride, 0.25));
        encoder.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var output = encoder.call(randn(2, 3, 33, 47));
        Assert.Equal(new long[] { 2, encoder.LowLevelChannels, 9, 12 }, output.LowLevel.shape);
        Assert.Equal(new long[] { 2, encoder.HighLevelChannels, Ceil(33, outputStride), Ceil(47, outputStride) }, output.HighLevel.shape);
        var expansion = depth == ResNetDepth.ResNet50 ? 4 : 1;
        Assert.Equal(16 * expansion, encoder.LowLevelChannels);
        Assert.Equal(128 * expansion, encoder.HighLevelChannels);
    }

    [Theory]
    [InlineData(32)]
    [InlineData(4)]
    [InlineData(0)]
    public void Unsupported_output_stride_is_rejected_naming_the_allowed_values(int outputStride)
    {
        var e = Assert.Throws<ArgumentException>(() => new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet18, outputStride)));
        Assert.Contains($"OutputStride = {outputStride}", e.Message);
        Assert.Contains("8 and 16", e.Message);
    }

    [Theory]
    [InlineData(ResNetDepth.ResNet18)]
    [InlineData(ResNetDepth.ResNet50)]
    public void Small_stem_keeps_full_resolution_into_layer1_and_reads_low_level_features_at_stride_4(ResNetDepth depth)
    {
        using var encoder = new ResNetEncoder(new EncoderOptions(depth, 8, 0.25, Stem: EncoderStem.Small));
        var convs = encoder.named_modules().Where(m => m.module is Conv2d).ToDictionary(m => m.name, m => (Conv2d)m.module);
        Assert.Equal(new long[] { 3, 3 }, convs["conv1"].kernel_size);
        Assert.Equal(1, convs["conv1"].stride![0]);
        Assert.DoesNotContain(encoder.named_modules(), m => m.module is MaxPool2d);
        Assert.Equal(3, encoder.LowLevelStage);
        encoder.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var output = encoder.call(randn(2, 3, 33, 47));
        var expansion = depth == ResNetDepth.ResNet50 ? 4 : 1;
        Assert.Equal(new long[] { 2, 64 * expansion, 9, 12 }, output.LowLevel.shape); // layer3 at stride 4
        Assert.Equal(new long[] { 2, 128 * expansion, 5, 6 }, output.HighLevel.shape); // layer4 at stride 8, not dilated
        Assert.All(new[] { "layer3.0.conv2", "layer4.0.conv2", "layer4.1.conv2" }, n => Assert.Equal(1, convs[n].dilation![0]));
    }

    [Fact]
    public void Small_stem_at_output_stride_16_is_rejected_naming_the_stem_and_the_allowed_stride()
    {
        var e = Assert.Throws<ArgumentException>(() => new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet18, 16, Stem: EncoderStem.Small)));
        Assert.Contains("OutputStride = 16", e.Message);
        Assert.Contains("Small stem", e.Message);
        Assert.Contains("allowed values are 8", e.Message);
    }

    [Fact]
    public void The_imagenet_stem_is_the_default_and_keeps_torchvision_names_and_counts()
    {
        using var a = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet50));
        using var b = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet50, Stem: EncoderStem.ImageNet));
        Assert.Equal(a.state_dict().Keys, b.state_dict().Keys);
        Assert.Equal(23_508_032L, a.parameters().Sum(p => p.numel()));
        using var small = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet50, 8, Stem: EncoderStem.Small));
        Assert.Equal(a.state_dict().Keys.OrderBy(k => k), small.state_dict().Keys.OrderBy(k => k)); // same names, conv1 3x3
    }

    [Fact]
    public void Width_multiplier_scales_base_widths_with_minimum_8()
    {
        Assert.Equal(8, new EncoderOptions(ResNetDepth.ResNet18, WidthMultiplier: 0.01).Scale(64));
        Assert.Equal(16, new EncoderOptions(ResNetDepth.ResNet18, WidthMultiplier: 0.25).Scale(64));
        Assert.Equal(43, new EncoderOptions(ResNetDepth.ResNet18, WidthMultiplier: 1.0 / 3).Scale(128));
        Assert.Throws<ArgumentException>(() => new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet18, WidthMultiplier: 0)));
        Assert.Throws<ArgumentException>(() => new ResNetEncoder(new EncoderOptions((ResNetDepth)42)));
    }

    [Fact]
    public void Forward_keeps_only_its_two_outputs_alive()
    {
        using var encoder = new ResNetEncoder(new EncoderOptions(ResNetDepth.ResNet50, 8, 0.125));
        using var x = randn(1, 3, 32, 32);
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var output = encoder.call(x); // no scope: every intermediate must be freed by the encoder itself
        Assert.Equal(before + 2, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        output.Dispose();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    internal static long Ceil(long size, long stride) => (size + stride - 1) / stride;
}
