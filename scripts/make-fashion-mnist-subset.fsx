// Regenerates data/fashion-mnist-subset/ (the class-balanced Fashion-MNIST subset the repository ships)
// from the full set of the Debian package dataset-fashion-mnist.
//
//   dotnet build -c Release src/ContrastSeg.Core
//   dotnet fsi scripts/make-fashion-mnist-subset.fsx [source-folder] [output-folder]      (-- --help: usage)
//
// Run at the repository root. Defaults: /usr/share/datasets/fashion-mnist -> data/fashion-mnist-subset,
// 600 training and 200 test items per class, seed ContrastSeg.Data.FashionMnistSubset.DefaultSeed.
#r "nuget: TorchSharp-cpu, 0.107.0"
#r "../src/ContrastSeg.Core/bin/Release/net10.0/ContrastSeg.Core.dll"

open System.IO
open ContrastSeg.Data

let usage =
    "USAGE: dotnet fsi scripts/make-fashion-mnist-subset.fsx [--] [source-folder] [output-folder]\n\n" +
    "Writes the class-balanced Fashion-MNIST subset (600 training and 200 test items per class) that the repository ships.\n" +
    sprintf "source-folder  the full Fashion-MNIST, as IDX files (default %s, Debian package dataset-fashion-mnist).\n" FashionMnistSource.SystemFolder +
    sprintf "output-folder  where to write it (default %s at the repository root).\n" FashionMnistSource.EmbeddedRelativeFolder +
    "Build first: dotnet build -c Release src/ContrastSeg.Core"

// `dotnet fsi x.fsx -- ...` passes the separator on. A folder cannot start with '-': such an argument is an option.
let args = fsi.CommandLineArgs |> Array.skip 1 |> fun a -> if a.Length > 0 && a[0] = "--" then a[1..] else a
if args |> Array.exists (fun a -> a = "--help" || a = "-h" || a = "-?") then
    printfn "%s" usage
    exit 0
match args |> Array.tryFind (fun a -> a.StartsWith "-") with
| Some option -> eprintfn "make-fashion-mnist-subset: unknown option '%s' (the arguments are [source-folder] [output-folder]; --help)" option; exit 2
| None -> ()
if args.Length > 2 then
    eprintfn "make-fashion-mnist-subset: %d arguments given, at most 2 ([source-folder] [output-folder]; --help)" args.Length
    exit 2
let source = if args.Length > 0 then args[0] else FashionMnistSource.SystemFolder
let output = if args.Length > 1 then args[1] else Path.Combine(__SOURCE_DIRECTORY__, "..", FashionMnistSource.EmbeddedRelativeFolder)

for path in FashionMnistSubset.Write(source, output) do
    printfn "%8d  %s" (FileInfo(path).Length) (Path.GetFullPath path)
