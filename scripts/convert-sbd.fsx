// Converts SBD (cls/*.mat) to index PNGs and writes VOC's train_aug list (asserted at 10,582 ids).
// Usage: dotnet fsi scripts/convert-sbd.fsx -- --sbd /data/benchmark_RELEASE/dataset --voc /data/VOCdevkit/VOC2012
// Build first (once, and after changing the code): dotnet build -c Release
// All logic lives in src/ContrastSeg.Lab (Cli.fs); this script only forwards its arguments.
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.convertSbd fsi.CommandLineArgs.[1..])
