using ContrastSeg.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Models;

[Collection(ModelsCollection.Name)]
public sealed class DeepLabV3PlusTests
{
    private static SegmentationModelOptions Tiny(ResNetDepth depth = ResNetDepth.ResNet18, int outputStride = 16, double width = 0.125, int numClasses = 5, EncoderStem stem = EncoderStem.ImageNet) =>
        new(new EncoderOptions(depth, outputStride, width, Stem: stem), numClasses,
            AsppChannels: 16, LowLevelChannels: 8, DecoderChannels: 24,
            Projection: new ProjectionHeadOptions(Layers: 2, Channels: 12));

    public static TheoryData<EncoderStem, ResNetDepth, int, double, int, int> ShapeCases()
    {
        var data = new TheoryData<EncoderStem, ResNetDepth, int, double, int, int>();
        foreach (var stem in Enum.GetValues<EncoderStem>())
            foreach (var depth in Enum.GetValues<ResNetDepth>())
                foreach (var os in EncoderOptions.SupportedOutputStridesFor(stem))
                {
                    var width = depth is ResNetDepth.ResNet50 or ResNetDepth.ResNet101 ? 0.125 : 0.25;
                    data.Add(stem, depth, os, width, 32, 32);
                    data.Add(stem, depth, os, width, 33, 47);
                }
        return data;
    }

    [Theory]
    [MemberData(nameof(ShapeCases))]
    public void Shapes_for_every_stem_depth_and_output_stride(EncoderStem stem, ResNetDepth depth, int outputStride, double width, int height, int widthPx)
    {
        using var model = new DeepLabV3Plus(Tiny(depth, outputStride, width, stem: stem));
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var images = randn(2, 3, height, widthPx);

        var features = model.Features(images);
        var (h4, w4) = (ResNetEncoderTests.Ceil(height, 4), ResNetEncoderTests.Ceil(widthPx, 4));
        Assert.Equal(new long[] { 2, model.FeatureChannels, h4, w4 }, features.shape);

        var embeddings = model.Project(features);
        Assert.Equal(new long[] { 2, model.ProjectionChannels, h4, w4 }, embeddings.shape);
        var norms = embeddings.norm(1, keepdim: false, p: 2);
        Assert.True(norms.sub(1).abs().max().item<float>() < 1e-5f);

        Assert.Equal(new long[] { 2, model.NumClasses, h4, w4 }, model.Classify(features).shape);
        Assert.Equal(new long[] { 2, model.NumClasses, height, widthPx }, model.call(images).shape);
        Assert.Equal(outputStride, model.OutputStride);
    }

    [Fact]
    public void Wrong_channel_count_names_expected_and_actual_shape()
    {
        using var model = new DeepLabV3Plus(Tiny());
        using var images = randn(2, 1, 64, 64);
        var e = Assert.Throws<ArgumentException>(() => model.call(images));
        Assert.Contains("[B, 3, H, W] float32 images", e.Message);
        Assert.Contains("got [2, 1, 64, 64]", e.Message);
    }

    [Fact]
    public void Three_dimensional_input_is_rejected()
    {
        using var model = new DeepLabV3Plus(Tiny());
        using var images = randn(3, 64, 64);
        var e = Assert.Throws<ArgumentException>(() => model.Features(images));
        Assert.Contains("[B, 3, H, W]", e.Message);
        Assert.Contains("got [3, 64, 64]", e.Message);
    }

    [Fact]
    public void Input_smaller_than_the_output_stride_is_rejected()
    {
        using var model = new DeepLabV3Plus(Tiny(outputStride: 16));
        using var images = randn(1, 3, 8, 64);
        var e = Assert.Throws<ArgumentException>(() => model.call(images));
        Assert.Contains("H, W >= 16", e.Message);
        Assert.Contains("got [1, 3, 8, 64]", e.Message);
    }

    [Fact]
    public void Non_float32_input_is_rejected()
    {
        using var model = new DeepLabV3Plus(Tiny());
        using var images = zeros(new long[] { 1, 3, 32, 32 }, dtype: ScalarType.Int64);
        var e = Assert.Throws<ArgumentException>(() => model.call(images));
        Assert.Contains("float32", e.Message);
        Assert.Contains("got [1, 3, 32, 32] int64", e.Message);
    }

    [Fact]
    public void Heads_check_the_feature_channels()
    {
        using var model = new DeepLabV3Plus(Tiny());
        using var features = randn(2, 64, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => model.Project(features));
        Assert.Contains("expected decoder features with 24 channels", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("got 64 channels", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.Classify(features));
        Assert.Contains("24 channels", e.Message);
    }

    [Fact]
    public void Output_stride_32_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new DeepLabV3Plus(Tiny(outputStride: 32)));
        Assert.Contains("8 and 16", e.Message);
    }

    [Fact]
    public void Invalid_options_are_rejected()
    {
        Assert.Contains("Layers = 0", Assert.Throws<ArgumentException>(() => new ProjectionHead(8, new ProjectionHeadOptions(Layers: 0))).Message);
        Assert.Contains("NumClasses = 0", Assert.Throws<ArgumentException>(() => new DeepLabV3Plus(Tiny(numClasses: 0))).Message);
        Assert.Contains("AsppDropout", Assert.Throws<ArgumentException>(() => new DeepLabV3Plus(Tiny() with { AsppDropout = 1.0 })).Message);
    }

    [Fact]
    public void Eval_mode_batch_1_forward_works()
    {
        using var model = new DeepLabV3Plus(SegmentationModelOptions.CpuSmall(4));
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.call(randn(1, 3, 64, 64));
        Assert.Equal(new long[] { 1, 4, 64, 64 }, logits.shape);
        Assert.True(logits.isfinite().all().item<bool>());
    }

    [Fact]
    public void Train_mode_batch_1_forward_backward_works_and_reaches_every_trained_parameter()
    {
        // The ASPP pooling branch sees one value per channel at batch 1; it has no BatchNorm, so this works.
        random.manual_seed(0);
        using var model = new DeepLabV3Plus(SegmentationModelOptions.CpuSmall(4));
        model.train();
        using var scope = NewDisposeScope();
        var images = randn(1, 3, 64, 64);
        var target = randint(0, 4, new long[] { 1, 64, 64 });
        var features = model.Features(images);
        var logits = nn.functional.interpolate(model.Classify(features), new long[] { 64, 64 }, mode: InterpolationMode.Bilinear, align_corners: false);
        var loss = nn.functional.cross_entropy(logits, target) + model.Project(features).mean();
        loss.backward();
        Assert.True(loss.isfinite().item<bool>());
        foreach (var (name, p) in model.named_parameters())
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"no gradient reached {name}");
    }

    [Fact]
    public void No_tensor_outlives_a_training_step()
    {
        // ResNet-18 at OS 8: dilated stages and downsample blocks, cheap enough for 3 steps on 2 cores.
        using var model = new DeepLabV3Plus(Tiny(ResNetDepth.ResNet18, 8, 0.125));
        model.train();
        using var images = randn(2, 3, 32, 32);
        using var target = randint(0, 5, new long[] { 2, 32, 32 });
        using var optimizer = optim.SGD(model.parameters(), 0.01);

        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var features = model.Features(images);
            var loss = nn.functional.cross_entropy(model.call(images), target) + model.Project(features).square().mean();
            loss.backward();
            optimizer.step();
        }

        Step(); // the first step lets the optimiser and autograd allocate what they keep
        var baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 2; i++)
        {
            Step();
            Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }

    [Fact]
    public void Public_methods_leave_only_their_result_alive_without_a_caller_scope()
    {
        using var model = new DeepLabV3Plus(Tiny(ResNetDepth.ResNet34, 16, 0.125));
        model.train();
        using var images = randn(2, 3, 32, 32);
        var stats = DisposeScopeManager.Statistics;

        var before = stats.ThreadTotalLiveCount;
        using var features = model.Features(images);
        Assert.Equal(before + 1, stats.ThreadTotalLiveCount);
        using var embeddings = model.Project(features);
        Assert.Equal(before + 2, stats.ThreadTotalLiveCount);
        using var logits = model.Classify(features);
        Assert.Equal(before + 3, stats.ThreadTotalLiveCount);
        using var upsampled = model.call(images);
        Assert.Equal(before + 4, stats.ThreadTotalLiveCount);
    }

    [Fact]
    public void Parameter_groups_split_off_the_heads()
    {
        using var model = new DeepLabV3Plus(Tiny());
        var all = model.named_parameters().ToList();
        var exceptProjection = model.ParametersExceptProjection().ToHashSet(ReferenceEqualityComparer.Instance);
        var exceptClassifier = model.ParametersExceptClassifier().ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in all)
        {
            Assert.Equal(!name.StartsWith("projection.", StringComparison.Ordinal), exceptProjection.Contains(p));
            Assert.Equal(!name.StartsWith("classifier.", StringComparison.Ordinal), exceptClassifier.Contains(p));
        }
        Assert.Contains(all, p => p.name == "classifier.weight");
        Assert.Contains(all, p => p.name == "projection.head.0.weight");
        Assert.Contains(all, p => p.name == "backbone.layer4.1.conv2.weight");
        Assert.Contains(all, p => p.name == "aspp.convs.4.conv.bias");
        Assert.Contains(all, p => p.name == "aspp.project.0.weight");
        Assert.Contains(all, p => p.name == "decoder.project_low.0.weight");
        Assert.Equal(2, all.Count - exceptClassifier.Count);
        Assert.Equal(4, all.Count - exceptProjection.Count); // 2 layers without BatchNorm: weight + bias each
    }

    [Fact]
    public void ResetClassifier_reinitialises_in_place()
    {
        using var model = new DeepLabV3Plus(Tiny());
        var weight = model.named_parameters().Single(p => p.name == "classifier.weight").parameter;
        var bias = model.named_parameters().Single(p => p.name == "classifier.bias").parameter;
        using (no_grad())
        {
            weight.fill_(7);
            bias.fill_(7);
        }
        model.ResetClassifier();
        Assert.Same(weight, model.named_parameters().Single(p => p.name == "classifier.weight").parameter);
        var bound = 1 / Math.Sqrt(model.FeatureChannels);
        Assert.True(weight.abs().max().item<float>() <= bound + 1e-6);
        Assert.True(bias.abs().max().item<float>() <= bound + 1e-6);
        Assert.True(weight.std().item<float>() > 0);
    }

    [Fact]
    public void Presets_have_the_documented_layout()
    {
        var paper = SegmentationModelOptions.Paper(21);
        Assert.Equal(new EncoderOptions(ResNetDepth.ResNet50, 16, 1.0), paper.Encoder);
        Assert.Equal((256, 48, 256, 21), (paper.AsppChannels, paper.LowLevelChannels, paper.DecoderChannels, paper.NumClasses));
        Assert.Equal(new ProjectionHeadOptions(3, 256, false), paper.ProjectionOrDefault);

        using var small = DeepLabV3Plus.Create(SegmentationModelOptions.CpuSmall(3));
        Assert.Equal((32, 64, 3), (small.FeatureChannels, small.ProjectionChannels, small.NumClasses));
        Assert.Equal(EncoderStem.Small, small.Options.Encoder.Stem);
        Assert.Equal(64, small.Backbone.LowLevelChannels); // layer3, at stride 4 after the small stem
        Assert.Equal(128, small.Backbone.HighLevelChannels);
        // The training presets build the same models (ModelSettings.From), and the settings map back losslessly.
        Assert.Equal(SegmentationModelOptions.CpuSmall(3), ContrastSeg.Training.TrainPresets.Cpu(ContrastSeg.Training.TrainingStage.CrossEntropy).Model.ToOptions(3));
        Assert.Equal(paper, ContrastSeg.Training.TrainPresets.Get("voc", ContrastSeg.Training.TrainingStage.FineTune).Model.ToOptions(21));
        Assert.Equal(paper with { NumClasses = 19 }, ContrastSeg.Training.TrainPresets.Get("cityscapes", ContrastSeg.Training.TrainingStage.CrossEntropy).Model.ToOptions(19));
        Assert.Throws<ArgumentException>(() => ContrastSeg.Training.ModelSettings.From(paper with { Encoder = paper.Encoder with { InChannels = 1 } }));
    }

    [Fact]
    public void Model_built_inside_a_dispose_scope_survives_it()
    {
        DeepLabV3Plus model;
        using (NewDisposeScope()) model = new DeepLabV3Plus(Tiny());
        using (model)
        using (NewDisposeScope())
        using (no_grad())
        {
            model.eval();
            Assert.Equal(new long[] { 1, 5, 32, 32 }, model.call(randn(1, 3, 32, 32)).shape);
        }
    }
}
