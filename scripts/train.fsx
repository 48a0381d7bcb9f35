// Trains one stage from a preset or config.
// Usage: dotnet fsi scripts/train.fsx -- --stage Contrastive --labelled 20   (--help for every option)
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.train fsi.CommandLineArgs.[1..])
