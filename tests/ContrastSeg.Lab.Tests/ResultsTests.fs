module ContrastSeg.Lab.Tests.ResultsTests

open System
open System.IO
open System.Collections.Generic
open System.Threading
open Expecto
open ContrastSeg.Lab.Results

let row exp setting meth seed miou : ResultRow =
    { Study = exp; Setting = setting; Method = meth; Seed = seed
      CellKey = sprintf "%s_%s_%s_s%d" exp (setting.Replace("=", "")) meth seed
      Stages = [| "runs/a" |]; MeanIoU = miou; PixelAccuracy = 0.9
      Extras = Dictionary(); Settings = Dictionary(dict [ "seed", string seed ])
      WallSeconds = 12.5; Machine = "test"; Numerics = "portable: ATen AVX2, oneDNN on (AVX2), MKL COMPATIBLE, 1 thread, TorchSharp 0.107.0"; Provenance = null
      Finished = DateTimeOffset(2026, 11, 27, 0, 0, 0, TimeSpan.Zero); ValidationCurve = None; FeatureSpace = None }

let tempDir () = Directory.CreateTempSubdirectory("contrastseg-results-").FullName

let tests =
    testList "results" [
        test "rows round-trip through the store and are found by run name" {
            let store = ResultStore(tempDir ())
            let r = row "label-efficiency" "labelled=20" "cross-entropy" 0 0.25
            Expect.isFalse (store.Has r.CellKey) "empty store"
            store.Write r
            Expect.isTrue (store.Has r.CellKey) "written"
            let back = (store.Read r.CellKey).Value
            Expect.equal back.MeanIoU 0.25 "mIoU"
            Expect.equal back.Settings.["seed"] "0" "settings"
            Expect.equal (store.All() |> List.length) 1 "one row"
        }

        test "rows written under the former field names (Experiment, Run) read as Study and CellKey" {
            let store = ResultStore(tempDir ())
            let r = row "label-efficiency" "labelled=10" "cross-entropy" 1 0.2
            store.Write r
            let path = store.RowPath r.CellKey
            File.WriteAllText(path, File.ReadAllText(path).Replace("\"Study\"", "\"Experiment\"").Replace("\"CellKey\"", "\"Run\""))
            Expect.stringContains (File.ReadAllText path) "\"Experiment\": \"label-efficiency\"" "a row as 212fea4 wrote it"
            let back = (store.Read r.CellKey).Value
            Expect.equal (back.Study, back.CellKey, back.MeanIoU) (r.Study, r.CellKey, 0.2) "read under the current names"
            // The published results (docs/results, written before the rename) read too: the notebook falls back to them.
            let published = ResultStore(Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "docs", "results", "default")).All()
            Expect.isNonEmpty published "published rows"
            Expect.isTrue (published |> List.forall (fun p -> not (isNull p.Study) && p.CellKey.EndsWith(sprintf ".s%d" p.Seed))) "every row's study and key"
        }

        test "stores written on different machines merge by copying files" {
            let a, b = ResultStore(tempDir ()), ResultStore(tempDir ())
            a.Write(row "e" "s=1" "m" 0 0.1)
            b.Write(row "e" "s=1" "m" 1 0.3)
            for f in Directory.GetFiles(Path.Combine(b.Root, "rows")) do
                File.Copy(f, Path.Combine(a.Root, "rows", Path.GetFileName(f: string) |> nonNull))
            let s = summarise (a.All()) |> List.exactlyOne
            Expect.equal s.N 2 "two seeds"
            Expect.floatClose Accuracy.high s.MeanIoU 0.2 "mean"
            Expect.floatClose Accuracy.high s.Std (sqrt 0.02) "sample std"
            Expect.equal s.Seeds [ 0; 1 ] "seeds"
        }

        test "readers never see a half-written row while writers replace rows (a report rebuilt while cluster tasks finish)" {
            // A report job reads rows/ while straggling tasks write theirs: rows go through a temp file and a rename,
            // so a reader finds the old row, the new one or none, never a cut one (which it would set aside as damaged).
            let root = tempDir ()
            let warnings = Collections.Concurrent.ConcurrentQueue<string>()
            let store = ResultStore(root, warnings.Enqueue)
            let big (r: ResultRow) = (for i in 0 .. 299 do r.Settings.[sprintf "setting.%03d" i] <- String('x', 200)); r
            for w in 0 .. 1 do
                for n in 0 .. 3 do store.Write(big (row "e" (sprintf "s=%d" n) "m" w 0.0))
            let mutable reading = true
            let writer w =
                Threading.Tasks.Task.Run(fun () ->
                    let mutable n = 0
                    while Volatile.Read &reading do
                        store.Write(big (row "e" (sprintf "s=%d" (n % 4)) "m" w (float n)))
                        n <- n + 1
                    n)
            let writers = [ writer 0; writer 1 ]
            let reader () =
                Threading.Tasks.Task.Run(fun () ->
                    for _ in 1 .. 30 do
                        for r in store.All() do
                            if r.Settings.Count <> 301 then failwithf "%s read with %d settings" r.CellKey r.Settings.Count)
            Threading.Tasks.Task.WaitAll [| reader (); reader () |]
            Volatile.Write(&reading, false)
            let written = writers |> List.sumBy (fun t -> t.Result)
            Expect.isGreaterThan written 8 "rows were rewritten while 2 readers read rows/ 30 times each"
            Expect.isEmpty warnings (sprintf "no row set aside: %A" (List.ofSeq warnings))
            Expect.isEmpty (Directory.GetFiles(Path.Combine(root, "rows"), "*.bad-*")) "no row moved aside"
            Expect.equal (store.All() |> List.length) 8 "4 settings x 2 writers"
        }

        test "a NaN mIoU survives the store" {
            let store = ResultStore(tempDir ())
            store.Write(row "e" "s" "m" 0 nan)
            Expect.isTrue (Double.IsNaN (store.All() |> List.head).MeanIoU) "NaN kept"
        }

        test "summaries group by experiment, setting and method" {
            let rows =
                [ for seed in 0..2 do
                    yield row "label-efficiency" "labelled=20" "cross-entropy" seed (0.10 + 0.01 * float seed)
                    yield row "label-efficiency" "labelled=20" "contrastive" seed (0.20 + 0.01 * float seed)
                    yield row "label-efficiency" "labelled=200" "cross-entropy" seed 0.4 ]
            let s = summarise rows
            Expect.equal s.Length 3 "three cells"
            let ce20 = s |> List.find (fun c -> c.Setting = "labelled=20" && c.Method = "cross-entropy")
            Expect.floatClose Accuracy.high ce20.MeanIoU 0.11 "mean over seeds"
            Expect.floatClose Accuracy.high ce20.Std 0.01 "std over seeds"
            let flat = s |> List.find (fun c -> c.Setting = "labelled=200")
            Expect.floatClose Accuracy.veryHigh flat.Std 0.0 "identical values"
        }

        test "markdown tables sort settings numerically and show mean ± std" {
            let rows = [ row "x" "labelled=200" "ce" 0 0.4; row "x" "labelled=20" "ce" 0 0.1; row "x" "labelled=20" "ce" 1 0.2; row "x" "labelled=20" "con" 0 0.3 ]
            let md = markdown (summarise rows)
            let i20, i200 = md.IndexOf "| labelled=20 |", md.IndexOf "| labelled=200 |"
            Expect.isTrue (i20 >= 0 && i200 > i20) "numeric order"
            Expect.stringContains md "15.0 ± 7.1 (n=2)" "mean ± std with n"
            Expect.stringContains md "| labelled=200 | 40.0 (n=1) | - |" "missing cell shown as -"
        }

        test "csv has one line per run with a header" {
            let text = csv [ row "e" "a,b" "m" 0 0.5 ]
            let lines = text.Trim().Split('\n')
            Expect.equal lines.Length 2 "header + row"
            Expect.stringContains lines.[1] "\"a,b\"" "quoted field"
            Expect.stringContains lines.[1] ",50.0," "percent"
        }
    ]
