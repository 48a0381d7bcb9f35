// Writes confident pseudo-labels for the unlabelled training images of a run's labelled subset.
// Usage: dotnet fsi scripts/pseudolabel.fsx -- --teacher runs/<name> --output pseudo/
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.pseudolabel fsi.CommandLineArgs.[1..])
