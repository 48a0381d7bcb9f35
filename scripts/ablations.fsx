// The kit's main job: the ablation grid of the paper on the embedded scenes (or VOC/Cityscapes).
// Usage: dotnet fsi scripts/ablations.fsx -- --profile default        (--help for every option)
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.ablations fsi.CommandLineArgs.[1..])
