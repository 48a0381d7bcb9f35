// Regenerates data/fashion-mnist-subset/ (the class-balanced Fashion-MNIST subset the repository ships)
// from the full set of the Debian package dataset-fashion-mnist.
//
//   dotnet build -c Release src/ContrastSeg.Core
//   dotnet fsi scripts/make-fashion-mnist-subset.fsx [source-folder] [output-folder]
//
// Run at the repository root. Defaults: /usr/share/datasets/fashion-mnist -> data/fashion-mnist-subset,
// 600 training and 200 test items per class, seed ContrastSeg.Data.FashionMnistSubset.DefaultSeed.
#r "nuget: TorchSharp-cpu, 0.107.0"
#r "../src/ContrastSeg.Core/bin/Release/net10.0/ContrastSeg.Core.dll"

open System.IO
open ContrastSeg.Data

let args = fsi.CommandLineArgs |> Array.skip 1
let source = if args.Length > 0 then args[0] else FashionMnistSource.SystemFolder
let output = if args.Length > 1 then args[1] else Path.Combine(__SOURCE_DIRECTORY__, "..", FashionMnistSource.EmbeddedRelativeFolder)

for path in FashionMnistSubset.Write(source, output) do
    printfn "%8d  %s" (FileInfo(path).Length) (Path.GetFullPath path)
