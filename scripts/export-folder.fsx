// Writes embedded Fashion-MNIST scenes as a folder dataset (images/, masks/, classes.txt, splits/): the
// worked example of "your own data" in the README, with no download.
// Usage: dotnet fsi scripts/export-folder.fsx -- --output /tmp/my-scenes --train 200 --val 50 --test 50
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.exportFolder fsi.CommandLineArgs.[1..])
