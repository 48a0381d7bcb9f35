// Evaluates a run on a split, with optional flip / multi-scale test-time augmentation.
// Usage: dotnet fsi scripts/evaluate.fsx -- --run runs/<name> [--flip] [--scales 0.75 1 1.25]
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.evaluate fsi.CommandLineArgs.[1..])
