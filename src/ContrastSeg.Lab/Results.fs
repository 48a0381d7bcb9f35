/// Result rows, the result store, aggregation and tables.
/// Notebook-safe: only FSharp.Core 10.0 API and System.Text.Json (notebooks `#load` this file).
module ContrastSeg.Lab.Results

open System
open System.Globalization
open System.IO
open System.Text.Json

/// One validation of a row's final model during its training.
[<CLIMutable>]
type CurvePoint =
    { /// The training step, counted across the row's stages (fine-tuning steps after the pretraining steps).
      Step: int
      /// Validation mIoU on the plan's validation split, as a fraction.
      MeanIoU: float }

/// The feature space of a row's final model as the report shows it (table, t-SNE), computed when the row was written
/// from its checkpoint: softmax-input features of sampled validation pixels, their statistics and their t-SNE.
[<CLIMutable>]
type FeatureSample =
    { /// Pixels sampled per class (the plan's `FeatureSpace.PointsPerClass`).
      PointsPerClass: int
      /// The dataset's class names, by class index.
      ClassNames: string[]
      /// `FeatureSpace.Measure` of the sampled features.
      IntraClass: float
      InterClass: float
      Ratio: float
      NearestCentroidAccuracy: float
      /// t-SNE of the features (seed 0): one point per sampled pixel, and its class.
      TsneX: float32[]
      TsneY: float32[]
      Classes: int[] }

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
      Finished: DateTimeOffset
      /// The validation curve of its final model, read from its stages' metrics.jsonl when it was written, so the
      /// report's learning curves need no run folder. None in rows written before rows stored it (2026-12-07).
      ValidationCurve: CurvePoint[] option
      /// The feature space of its final model, in the rows the plan's feature-space request names (`StudyPlan.NeedsCheckpoint`);
      /// None in other rows and in rows written before rows stored it (2026-12-07).
      FeatureSpace: FeatureSample option }

/// How a row's `Provenance` value holds the distinct values its stages and evaluation took: joined with this.
let provenanceSeparator = " | "

/// The distinct values a row's `Provenance` value holds.
let provenanceValues (joined: string) = joined.Split(provenanceSeparator) |> List.ofArray

/// The numerics class of a row, with a name for rows that predate the record.
let numericsOf (r: ResultRow) =
    if String.IsNullOrWhiteSpace r.Numerics then "unrecorded (rows written before numerics modes, 2026-12-07)" else r.Numerics

let private json =
    let o = JsonSerializerOptions(WriteIndented = true)
    o.NumberHandling <- Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals
    o

/// The fields rows written before the names were made one per concept call by their old names.
let private formerFieldNames = [ "Experiment", "Study"; "Run", "CellKey" ]

/// The fields without which a stored row is damaged: what names its cell, what it measured (a missing MeanIoU would
/// read as 0 %), what decides its reuse, and its run time (summed in the report). Every row ever written has them;
/// fields added later (Numerics, Provenance) are null in older rows and stay optional.
let private requiredFields = [| "Study"; "Setting"; "Method"; "Seed"; "CellKey"; "Stages"; "MeanIoU"; "PixelAccuracy"; "Settings"; "WallSeconds" |]

/// A row from its JSON, rows of either spelling (published results in docs/results, stores on other machines).
/// Text that is not a row (cut JSON, `{}`, a required field missing or null) raises InvalidDataException or JsonException saying why.
let readRow (text: string) : ResultRow =
    let node =
        match Nodes.JsonNode.Parse text with
        | :? Nodes.JsonObject as o -> o
        | _ -> raise (InvalidDataException "not a JSON object")
    for former, current in formerFieldNames do
        if node.ContainsKey former && not (node.ContainsKey current) then
            let value = node.[former]
            node.Remove former |> ignore
            node.[current] <- value
    match requiredFields |> Array.filter (fun f -> isNull node.[f]) with
    | [||] -> node.Deserialize<ResultRow>(json)
    | missing -> raise (InvalidDataException(sprintf "no %s" (String.Join(", ", missing))))

/// File-per-run store under `<root>/rows/`: runs written on several machines merge by copying folders.
/// A row file that is not a row (cut off, `{}`, a required field missing) is moved aside to `<name>.json.bad-<UTC time>`,
/// never deleted, with a warning to `warn` naming it and why; its cell counts as not run (the grid trains it again).
type ResultStore(root: string, warn: string -> unit) =
    let rows = Path.Combine(root, "rows")

    /// Warnings go to standard error.
    new(root: string) = ResultStore(root, fun (line: string) -> Console.Error.WriteLine line)

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

    /// The row in `path`, or None (set aside) when the file is not a row.
    member private _.ReadFile(path: string) : ResultRow option =
        let damaged =
            try Choice1Of2(readRow (File.ReadAllText path))
            with
            | :? JsonException as e -> Choice2Of2(sprintf "not valid JSON (%s)" (e.Message.Split('\n').[0].TrimEnd('.')))
            | :? InvalidDataException as e -> Choice2Of2 e.Message
            | :? FileNotFoundException -> Choice2Of2 "" // set aside meanwhile by another process of the grid
        match damaged with
        | Choice1Of2 row -> Some row
        | Choice2Of2 "" -> None
        | Choice2Of2 why ->
            let aside = sprintf "%s.bad-%s" path (DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture))
            try
                File.Move(path, aside)
                warn (sprintf "[results] %s is not a result row (%s): moved aside to %s; its cell counts as not run and trains again" path why (Path.GetFileName aside))
            with :? FileNotFoundException -> () // another process of the grid moved it first, and said so
            None

    member this.Read(run: string) : ResultRow option =
        let p = this.RowPath run
        if File.Exists p then this.ReadFile p else None

    /// Every row in the store, sorted by experiment, setting, method, seed (damaged files set aside as by `Read`).
    member this.All() : ResultRow list =
        if not (Directory.Exists rows) then []
        else
            Directory.GetFiles(rows, "*.json")
            |> Array.filter (fun f -> f.EndsWith(".json", StringComparison.Ordinal))
            |> Array.choose this.ReadFile
            |> Array.sortBy (fun r -> r.Study, r.Setting, r.Method, r.Seed)
            |> List.ofArray

/// The stored rows of `rows` whose cell is not one of `keys` (a plan's cells): other seeds or settings than the plan
/// names, which its report leaves out and names.
let outsidePlan (keys: string seq) (rows: ResultRow list) =
    let planned = Set.ofSeq keys
    rows |> List.filter (fun r -> not (planned.Contains r.CellKey))

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
