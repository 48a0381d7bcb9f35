// Rewrites the generated results tables of README.md and docs/results.md (between their BEGIN/END comments) from
// docs/results/<profile>/rows and plan.json. Usage: dotnet fsi scripts/results-page.fsx   (from the repository root)
// Build first (once, and after changing the code): dotnet build -c Release
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.resultsPage fsi.CommandLineArgs.[1..])
