// Prints the numerics this machine computes with: CONTRASTSEG_NUMERICS (portable | native), the CPU and what libtorch,
// oneDNN and MKL run. Usage: dotnet fsi scripts/numerics.fsx        (CONTRASTSEG_NUMERICS=native dotnet fsi ... for native)
// Build first (once, and after changing the code): dotnet build -c Release
#r "../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

exit (ContrastSeg.Lab.Cli.numerics fsi.CommandLineArgs.[1..])
