/// Result rows, the result store, aggregation and tables.
/// Notebook-safe: only FSharp.Core 10.0 API and System.Text.Json (notebooks `#load` this file).
module ContrastSeg.Lab.Results

open System
open System.Globalization
open System.IO
open System.Text.Json

/// One finished run of the grid: what was run, with which settings, and what it measured.
[<CLIMutable>]
type ResultRow =
    { /// The study the row belongs to, e.g. "label-efficiency" (`Experiment` in rows written before 2026-12).
      Study: string
      /// The varied setting, e.g. "labelled=20".
      Setting: string
      /// The method, e.g. "cross-entropy" or "contrastive+finetune".
      Method: string
      Seed: int
      /// The cell's key (`Cell.Key`, what `ablations --cell` takes; `Run` in rows written before 2026-12).
      CellKey: string
      /// Run folders of the stages, in order.
      Stages: string[]
      /// Validation or test metrics, as fractions.
      MeanIoU: float
      PixelAccuracy: float
      /// Extra numbers (e.g. pseudo-label coverage, compactness).
      Extras: Collections.Generic.Dictionary<string, float>
      /// All settings that define the run, flattened to strings.
      Settings: Collections.Generic.Dictionary<string, string>
      WallSeconds: float
      Machine: string
      /// The numerics class the row was computed under (`Provenance.NumericsClass`: portable, or native on one CPU
      /// model); rows of different classes are never averaged or paired together. Null in rows written before it existed.
      Numerics: string
      /// Where and how: CPU, numerics mode and the instruction levels in force, threads, versions, OS (of its stages and
      /// its evaluation; a key appears once per distinct value).
      Provenance: Collections.Generic.Dictionary<string, string>
      Finished: DateTimeOffset }

/// The numerics class of a row, with a name for rows that predate the record.
let numericsOf (r: ResultRow) =
    if String.IsNullOrWhiteSpace r.Numerics then "unrecorded (rows written before numerics modes, 2026-12-07)" else r.Numerics

let private json =
    let o = JsonSerializerOptions(WriteIndented = true)
    o.NumberHandling <- Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals
    o

/// The fields rows written before the names were made one per concept call by their old names.
let private formerFieldNames = [ "Experiment", "Study"; "Run", "CellKey" ]

/// A row from its JSON, rows of either spelling (published results in docs/results, stores on other machines).
let readRow (text: string) : ResultRow =
    let node = Nodes.JsonNode.Parse(text).AsObject()
    for former, current in formerFieldNames do
        if node.ContainsKey former && not (node.ContainsKey current) then
            let value = node.[former]
            node.Remove former |> ignore
            node.[current] <- value
    node.Deserialize<ResultRow>(json)

/// File-per-run store under `<root>/rows/`: runs written on several machines merge by copying folders.
type ResultStore(root: string) =
    let rows = Path.Combine(root, "rows")

    member _.Root = root
    member _.RowPath(run: string) = Path.Combine(rows, run + ".json")
    member this.Has(run: string) = File.Exists(this.RowPath run)

    /// Writes a row atomically (temp file + rename), replacing an older row of the same run.
    member this.Write(row: ResultRow) =
        Directory.CreateDirectory rows |> ignore
        let target = this.RowPath row.CellKey
        let temp = target + "." + Guid.NewGuid().ToString("N") + ".tmp"
        File.WriteAllText(temp, JsonSerializer.Serialize(row, json))
        File.Move(temp, target, true)

    member this.Read(run: string) : ResultRow option =
        let p = this.RowPath run
        if File.Exists p then Some(readRow (File.ReadAllText p)) else None

    /// Every row in the store, sorted by experiment, setting, method, seed.
    member _.All() : ResultRow list =
        if not (Directory.Exists rows) then []
        else
            Directory.GetFiles(rows, "*.json")
            |> Array.map (fun f ->
                try readRow (File.ReadAllText f)
                with e -> failwithf "result row %s is unreadable: %s" f e.Message)
            |> Array.sortBy (fun r -> r.Study, r.Setting, r.Method, r.Seed)
            |> List.ofArray

/// Mean and spread of one (study, setting, method) cell over seeds, under one numerics class.
type Summary =
    { Study: string
      Setting: string
      Method: string
      Numerics: string
      N: int
      MeanIoU: float
      /// Sample standard deviation over seeds (0 with one seed).
      Std: float
      Min: float
      Max: float
      Seeds: int list }

let private std (xs: float list) =
    match xs with
    | [] | [ _ ] -> 0.0
    | _ ->
        let m = List.average xs
        sqrt (List.sumBy (fun x -> (x - m) * (x - m)) xs / float (List.length xs - 1))

/// Groups rows by study, setting, method and numerics class (never averaging two classes); mIoU mean, spread, range.
let summarise (rows: ResultRow list) : Summary list =
    rows
    |> List.groupBy (fun r -> r.Study, r.Setting, r.Method, numericsOf r)
    |> List.map (fun ((e, s, m, numerics), rs) ->
        let v = rs |> List.map (fun r -> r.MeanIoU)
        { Study = e; Setting = s; Method = m; Numerics = numerics; N = List.length rs
          MeanIoU = List.average v; Std = std v; Min = List.min v; Max = List.max v
          Seeds = rs |> List.map (fun r -> r.Seed) |> List.sort })

let private pct (x: float) = (100.0 * x).ToString("F1", CultureInfo.InvariantCulture)

/// Sorts settings like "labelled=20" numerically when their values are numbers.
let settingOrder (s: string) =
    let v = if s.Contains "=" then s.Substring(s.IndexOf '=' + 1) else s
    match Double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture) with
    | true, x -> (0, x, s)
    | _ -> (1, 0.0, s)

/// A Markdown table per study and numerics class: rows = settings, columns = methods, cells = mean ± std (n). A study
/// with rows of several classes gets one table per class, the minority ones flagged as not comparable.
let markdown (summaries: Summary list) =
    let sb = Text.StringBuilder()
    let classesOf study = summaries |> List.filter (fun s -> s.Study = study) |> List.countBy (fun s -> s.Numerics) |> List.sortByDescending snd
    for (exp, numerics), cells in summaries |> List.groupBy (fun s -> s.Study, s.Numerics) do
        let methods = cells |> List.map (fun c -> c.Method) |> List.distinct
        let classes = classesOf exp
        sb.AppendLine(sprintf "### %s\n" exp)
          .AppendLine(sprintf "numerics: %s%s\n" numerics
                        (if classes.Length > 1 && fst classes.Head <> numerics
                         then sprintf " — **flagged: another numerics class than the study's other rows (%s); not comparable with them**" (fst classes.Head)
                         else ""))
          .AppendLine("| setting | " + String.Join(" | ", methods) + " |")
          .AppendLine("|---|" + String.Join("|", methods |> List.map (fun _ -> "---:")) + "|") |> ignore
        for setting in cells |> List.map (fun c -> c.Setting) |> List.distinct |> List.sortBy settingOrder do
            let cell m =
                match cells |> List.tryFind (fun c -> c.Setting = setting && c.Method = m) with
                | Some c when c.N > 1 -> sprintf "%s ± %s (n=%d)" (pct c.MeanIoU) (pct c.Std) c.N
                | Some c -> sprintf "%s (n=1)" (pct c.MeanIoU)
                | None -> "-"
            sb.AppendLine("| " + setting + " | " + String.Join(" | ", methods |> List.map cell) + " |") |> ignore
        sb.AppendLine() |> ignore
    sb.ToString()

let private csvField (s: string) = if s.IndexOfAny([| ','; '"'; '\n' |]) >= 0 then "\"" + s.Replace("\"", "\"\"") + "\"" else s

/// One CSV line per run (all rows, not aggregated), with mIoU in percent.
let csv (rows: ResultRow list) =
    let header = "study,setting,method,seed,cell_key,miou_pct,pixel_accuracy_pct,wall_seconds,numerics"
    let lines =
        rows |> List.map (fun r ->
            String.Join(",", [ csvField r.Study; csvField r.Setting; csvField r.Method; string r.Seed; csvField r.CellKey
                               pct r.MeanIoU; pct r.PixelAccuracy; r.WallSeconds.ToString("F1", CultureInfo.InvariantCulture)
                               csvField (numericsOf r) ]))
    String.Join("\n", header :: lines) + "\n"
