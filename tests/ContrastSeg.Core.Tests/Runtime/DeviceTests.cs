using ContrastSeg.Runtime;
using ContrastSeg.Tests.Support;
using ContrastSeg.Training;
using Xunit;

namespace ContrastSeg.Tests.Runtime;

/// <summary>The device setting: parsed, validated, resolved with the environment variable and what libtorch reports.</summary>
public sealed class DeviceTests
{
    // The resolution with a given environment and machine (the real one reads CONTRASTSEG_DEVICE and torch.cuda).
    private static DeviceChoice Choose(string? setting, string? environment = null, bool cuda = false, int devices = 0, string backend = "cpu") =>
        Devices.Choose(setting, Devices.Field, environment, cuda, devices, backend);

    [Theory]
    [InlineData("auto", "auto")]
    [InlineData("cpu", "cpu")]
    [InlineData(" CPU ", "cpu")]
    [InlineData("cuda", "cuda:0")]
    [InlineData("CUDA:0", "cuda:0")]
    [InlineData("cuda:12", "cuda:12")]
    public void Known_values_have_one_normal_form(string text, string expected) => Assert.Equal(expected, Devices.Normalize(text));

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:x")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:")]
    [InlineData("cuda:+1")]
    [InlineData("cuda: 1")]
    [InlineData("cuda:1.5")]
    [InlineData("mps")]
    [InlineData("")]
    public void Unknown_values_are_an_error_naming_the_field_and_the_value(string text)
    {
        Assert.Null(Devices.Normalize(text));
        var e = Assert.Throws<ConfigException>(() => Devices.Parse(text, "--device"));
        Assert.Equal("--device", e.Field);
        Assert.Contains($"'{text}'", e.Message);
        Assert.Contains("auto, cpu, cuda or cuda:N", e.Message);
        // The same through the config: Validate names Runtime.Device.
        var config = new TrainConfig { Runtime = new RuntimeSettings { Device = text } };
        var v = Assert.Throws<ConfigException>(() => config.Validate());
        Assert.Equal("Runtime.Device", v.Field);
        Assert.Contains($"'{text}'", v.Message);
    }

    [Fact]
    public void Auto_is_the_CPU_without_CUDA_and_the_first_GPU_with_it()
    {
        var cpu = Choose("auto");
        Assert.Equal("cpu", cpu.Name);
        Assert.Equal("device: cpu (auto: CUDA not available, TorchSharp-cpu backend)", cpu.ToString());
        Assert.Equal("cpu", Choose(null).Name);
        Assert.Equal("cuda:0", Choose("auto", cuda: true, devices: 2).Name);
        Assert.Contains("auto: CUDA available, 2 devices", Choose("auto", cuda: true, devices: 2).Reason);
    }

    [Fact]
    public void The_setting_wins_over_the_environment_variable_which_wins_over_auto()
    {
        Assert.Equal("cpu", Choose("cpu", environment: "cuda", cuda: true, devices: 1).Name);
        Assert.Equal("cuda:1", Choose("cuda:1", environment: "cpu", cuda: true, devices: 2).Name);
        var fromEnvironment = Choose("auto", environment: "cpu", cuda: true, devices: 1);
        Assert.Equal("cpu", fromEnvironment.Name);
        Assert.Equal("CONTRASTSEG_DEVICE=cpu", fromEnvironment.Reason);
        Assert.Equal("cuda:0", Choose("auto", environment: "auto", cuda: true, devices: 1).Name);
        Assert.Equal("cuda:0", Choose("auto", environment: " ", cuda: true, devices: 1).Name);
        Assert.Equal("Runtime.Device=cpu", Choose("cpu").Reason);
        // A bad environment value is an error naming the variable, even when CUDA would be there.
        var e = Assert.Throws<ConfigException>(() => Choose("auto", environment: "gpu", cuda: true, devices: 1));
        Assert.Equal("CONTRASTSEG_DEVICE", e.Field);
        Assert.Contains("'gpu'", e.Message);
    }

    [Fact]
    public void CUDA_on_a_CPU_only_build_says_which_backend_this_is_and_where_the_swap_is_explained()
    {
        foreach (var (setting, environment, field) in new[] { ("cuda", (string?)null, "Runtime.Device"), ("auto", "cuda:0", "CONTRASTSEG_DEVICE") })
        {
            var e = Assert.Throws<ConfigException>(() => Choose(setting, environment));
            Assert.Equal(field, e.Field);
            Assert.Contains("TorchSharp-cpu backend", e.Message);
            Assert.Contains("-p:TorchBackend=cuda", e.Message);
            Assert.Contains("\"GPU and cluster\" > \"Device and backend\"", e.Message);
        }
        // A CUDA build on a machine without a visible GPU says that instead.
        var gpuless = Assert.Throws<ConfigException>(() => Choose("cuda", backend: "cuda"));
        Assert.Contains("torch.cuda.is_available() is false", gpuless.Message);
        Assert.Contains("nvidia-smi", gpuless.Message);
        // A device index the machine does not have.
        var index = Assert.Throws<ConfigException>(() => Choose("cuda:2", cuda: true, devices: 2));
        Assert.Contains("cuda:0 to cuda:1", index.Message);
    }

    [Fact]
    public void The_build_records_its_backend_package()
    {
        var recorded = typeof(Devices).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>().SingleOrDefault(a => a.Key == "TorchBackend");
        Assert.NotNull(recorded); // MSBuild property TorchBackend (Directory.Build.props), default cpu
        Assert.Contains(recorded.Value, new[] { "cpu", "cuda" });
        Assert.Equal(recorded.Value, Devices.Backend);
        Assert.Contains(Devices.Backend == "cpu" ? "TorchSharp-cpu 0.107.0" : "TorchSharp-cuda-", Devices.BackendPackage);
    }

    [Fact]
    public void On_this_build_auto_resolves_to_the_CPU_and_cuda_is_refused()
    {
        TorchFixture.Init();
        if (Devices.Backend != "cpu" || TorchSharp.torch.cuda.is_available()) return; // a CUDA build on a GPU machine: nothing to refuse
        Assert.Equal("cpu", Devices.Choose("auto", Devices.Field, null, TorchSharp.torch.cuda.is_available(), 0, Devices.Backend).Name);
        Assert.Equal("cpu", Devices.Choose("cpu").Name);
        var e = Assert.Throws<ConfigException>(() => Devices.Choose("cuda"));
        Assert.Contains("TorchSharp-cpu backend", e.Message);
    }

    [Fact]
    public void Runtime_Device_is_a_setting_outside_the_run_identity()
    {
        var c = ConfigOverrides.Apply(new TrainConfig(), new[] { "Runtime.Device=cuda" }).Validate();
        Assert.Equal("cuda", c.Runtime.Device); // validated, resolved only when a run starts (a GPU job can be planned on a CPU machine)
        Assert.Equal(new TrainConfig().RunName, c.RunName);
        Assert.Equal(new TrainConfig().WeightsDefiningJson(), c.WeightsDefiningJson());
        Assert.DoesNotContain("Runtime", c.WeightsDefiningJson());
        Assert.Equal(new TrainConfig().RunName, (c with { Runtime = new RuntimeSettings { Device = "cpu" } }).RunName);
        // A config.json written before the section existed reads with the default.
        var old = System.Text.Json.Nodes.JsonNode.Parse(new TrainConfig().ToJson())!.AsObject();
        old.Remove("Runtime");
        Assert.Equal(Devices.Auto, TrainConfig.FromJson(old.ToJsonString()).Runtime.Device);
        var bad = Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(new TrainConfig(), new[] { "Runtime.Device=gpu" }).Validate());
        Assert.Equal("Runtime.Device", bad.Field);
        Assert.Contains("'gpu'", bad.Message);
    }
}
