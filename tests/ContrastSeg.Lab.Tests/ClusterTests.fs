/// Cluster job arrays (issue 13): grid cells run one by one as separate nodes would run them (each with its own
/// runs and results folder, so each trains its own copy of the stages cells share), their rows merged by copying,
/// the report rebuilt with --report-only: the same rows and tables as one machine running the same grid. And a
/// cell of a later wave only reads the stages it shares with earlier cells.
module ContrastSeg.Lab.Tests.ClusterTests

open System
open System.IO
open Expecto
open ContrastSeg.Data
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid

/// A Fashion-MNIST folder of the first 1,000 training and 200 test items of the embedded subset: the full set's
/// 10,000 test items made the classification-pretraining accuracy most of the grid's time.
let private tinyItems (root: string) =
    let source = FashionMnistSource.FindEmbeddedFolder() |> nonNull
    let folder = Path.Combine(root, "items")
    Directory.CreateDirectory folder |> ignore
    for split, count in [ "train", 1000; "t10k", 200 ] do
        let images = Idx.ReadImages(FashionMnistSource.FindFile(source, split + "-images-idx3-ubyte") |> nonNull)
        let labels = Idx.ReadLabels(FashionMnistSource.FindFile(source, split + "-labels-idx1-ubyte") |> nonNull)
        let size = images.Rows * images.Cols
        Idx.WriteImages(Path.Combine(folder, split + "-images-idx3-ubyte"), IdxImages(count, images.Rows, images.Cols, images.Pixels.[.. count * size - 1]), gzip = false)
        Idx.WriteLabels(Path.Combine(folder, split + "-labels-idx1-ubyte"), labels.[.. count - 1], gzip = false)
    folder

/// Cells of the quick profile that share every kind of artefact: the t-SNE pair (their checkpoints are read by the
/// report), a contrastive pretraining + fine-tuning that the semi-supervised cell reuses as its teacher (and its
/// pseudo-label folder), and the two cells that start from one classification-pretraining weights file.
let private cells =
    [ "label-efficiency.cross-entropy.labelled-8.s0"
      "label-efficiency.contrastive-finetune.labelled-8.s0"
      "classification-pretraining.cross-entropy.init-classification.s0"
      "classification-pretraining.contrastive-finetune.init-classification.s0"
      "semi-supervised.contrastive-finetune.labelled-8-pseudo-on.s0" ]

let private ablations (argv: string list) =
    let code, out, err = CliTests.run Cli.ablations argv
    if code <> 0 then failtestf "ablations %s: exit code %d\n%s\n%s" (String.Join(" ", argv)) code out err
    out

/// Settings whose values name where the machine put its runs: the runs folder, paths under it, and run names,
/// which hash the path of the weights a stage starts from (see RunNames.Derive). Every other setting must match.
let private locationSettings = set [ "OutputRoot"; "RunDirectory"; "InitFrom"; "Data.PseudoLabels"; "RunName"; "stages" ]

let private bits (x: float) = BitConverter.DoubleToInt64Bits x

/// Every file under `folder` with its length and last write time.
let private snapshot (folder: string) (except: string list) =
    Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
    |> Array.filter (fun f -> except |> List.forall (fun e -> not (Path.GetFullPath(f).StartsWith(Path.GetFullPath e + string Path.DirectorySeparatorChar))))
    |> Array.map (fun f -> Path.GetRelativePath(folder, f), FileInfo(f).Length, File.GetLastWriteTimeUtc(f).Ticks)
    |> Array.sort

let private runs = Path.Combine(Path.GetTempPath(), "contrastseg-cluster-tests")

let tests =
    testList "cluster job arrays" [
        test "waves: no wave trains an output twice, and every other cell using it comes in a later wave" {
            for p in [ quick runs; defaultProfile runs; ablationsProfile runs ] do
                let waves = Executor.waves (Grid.plan p)
                Expect.equal (waves |> List.map (fun (c, _) -> c.Key)) (p.Cells |> List.map (fun c -> c.Key) |> List.distinct) (p.Name + ": every cell once, in grid order")
                for out in waves |> List.collect (fun (c, _) -> List.ofSeq c.Outputs) |> List.distinct do
                    let users = waves |> List.filter (fun (c, _) -> Seq.contains out c.Outputs)
                    let first = users |> List.map snd |> List.min
                    Expect.equal (users |> List.filter (fun (_, w) -> w = first) |> List.length) 1 (sprintf "%s: one cell trains %s" p.Name out)
                    Expect.equal (snd users.Head) first (sprintf "%s: the first cell using %s trains it" p.Name out)
            Expect.equal (Executor.waves (Grid.plan (defaultProfile runs)) |> List.map snd |> List.distinct) [ 1 ] "the default study shares no stage: one wave"
            Expect.equal (Executor.waves (Grid.plan (quick runs)) |> List.map snd |> List.distinct) [ 1; 2 ] "quick: its ablations reuse stages of wave 1"
        }

        test "--list-keys prints what --cell takes, --wave the keys of one wave, --cells restricts the grid; bad values are named" {
            let listed = Directory.CreateTempSubdirectory("contrastseg-list-keys-").FullName
            let keys argv =
                let code, out, err = CliTests.run Cli.ablations ([ "--profile"; "quick"; "--output"; listed ] @ argv)
                Expect.equal code 0 (sprintf "%A: %s" argv err)
                out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray
            let all = (quick runs).Cells |> List.map (fun c -> c.Key) |> List.distinct
            Expect.equal (keys [ "--list-keys" ]) all "every key, in grid order"
            Expect.equal (keys [ "--list-keys"; "--wave"; "1" ] @ keys [ "--list-keys"; "--wave"; "2" ] |> List.sort) (List.sort all) "two waves hold every cell"
            Expect.isEmpty (keys [ "--list-keys"; "--wave"; "3" ]) "none past the last wave: a script's loop ends there"
            let two = [ all.[3]; all.[0] ]
            Expect.equal (keys ([ "--list-keys"; "--cells" ] @ two)) [ all.[0]; all.[3] ] "--cells: those cells, in grid order"
            Expect.equal (keys ([ "--list"; "--cells" ] @ two)) [ for k in [ all.[0]; all.[3] ] -> sprintf "dotnet fsi scripts/ablations.fsx -- --plan %s --cell %s" (Path.Combine(listed, "plan.json")) k ] "--list: the plan of those cells"
            Expect.equal (ContrastSeg.Studies.StudyPlan.Read(Path.Combine(listed, "plan.json")).Cells |> Seq.map (fun c -> c.Key) |> List.ofSeq) [ all.[0]; all.[3] ] "the plan holds --cells' cells"
            let refused argv mention =
                let code, _, err = CliTests.run Cli.ablations ([ "--profile"; "quick" ] @ argv)
                Expect.equal code 2 (sprintf "%A: exit code 2" argv)
                Expect.stringContains err mention (sprintf "%A names the value" argv)
            refused [ "--list-keys"; "--wave"; "0" ] "got 0"
            refused [ "--wave"; "1"; "--cell"; all.[0] ] "--wave selects what --list or --list-keys prints"
            refused [ "--list-keys"; "--cells"; "no-such-cell" ] "'no-such-cell'"
        }

        testCase "cells run as separate nodes, rows merged by copying: the rows and tables of one local run, bit for bit" <| fun () ->
            let root = Directory.CreateTempSubdirectory("contrastseg-cluster-").FullName
            try
                let items = tinyItems root
                let grid = [ "--profile"; "quick"; "--steps"; "2"; "--data-root"; items; "--cells" ] @ cells
                let keys = (ablations (grid @ [ "--list-keys" ])).Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray
                Expect.equal keys cells "--list-keys: one key per line, in grid order"

                // One node per cell: its own runs and results folders, as on machines that share no storage.
                let merged = Path.Combine(root, "merged")
                Directory.CreateDirectory(Path.Combine(merged, "rows")) |> ignore
                for k, key in List.indexed keys do
                    let node = Path.Combine(root, sprintf "node-%d" k)
                    ablations (grid @ [ "--runs"; Path.Combine(node, "runs"); "--output"; Path.Combine(node, "results"); "--cell"; key ]) |> ignore
                    let rows = Directory.GetFiles(Path.Combine(node, "results", "rows"), "*.json")
                    Expect.equal (rows |> Array.map Path.GetFileName) [| key + ".json" |] "a node writes its cell's row only"
                    File.Copy(rows.[0], Path.Combine(merged, "rows", Path.GetFileName rows.[0]))
                // The report from the merged rows alone; its own runs folder holds nothing.
                ablations (grid @ [ "--runs"; Path.Combine(merged, "runs"); "--output"; merged; "--report-only" ]) |> ignore

                // The same grid on one machine, in this process (--jobs 1): shared stages trained once, then reused.
                let local = Path.Combine(root, "local")
                ablations (grid @ [ "--runs"; Path.Combine(local, "runs"); "--output"; local; "--jobs"; "1" ]) |> ignore

                let read folder = Results.ResultStore(folder).All() |> List.map (fun r -> r.CellKey, r) |> Map.ofList
                let fromNodes, fromLocal = read merged, read local
                Expect.equal (Set.ofSeq fromNodes.Keys) (Set.ofList cells) "merged keys"
                Expect.equal (Set.ofSeq fromLocal.Keys) (Set.ofList cells) "local keys"
                for key in cells do
                    let a, b = fromNodes.[key], fromLocal.[key]
                    let k = List.findIndex ((=) key) keys
                    let nodeRuns = Path.Combine(root, sprintf "node-%d" k, "runs")
                    Expect.all a.Stages (fun s -> s.StartsWith nodeRuns) (sprintf "%s: every stage trained on its own node" key)
                    Expect.equal (a.Study, a.Setting, a.Method, a.Seed) (b.Study, b.Setting, b.Method, b.Seed) key
                    // Bit for bit: one libtorch thread (test.runsettings), seeded data and weights, the same
                    // operations in the same order, so nothing may differ, not even the last bit of a float.
                    Expect.equal (bits a.MeanIoU) (bits b.MeanIoU) (sprintf "%s: mIoU %.17g vs %.17g" key a.MeanIoU b.MeanIoU)
                    Expect.equal (bits a.PixelAccuracy) (bits b.PixelAccuracy) (sprintf "%s: pixel accuracy" key)
                    Expect.equal (a.Extras |> Seq.map (fun kv -> kv.Key, bits kv.Value) |> List.ofSeq) (b.Extras |> Seq.map (fun kv -> kv.Key, bits kv.Value) |> List.ofSeq) (sprintf "%s: extras" key)
                    let kept (r: Results.ResultRow) = r.Settings |> Seq.filter (fun kv -> not (locationSettings.Contains kv.Key)) |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
                    let differing = Set.union (Set.ofSeq (kept a).Keys) (Set.ofSeq (kept b).Keys) |> Set.filter (fun s -> (kept a).TryFind s <> (kept b).TryFind s)
                    Expect.isEmpty differing (sprintf "%s: settings differ: %s" key (String.Join("; ", differing |> Seq.map (fun s -> sprintf "%s = %A vs %A" s ((kept a).TryFind s) ((kept b).TryFind s)))))
                // Both reports hold every row (the merged rows count as current although their run names hash
                // other paths) and the same tables; the feature space read the nodes' checkpoints.
                let table folder = File.ReadAllLines(Path.Combine(folder, "results.csv")) |> Array.map (fun l -> String.Join(",", l.Split(',') |> Array.truncate 7))
                Expect.equal (table merged).Length (cells.Length + 1) "merged report: every row"
                Expect.equal (table merged) (table local) "results.csv, without wall times"
                let space folder =
                    use doc = Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "feature-space.json")))
                    [ for e in doc.RootElement.EnumerateArray() ->
                        e.GetProperty("Method").GetString(),
                        [ for p in [ "IntraClass"; "InterClass"; "Ratio"; "NearestCentroidAccuracy" ] -> bits (e.GetProperty(p).GetDouble()) ] ]
                Expect.equal (space merged) (space local) "feature space, bit for bit"
                Expect.equal (space merged).Length 2 "cross-entropy and contrastive"

                // Rows as written before rows stored their curves and feature space: the grid run again where the run
                // folders are adds them without training, and each row is then the one it wrote when it trained the cell.
                let store = Results.ResultStore(local)
                let written = [ for key in cells -> key, File.ReadAllText(store.RowPath key) ]
                for key, text in written do
                    let node = Text.Json.Nodes.JsonNode.Parse(text).AsObject()
                    for part in [ "ValidationCurve"; "FeatureSpace" ] do node.Remove part |> ignore
                    File.WriteAllText(store.RowPath key, node.ToJsonString())
                let out = ablations (grid @ [ "--runs"; Path.Combine(local, "runs"); "--output"; local; "--jobs"; "1" ])
                Expect.stringContains out "), 0 to train" "nothing trains"
                Expect.stringContains out "row refreshed from its run folders, nothing trained: validation curve, feature space added" "the feature-space rows get both"
                for key, text in written do
                    Expect.equal (File.ReadAllText(store.RowPath key)) text (key + ": the refreshed row is the one written when the cell trained")

                // A later wave on a shared runs folder: the semi-supervised cell, with the stages it shares finished
                // and its own outputs not yet there, writes only its own outputs and gets the same row.
                let p = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine(Array.ofList (grid @ [ "--runs"; Path.Combine(local, "runs") ])))
                let semi = p.Cells |> List.find (fun c -> c.Key = List.last cells)
                let outputs (c: ContrastSeg.Studies.StudyCell) = (GridTests.planned p c).Outputs |> List.ofSeq
                let shared = p.Cells |> List.filter (fun c -> c.Key <> semi.Key) |> List.collect outputs |> Set.ofList
                let own = outputs semi |> List.filter (shared.Contains >> not)
                Expect.isNonEmpty own "the semi-supervised cell has outputs of its own (pseudo-labels, students)"
                Expect.isTrue (Executor.waves (Grid.plan p) |> List.exists (fun (c, wave) -> c.Key = semi.Key && wave = 2)) "it is in wave 2"
                for o in own do Directory.Delete(o, true)
                let before = snapshot (Path.Combine(local, "runs")) own
                let again = Path.Combine(root, "again")
                // Finished stages are only read, so the grid takes no lock on them: held by someone else (here this test), they still serve.
                let locks = outputs semi |> List.filter (fun o -> shared.Contains o && Directory.Exists o) |> List.map ContrastSeg.Training.RunLock.Acquire
                Expect.isNonEmpty locks "the teacher's stages are shared"
                try ablations (grid @ [ "--runs"; Path.Combine(local, "runs"); "--output"; again; "--cell"; semi.Key ]) |> ignore
                finally for l in locks do l.Dispose()
                Expect.sequenceEqual (snapshot (Path.Combine(local, "runs")) own) before "shared stages, subsets and weights untouched"
                let row = (Results.ResultStore(again).Read semi.Key).Value
                Expect.equal (bits row.MeanIoU) (bits fromLocal.[semi.Key].MeanIoU) "the same row"
            finally
                try Directory.Delete(root, true) with _ -> ()

        test "the grid's log: writers with their own handles (worker processes) append whole lines and lose none" {
            // FileMode.Append alone seeks to the end once: the second writer overwrote the first one's lines.
            let path = Path.Combine(Path.GetTempPath(), sprintf "contrastseg-shared-log-%s.log" (Guid.NewGuid().ToString "N"))
            try
                let writers = [ for w in 0 .. 2 -> w, new Executor.SharedLogWriter(path) ]
                let lines w = [ for i in 0 .. 199 -> sprintf "writer %d line %03d %s" w i (String('x', 40)) ]
                writers
                |> List.map (fun (w, log) -> Threading.Tasks.Task.Run(fun () -> for l in lines w do log.WriteLine l; log.Flush()))
                |> List.iter (fun t -> t.Wait())
                for _, log in writers do log.Dispose()
                let written = File.ReadAllLines path
                Expect.equal written.Length 600 "every line of every writer"
                for w in 0 .. 2 do
                    Expect.sequenceEqual (written |> Array.filter (fun l -> l.StartsWith(sprintf "writer %d " w))) (lines w) "each writer's lines whole and in order"
            finally
                if File.Exists path then File.Delete path
        }
        test "--jobs: workers take the cells wave by wave, longest first; a failed worker fails its cell only" {
            let p = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine([| "--profile"; "quick"; "--runs"; runs |]))
            let study = Grid.plan p
            let cells = List.ofSeq study.Cells
            let plan = Executor.jobPlan study cells
            Expect.equal (plan |> List.sumBy List.length) cells.Length "every cell once"
            let waveOf = Executor.waves study |> List.map (fun (c, w) -> c.Key, w) |> Map.ofList
            let waves = plan |> List.map (fun wave -> wave |> List.map (fun c -> waveOf.[c.Key]) |> List.distinct)
            Expect.equal waves (waves |> List.sort) "waves in order"
            Expect.isTrue (waves |> List.forall (fun w -> w.Length = 1)) "one wave per group"
            for wave in plan do
                let steps = wave |> List.map (fun c -> Executor.pendingSteps [ c ])
                Expect.equal steps (List.sortDescending steps) "most steps first"
            // Stand-in workers: one prints and succeeds, one fails with an error line; the others still run.
            let two = plan |> List.concat |> List.truncate 3
            let failing = two.[1]
            let start (c: ContrastSeg.Studies.PlannedCell) =
                let info = Diagnostics.ProcessStartInfo("sh")
                for a in [ "-c"; (if c.Key = failing.Key then "echo 'bad mask in masks/a.png' >&2; exit 3" else "echo trained") ] do info.ArgumentList.Add a
                info
            let row (c: ContrastSeg.Studies.PlannedCell) = Some(ResultsTests.row c.Study c.Setting c.Method c.Seed 0.5)
            let console = new StringWriter()
            let log = new StringWriter()
            let progress = Executor.GridProgress(console, log, two.Length, (fun () -> 0))
            let failures = Executor.runWorkers progress console 2 start row [ two ]
            Expect.equal failures [ failing.Key, "bad mask in masks/a.png" ] "the failed cell with its worker's last error line"
            let text = console.ToString()
            Expect.stringContains text "trained" "worker output forwarded"
            Expect.stringContains text (sprintf "failed after") "failure reported"
            Expect.equal (Text.RegularExpressions.Regex.Matches(text, "done in").Count) 2 "the other cells done"
        }
    ]
