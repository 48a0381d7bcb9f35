using System.Text.Json;
using System.Text.Json.Nodes;
using ContrastSeg.Bench;

// ContrastSeg benchmarks. Usage:
//   dotnet run -c Release --project bench/ContrastSeg.Bench -- --json results/bench.json [--quick] [--only loss|train|loader|peers] [--cases PATTERNS]
//   ... -- --render results/bench.json   (re-writes the Markdown tables of a saved report)
//   ... -- --write-voc-fixture DIR [N]   (writes the loader benchmark's VOC-layout folder)
// Every case runs in a fresh child process of this executable (`--case SPEC`, internal).
try
{
    var arguments = args.ToList();
    var caseIndex = arguments.IndexOf("--case");
    if (caseIndex >= 0)
    {
        var spec = ChildRunner.ParseSpec(arguments[caseIndex + 1]);
        var result = spec["kind"] switch
        {
            "loss" => LossCase.Run(spec),
            "train" => TrainCase.Run(spec),
            "loader" => LoaderCase.Run(spec),
            "peers" => PeerCase.Run(spec),
            var k => throw new ArgumentException($"unknown case kind '{k}'"),
        };
        ChildRunner.Emit(result);
        return 0;
    }

    var fixtureIndex = arguments.IndexOf("--write-voc-fixture");
    if (fixtureIndex >= 0)
    {
        // Writes the loader benchmark's VOC-layout folder (to look at it, or to train on it).
        var root = arguments[fixtureIndex + 1];
        var count = fixtureIndex + 2 < arguments.Count && int.TryParse(arguments[fixtureIndex + 2], out var n) ? n : 48;
        var (jpeg, png) = VocFixture.Write(root, count);
        Console.WriteLine($"wrote {count} samples to {root}: JPEG {jpeg / 1e3:F1} KB, PNG {png / 1e3:F1} KB on average");
        return 0;
    }

    var renderIndex = arguments.IndexOf("--render");
    if (renderIndex >= 0)
    {
        // Re-renders the Markdown tables of an existing JSON report (no measurement).
        var json = arguments[renderIndex + 1];
        var saved = JsonNode.Parse(File.ReadAllText(json))!.AsObject();
        File.WriteAllText(Path.ChangeExtension(json, ".md"), Summary.Markdown(saved));
        Summary.Print(saved);
        return 0;
    }

    string? Value(string flag)
    {
        var i = arguments.IndexOf(flag);
        return i >= 0 && i + 1 < arguments.Count ? arguments[i + 1] : null;
    }
    var settings = new BenchSettings(
        JsonPath: Value("--json") ?? "results/bench.json",
        Quick: arguments.Contains("--quick"),
        Only: Value("--only") is { } only && only is not ("loss" or "train" or "loader" or "peers")
            ? throw new ArgumentException($"--only takes loss, train, loader or peers, got '{only}'")
            : Value("--only"),
        CommandLine: "dotnet run -c Release --project bench/ContrastSeg.Bench -- " + string.Join(' ', args.Select(a => a.Contains(' ') || a.Contains('!') || a.Contains(';') ? $"'{a}'" : a)),
        Cases: CaseFilter.Parse(Value("--cases")));
    var report = Suite.Run(settings);
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.JsonPath))!);
    File.WriteAllText(settings.JsonPath, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    var markdownPath = Path.ChangeExtension(settings.JsonPath, ".md");
    File.WriteAllText(markdownPath, Summary.Markdown(report));
    Console.WriteLine($"wrote {settings.JsonPath} and {markdownPath}");
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine(e);
    return 1;
}
