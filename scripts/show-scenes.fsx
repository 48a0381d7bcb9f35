// Renders Fashion-MNIST scenes next to their colourised label maps, one PNG per scene.
//
//   dotnet build -c Release src/ContrastSeg.Core
//   dotnet fsi scripts/show-scenes.fsx [count] [output-folder] [split] [seed]      (-- --help: usage)
//
// Defaults: 8 scenes of the train split, seed 0, into results/scenes/ (relative to the working directory).
// Each PNG is image | labels | image with label boundaries, scaled up 4x (nearest) for viewing.
#r "nuget: TorchSharp-cpu, 0.107.0"
#r "nuget: SkiaSharp, 4.155.0"
#r "nuget: SkiaSharp.NativeAssets.Linux, 4.155.0"
#r "nuget: SkiaSharp.NativeAssets.macOS, 4.155.0"
#r "nuget: SkiaSharp.NativeAssets.Win32, 4.155.0"
#r "../src/ContrastSeg.Core/bin/Release/net10.0/ContrastSeg.Core.dll"

open System
open System.IO
open SkiaSharp
open ContrastSeg.Data

let usage =
    "USAGE: dotnet fsi scripts/show-scenes.fsx [--] [count] [output-folder] [split] [seed]\n\n" +
    "Renders Fashion-MNIST scenes next to their colourised label maps, one PNG per scene (image | labels | boundaries, 4x).\n" +
    "count          scenes to render (default 8).\n" +
    "output-folder  where the PNGs go (default results/scenes, relative to the working directory).\n" +
    "split          train, val or test (default train).\n" +
    "seed           the scene generator's seed (default 0).\n" +
    "Build first: dotnet build -c Release src/ContrastSeg.Core"

let fail (message: string) =
    eprintfn "show-scenes: %s (--help for usage)" message
    exit 2

// `dotnet fsi x.fsx -- ...` passes the separator on.
let args = fsi.CommandLineArgs |> Array.skip 1 |> fun a -> if a.Length > 0 && a[0] = "--" then a[1..] else a
if args |> Array.exists (fun a -> a = "--help" || a = "-h" || a = "-?") then
    printfn "%s" usage
    exit 0
if args.Length > 4 then fail (sprintf "%d arguments given, at most 4" args.Length)
let arg i fallback = if args.Length > i then args[i] else fallback
let whole name (text: string) =
    match Int32.TryParse text with
    | true, n -> n
    | _ -> fail (sprintf "%s '%s' is not a whole number" name text)
let count = whole "count" (arg 0 "8")
if count < 1 then fail (sprintf "count %d: render at least one scene" count)
let output = arg 1 (Path.Combine("results", "scenes"))
let split =
    match Enum.TryParse<SceneSplit>(arg 2 "Train", true) with
    | true, s when Enum.IsDefined s -> s
    | _ -> fail (sprintf "split '%s' is not one of train, val, test" (arg 2 "Train"))
let seed = whole "seed" (arg 3 "0")
let zoom = 4

// libtorch loads before anything else calls it: the kit finds it in the NuGet cache under `dotnet fsi` (docs/using-the-kit.md).
printfn "natives: %s" (ContrastSeg.Runtime.TorchRuntime.EnsureInitialized().NativeLibraries)

let source = FashionMnistSource.Open()
let scenes = FashionMnistScenes.Create(split, FashionMnistSceneOptions(Seed = seed), source)
printfn "source: %s" source.Description
Directory.CreateDirectory output |> ignore

/// The image with a white line where the label changes (to check that masks sit on the items).
let withBoundaries (img: RgbImage) (labels: LabelMap) =
    let px = Array.copy img.Pixels
    let w, h = labels.Width, labels.Height
    let at x y = labels.Labels[y * w + x]
    for y in 0 .. h - 1 do
        for x in 0 .. w - 1 do
            let l = at x y
            if (x + 1 < w && at (x + 1) y <> l) || (y + 1 < h && at x (y + 1) <> l) then
                let o = (y * w + x) * 3
                px[o] <- 255uy; px[o + 1] <- 255uy; px[o + 2] <- 255uy
    RgbImage(w, h, px)

for i in 0 .. min count scenes.Ids.Count - 1 do
    let s = scenes.Load i
    let labels = s.Labels
    let panels = [ s.Image; LabelColouring.Colourise(labels, scenes.Info.Palette); withBoundaries s.Image labels ]
    let gap = 4
    let pw, ph = s.Image.Width * zoom, s.Image.Height * zoom
    use bmp = new SKBitmap(panels.Length * pw + (panels.Length - 1) * gap, ph, SKColorType.Rgba8888, SKAlphaType.Opaque)
    bmp.Erase SKColors.White
    panels |> List.iteri (fun k (p: RgbImage) ->
        for y in 0 .. ph - 1 do
            for x in 0 .. pw - 1 do
                let o = ((y / zoom) * p.Width + x / zoom) * 3
                bmp.SetPixel(k * (pw + gap) + x, y, SKColor(p.Pixels[o], p.Pixels[o + 1], p.Pixels[o + 2])))
    use image = SKImage.FromBitmap bmp
    use png = image.Encode(SKEncodedImageFormat.Png, 100)
    let path = Path.Combine(output, s.Id + ".png")
    do
        use file = File.Create path
        png.SaveTo file
    let classes =
        scenes.Layout i |> Seq.map (fun p -> scenes.Info.ClassNames[int p.Label]) |> String.concat ", "
    printfn "%s  (%s)" (Path.GetFullPath path) classes
