// Writes the generated references: docs/reference/settings.md (every setting, from the settings and their doc comments)
// and docs/reference/cli.md (every command's --help). Usage: dotnet fsi scripts/reference.fsx   (from the repository root)
// Build first (once, and after changing the code): dotnet build -c Release
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.reference fsi.CommandLineArgs.[1..])
