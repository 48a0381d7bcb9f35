// Scans a dataset and reports every problem in one pass.
// Usage: dotnet fsi scripts/validate-data.fsx -- --dataset voc --root /data/VOCdevkit/VOC2012 --split train_aug
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.validateData fsi.CommandLineArgs.[1..])
