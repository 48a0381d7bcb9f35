using ContrastSeg.Models;
using TorchSharp;

namespace ContrastSeg.Tests.Support;

/// <summary>A model's weights as plain arrays by parameter name: what exact-resume and init tests compare bit for bit.</summary>
public static class ModelWeights
{
    public static Dictionary<string, float[]> Of(DeepLabV3Plus model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(torch.ScalarType.Float32).data<float>().ToArray());
}
