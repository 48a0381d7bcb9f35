// Compares a grid's results with a reference run of the same grid, bit for bit, by the merge test's criterion
// (tests/ContrastSeg.Lab.Tests/ClusterTests.fs): per row the study, setting, method and seed, the bits of mIoU, pixel
// accuracy and every extra, every setting except those naming where the runs were (runs folder, run names that hash
// paths); with --tables also results.csv without wall times and numerics, and feature-space.json's numbers.
// Usage (after dotnet build -c Release):
//   dotnet fsi eng/cluster/compare-results.fsx -- <reference results> <results> [--tables] [--cells k1 k2 ...]
// Without --cells: every row of the reference must be in <results>, and no other. Exit code 1 on any difference.
#r "../../src/ContrastSeg.Lab/bin/Release/net10.0/ContrastSeg.Lab.dll"

open System
open System.IO
open ContrastSeg.Lab

let args = fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray
let usage () =
    eprintfn "usage: dotnet fsi eng/cluster/compare-results.fsx -- <reference results> <results> [--tables] [--cells k1 k2 ...]"
    exit 2
let reference, results, rest =
    match args with
    | r :: o :: rest when not (r.StartsWith "--") && not (o.StartsWith "--") -> r, o, rest
    | _ -> usage ()
let tables = List.contains "--tables" rest
let cells =
    match rest |> List.skipWhile ((<>) "--cells") with
    | "--cells" :: keys -> Some(keys |> List.takeWhile (fun k -> not (k.StartsWith "--")))
    | _ -> None
for folder in [ reference; results ] do
    if not (Directory.Exists(Path.Combine(folder, "rows"))) then
        eprintfn "compare-results: %s has no rows/ folder" folder
        exit 2

// The same list as ClusterTests.locationSettings: settings whose values say where a machine put its runs.
let locationSettings = set [ "OutputRoot"; "RunDirectory"; "InitFrom"; "Data.PseudoLabels"; "RunName"; "stages" ]
let bits (x: float) = BitConverter.DoubleToInt64Bits x
let read folder = Results.ResultStore(folder).All() |> List.map (fun r -> r.CellKey, r) |> Map.ofList
let ofReference, ofResults = read reference, read results
let keys = match cells with Some ks -> ks | None -> ofReference |> Map.keys |> List.ofSeq
let problems = Collections.Generic.List<string>()
let problem text = problems.Add text

if cells.IsNone then
    for k in ofResults.Keys do
        if not (ofReference.ContainsKey k) then problem (sprintf "%s: a row the reference does not have" k)
for key in keys do
    match ofReference.TryFind key, ofResults.TryFind key with
    | None, _ -> problem (sprintf "%s: no row in the reference %s" key reference)
    | _, None -> problem (sprintf "%s: no row in %s" key results)
    | Some a, Some b ->
        if (a.Study, a.Setting, a.Method, a.Seed) <> (b.Study, b.Setting, b.Method, b.Seed) then problem (sprintf "%s: another cell" key)
        if bits a.MeanIoU <> bits b.MeanIoU then problem (sprintf "%s: mIoU %.17g vs %.17g" key a.MeanIoU b.MeanIoU)
        if bits a.PixelAccuracy <> bits b.PixelAccuracy then problem (sprintf "%s: pixel accuracy %.17g vs %.17g" key a.PixelAccuracy b.PixelAccuracy)
        let extras (r: Results.ResultRow) = r.Extras |> Seq.map (fun kv -> kv.Key, bits kv.Value) |> List.ofSeq
        if extras a <> extras b then problem (sprintf "%s: extras %A vs %A" key (List.ofSeq a.Extras) (List.ofSeq b.Extras))
        let kept (r: Results.ResultRow) = r.Settings |> Seq.filter (fun kv -> not (locationSettings.Contains kv.Key)) |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
        let ka, kb = kept a, kept b
        for s in Set.union (Set.ofSeq ka.Keys) (Set.ofSeq kb.Keys) do
            if ka.TryFind s <> kb.TryFind s then problem (sprintf "%s: setting %s = %A vs %A" key s (ka.TryFind s) (kb.TryFind s))
printfn "[compare] rows: %d cells compared with %s" keys.Length reference

if tables then
    let wanted = set keys
    // A CSV line's fields ("labelled=8,pseudo=on" is quoted).
    let fields (line: string) =
        let out = Collections.Generic.List<string>()
        let field = Text.StringBuilder()
        let mutable quoted = false
        for ch in line do
            match ch with
            | '"' -> quoted <- not quoted
            | ',' when not quoted -> out.Add(field.ToString()); field.Clear() |> ignore
            | c -> field.Append c |> ignore
        out.Add(field.ToString())
        List.ofSeq out
    let table folder =
        let file = Path.Combine(folder, "results.csv")
        if not (File.Exists file) then problem (sprintf "%s is missing" file); []
        else
            match File.ReadAllLines file |> List.ofArray |> List.map fields with
            | header :: rows when List.truncate 7 header = [ "study"; "setting"; "method"; "seed"; "cell_key"; "miou_pct"; "pixel_accuracy_pct" ] ->
                // Without wall_seconds and numerics (the numerics are in the rows' settings and provenance).
                List.truncate 7 header :: (rows |> List.filter (fun f -> wanted.Contains f.[4]) |> List.map (List.truncate 7))
            | _ -> problem (sprintf "%s: not the report's columns" file); []
    let ta, tb = table reference, table results
    if ta <> tb then problem (sprintf "results.csv differs (without wall times):\n  %A\n  vs\n  %A" ta tb)
    let space folder =
        let file = Path.Combine(folder, "feature-space.json")
        if not (File.Exists file) then None
        else
            use doc = Text.Json.JsonDocument.Parse(File.ReadAllText file)
            Some [ for e in doc.RootElement.EnumerateArray() ->
                     e.GetProperty("Method").GetString(),
                     [ for p in [ "IntraClass"; "InterClass"; "Ratio"; "NearestCentroidAccuracy" ] -> bits (e.GetProperty(p).GetDouble()) ] ]
    match space reference, space results with
    | None, None -> printfn "[compare] no feature-space.json in either"
    | Some a, Some b when a = b -> printfn "[compare] feature-space.json: %d models, the same bits" a.Length
    | a, b -> problem (sprintf "feature-space.json differs: %A vs %A" a b)
    printfn "[compare] results.csv: %d rows" (tb.Length - 1)

if problems.Count = 0 then
    printfn "[compare] %s equals %s bit for bit" results reference
    exit 0
else
    for p in problems do eprintfn "[compare] %s" p
    eprintfn "[compare] %d difference(s) between %s and %s" problems.Count results reference
    exit 1
