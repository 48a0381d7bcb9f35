/// Damaged result files (issue 29, case 12): a row file cut off or without its fields is set aside, named, and its
/// cell trains again; a cut metrics.jsonl line costs its learning-curve point only; `--report-only` still writes the report.
module ContrastSeg.Lab.Tests.DamagedResultsTests

open System
open System.Collections.Generic
open System.IO
open Expecto
open ContrastSeg.Training
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid
open ContrastSeg.Lab.Results

/// A store whose warnings are collected.
let private storeWithWarnings () =
    let warnings = List<string>()
    ResultStore(ResultsTests.tempDir (), fun w -> lock warnings (fun () -> warnings.Add w)), warnings

let private setAside (store: ResultStore) (key: string) =
    Directory.GetFiles(Path.Combine(store.Root, "rows"), key + ".json.bad-*")

/// A row the profile counts as current for `cell`, as the grid would have stored it.
let private currentRow (p: Profile) (cell: ContrastSeg.Studies.StudyCell) miou = GridTests.storedRow p cell miou

let private metricsLines =
    [| """{"kind":"train","step":10,"cross_entropy":1.0}"""; """{"kind":"val","step":10,"mIoU":0.2}"""; """{"kind":"val","step":20,"mIoU":0.3}""" |]

let tests =
    testList "damaged result files" [
        test "a cut row file is moved aside (not deleted), named in a warning, and its cell counts as not run" {
            let store, warnings = storeWithWarnings ()
            let good, cut = ResultsTests.row "e" "s=1" "m" 0 0.4, ResultsTests.row "e" "s=2" "m" 0 0.5
            store.Write good
            store.Write cut
            let path = store.RowPath cut.CellKey
            let text = File.ReadAllText path
            File.WriteAllText(path, text.Substring(0, text.Length / 2)) // the disk filled up, or a copy was cut off
            Expect.isNone (store.Read cut.CellKey) "treated as missing: the grid trains the cell again"
            Expect.isFalse (File.Exists path) "no longer in the store's place"
            let aside = setAside store cut.CellKey
            Expect.equal aside.Length 1 "kept beside it as <name>.json.bad-<time>"
            Expect.equal (File.ReadAllText aside.[0]) (text.Substring(0, text.Length / 2)) "with its bytes"
            let warning = String.Join("\n", warnings)
            Expect.stringContains warning path "the warning names the file"
            Expect.stringContains warning "not valid JSON" "and says why"
            Expect.stringContains warning (Path.GetFileName aside.[0]) "and where it went"
            Expect.equal (store.All() |> List.map (fun r -> r.CellKey)) [ good.CellKey ] "the other rows still read"
        }

        test "a row {} or one lacking a field is set aside with the missing fields named; All() does the same" {
            let store, warnings = storeWithWarnings ()
            let empty, noMiou = ResultsTests.row "e" "s=1" "m" 0 0.4, ResultsTests.row "e" "s=2" "m" 0 0.5
            store.Write empty
            store.Write noMiou
            File.WriteAllText(store.RowPath empty.CellKey, "{}")
            // A row without MeanIoU would read as 0 %: a measurement nobody made.
            let node = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(store.RowPath noMiou.CellKey)).AsObject()
            node.Remove "MeanIoU" |> ignore
            File.WriteAllText(store.RowPath noMiou.CellKey, node.ToJsonString())
            Expect.isNone (store.Read empty.CellKey) "{}: missing"
            Expect.stringContains warnings.[0] "no Study, Setting, Method, Seed, CellKey, Stages" "names the missing fields"
            Expect.isEmpty (store.All()) "All() sets the other one aside too"
            Expect.stringContains warnings.[1] "(no MeanIoU)" "names the field"
            Expect.stringContains warnings.[1] (store.RowPath noMiou.CellKey) "and the file"
            Expect.equal ((setAside store empty.CellKey).Length, (setAside store noMiou.CellKey).Length) (1, 1) "both kept aside"
            // Fields added later are null in older rows: such a row is whole.
            let older = ResultsTests.row "e" "s=3" "m" 0 0.6
            store.Write older
            let node = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(store.RowPath older.CellKey)).AsObject()
            for field in [ "Numerics"; "Provenance"; "Extras"; "Machine"; "Finished" ] do node.Remove field |> ignore
            File.WriteAllText(store.RowPath older.CellKey, node.ToJsonString())
            Expect.equal (store.Read older.CellKey |> Option.map (fun r -> r.MeanIoU)) (Some 0.6) "a row without the later or descriptive fields reads"
            Expect.equal warnings.Count 2 "and is not set aside"
            File.WriteAllText(store.RowPath empty.CellKey, "null")
            Expect.isNone (store.Read empty.CellKey) "null: missing"
            Expect.stringContains warnings.[2] "not a JSON object" "says why"
        }

        test "isCurrent and staleReason take a row without settings or stages as not current, not a NullReferenceException" {
            let p = quick (Path.Combine(Path.GetTempPath(), "contrastseg-damaged-tests"))
            let plan, cell = Grid.plan p, GridTests.planned p p.Cells.Head
            let row = currentRow p p.Cells.Head 0.3
            Expect.isTrue (Runner.isCurrent plan cell row) "the whole row is current"
            Expect.isFalse (Runner.isCurrent plan cell { row with Settings = null }) "no settings"
            row.Settings.["stages"] <- null
            Expect.isFalse (Runner.isCurrent plan cell row) "a null setting"
            Expect.isSome (Runner.staleReason plan cell { row with Settings = null; Stages = null }) "stale, with a reason"
            Expect.isNone (Runner.finalCheckpoint { row with Stages = null }) "no stages, no checkpoint"
        }

        test "a cut metrics.jsonl line is skipped with one warning naming the file and line; the other points stay" {
            let run = Directory.CreateTempSubdirectory("contrastseg-damaged-metrics-").FullName
            let file = Path.Combine(run, "metrics.jsonl")
            // The last line cut by a kill, then a resumed run appending after it: the cut record and the next share a line.
            File.WriteAllText(file, String.Join("\n", metricsLines) + "\n" + """{"kind":"val","step":30,"mI""")
            let warnings = List<string>()
            let curve () = ReportInputs.validationCurve warnings.Add [| run |] |> Option.map (Array.map (fun p -> p.Step, p.MeanIoU))
            Expect.equal (curve ()) (Some [| 10, 0.2; 20, 0.3 |]) "the intact points"
            Expect.equal warnings.Count 1 "one warning"
            Expect.stringContains warnings.[0] (file + " line 4") "names the file and line"
            File.AppendAllText(file, """{"kind":"val","step":40,"mIoU":0.4}""" + "\n" + """{"kind":"val","step":"x"}""" + "\n")
            warnings.Clear()
            Expect.equal (curve ()) (Some [| 10, 0.2; 20, 0.3 |]) "a joined line and a record with a bad step: no point"
            Expect.equal (warnings |> Seq.map (fun w -> w.Split('(').[0].Trim()) |> List.ofSeq)
                [ sprintf "[learning curves] %s line 4 skipped, not a metrics record" file; sprintf "[learning curves] %s line 5 skipped, not a metrics record" file ] "one per line"
        }

        testCase "--report-only over a cut row, a {} row and rows without curves writes the report and says what it skipped" <| fun () ->
            let root = Directory.CreateTempSubdirectory("contrastseg-damaged-report-").FullName
            let runs, output = Path.Combine(root, "runs"), Path.Combine(root, "results")
            let grid = [ "--profile"; "default"; "--runs"; runs; "--output"; output ]
            let p = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine(Array.ofList grid))
            let store = ResultStore(output)
            let at n isCe = p.Cells |> List.find (fun c -> c.Labelled = Nullable n && (c.Method = "cross-entropy") = isCe && c.Seed = 0)
            // Rows as written before rows stored their validation curves: the report names the chart they cannot give.
            store.Write(currentRow p (at 10 true) 0.101)
            store.Write(currentRow p (at 10 false) 0.112)
            store.Write(currentRow p (at 100 true) 0.2)
            let cut = store.RowPath (at 100 true).Key
            File.WriteAllText(cut, File.ReadAllText(cut).Substring(0, 100))
            File.WriteAllText(store.RowPath (at 100 false).Key, "{}")
            let code, out, err = CliTests.run Cli.ablations (grid @ [ "--report-only" ])
            Expect.equal code 0 (sprintf "exit code 0\n%s\n%s" out err)
            let md = File.ReadAllText(Path.Combine(output, "results.md"))
            Expect.stringContains md "| labelled=10 | 10.1 (n=1) | 11.2 (n=1) |" "the intact rows are reported"
            Expect.isFalse (md.Contains "labelled=100 |") "the damaged ones are not"
            Expect.stringContains err cut "the cut row is named"
            Expect.stringContains err (store.RowPath (at 100 false).Key) "the {} row is named"
            Expect.stringContains md (sprintf "- **not drawn**: learning curves: 2 of their 2 rows hold no validation curve (%s, %s)" (at 10 false).Key (at 10 true).Key) "results.md names the rows without curves"
            Expect.stringContains out "[report] not drawn: learning curves" "and the console"
            Expect.isFalse (File.Exists(Path.Combine(output, "learning-curves.png"))) "no chart with lines missing"
    ]
