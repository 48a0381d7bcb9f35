// Writes index PNGs and colour overlays of a run's predictions.
// Usage: dotnet fsi scripts/predict.fsx -- --run runs/<name> --output predictions/ --limit 20
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.predict fsi.CommandLineArgs.[1..])
