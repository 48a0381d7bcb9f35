/// What the report draws besides the tables, and where it comes from: each row stores what its charts need (its
/// validation curve; the feature space of the models the plan's feature-space request names), read from its run
/// folders when the row is written, so a report rebuilt from rows and plan.json alone (`--report-only` on a copy of
/// docs/results/<profile>) draws every chart. Rows written before rows stored these parts still load: the report
/// names the charts they cannot give and why.
module ContrastSeg.Lab.ReportInputs

open System
open System.Collections.Generic
open System.IO
open System.Text.Json
open ContrastSeg.Analysis
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab.Results

// ------------------------------------------------------------------ read from run folders when a row is written

/// Validation mIoU measured during the training of a model whose stages are `stages` (run folders, in order), across
/// its stages (fine-tuning steps counted after the pretraining steps), read from each stage's metrics.jsonl. None when a
/// stage's metrics.jsonl is not on this machine. A line that is not a record (cut off when a run was killed mid-write) is
/// skipped with a warning to `warn` naming the file and line: the curve lacks that point.
let validationCurve (warn: string -> unit) (stages: string[]) : CurvePoint[] option =
    let files = stages |> Array.map (fun stage -> Path.Combine(stage, "metrics.jsonl"))
    if files.Length = 0 || not (Array.forall File.Exists files) then None
    else
        let points = List<CurvePoint>()
        let mutable offset = 0
        for file in files do
            let mutable last = 0
            let seen = Dictionary<int, float>() // a resumed run appends: the last record of a step counts
            for i, line in File.ReadLines file |> Seq.indexed do
                if not (String.IsNullOrWhiteSpace line) then
                    try
                        use doc = JsonDocument.Parse line
                        let e = doc.RootElement
                        let step = e.GetProperty("step").GetInt32()
                        last <- max last step
                        match e.GetProperty("kind").GetString(), e.TryGetProperty "mIoU" with
                        | "val", (true, v) when v.ValueKind = JsonValueKind.Number -> seen.[step] <- v.GetDouble()
                        | _ -> ()
                    with :? JsonException | :? KeyNotFoundException | :? InvalidOperationException | :? FormatException as ex ->
                        warn (sprintf "[learning curves] %s line %d skipped, not a metrics record (%s)" file (i + 1) (ex.Message.Split('\n').[0].TrimEnd('.')))
            for KeyValue (step, v) in seen |> Seq.sortBy (fun kv -> kv.Key) do points.Add({ Step = offset + step; MeanIoU = v } : CurvePoint)
            offset <- offset + last
        Some(points.ToArray())

/// The feature space of the model in run folder `run` (its scored checkpoint) on `session`'s validation images:
/// `perClass` sampled pixels per class (seed 0), their statistics and their t-SNE (seed 0).
let sampleFeatureSpace (session: RunSession) (run: string) (model: ModelSettings) (perClass: int) : FeatureSample =
    let struct (features, labels) = session.SampleFeatures(run, model, perClass, 0)
    use features = features
    use labels = labels
    let stats = FeatureSpace.Measure(features, labels)
    use embedded = Tsne.Embed(features, TsneOptions(Seed = 0L))
    let xy = embedded.data<float32>().ToArray()
    let ys = labels.data<int64>().ToArray()
    { PointsPerClass = perClass; ClassNames = Array.ofSeq session.Data.Info.ClassNames
      IntraClass = stats.IntraClass; InterClass = stats.InterClass; Ratio = stats.Ratio; NearestCentroidAccuracy = stats.NearestCentroidAccuracy
      TsneX = Array.init ys.Length (fun i -> xy.[2 * i]); TsneY = Array.init ys.Length (fun i -> xy.[2 * i + 1]); Classes = ys |> Array.map int }

/// Whether `row` of `cell` lacks the feature space the plan's report shows (none stored, or sampled at another count).
let lacksFeatureSpace (plan: StudyPlan) (cell: PlannedCell) (row: ResultRow) =
    plan.NeedsCheckpoint cell
    && (match row.FeatureSpace with
        | Some f -> f.PointsPerClass <> plan.FeatureSpace.PointsPerClass
        | None -> true)

// ------------------------------------------------------------------ drawn by the report from stored rows alone

/// Why rows written before rows stored a part cannot give it, and how to add it without training.
let private refreshHint =
    "written before rows stored it (2026-12-07); running the grid again where their run folders are adds it to the rows without training"

/// A chart the rows cannot give: (chart, why, naming the rows).
type NotDrawn = { Chart: string; Why: string }

/// The studies whose methods are compared with cross-entropy (paired differences, learning curves): the
/// label-efficiency study and the peers' options.
let comparedStudies = set [ "label-efficiency"; "peers" ]

/// The learning curves of the label-efficiency study and the peers' options (seed 0 of each method and label count),
/// from the rows' stored validation curves: validation mIoU (%) against training steps, so a reader sees whether each
/// run converged.
/// Error when one of those rows holds no curve (a chart missing some of its lines would pass for the whole study).
let learningCurves (rows: ResultRow list) : Result<(string * (float * float) list) list, NotDrawn> =
    let shown =
        rows
        |> List.filter (fun r -> comparedStudies.Contains r.Study && r.Seed = 0)
        |> List.sortBy (fun r -> settingOrder r.Setting, r.Method)
    match shown |> List.filter (fun r -> r.ValidationCurve.IsNone) with
    | [] ->
        shown
        |> List.map (fun r -> sprintf "%s, %s" r.Method r.Setting, r.ValidationCurve.Value |> Array.map (fun p -> float p.Step, 100.0 * p.MeanIoU) |> List.ofArray)
        |> List.filter (fun (_, pts) -> not pts.IsEmpty)
        |> Ok
    | lacking ->
        Error { Chart = "learning curves"
                Why = sprintf "%d of their %d rows hold no validation curve (%s), %s" lacking.Length shown.Length
                          (String.Join(", ", lacking |> List.map (fun r -> r.CellKey))) refreshHint }

/// Feature-space statistics of one model, as feature-space.json holds them.
type FeatureSpaceRow = { Method: string; Run: string; IntraClass: float; InterClass: float; Ratio: float; NearestCentroidAccuracy: float; Points: int }

/// The feature space the plan requests (CE and the contrastive method at its label count, seed 0), from the rows'
/// stored samples: the numbers and the t-SNE panels. Ok [] when the plan requests none; Error naming the rows that
/// are not there or hold no sample.
let featureSpace (plan: StudyPlan) (rows: ResultRow list) : Result<(FeatureSpaceRow * FeatureSample) list, NotDrawn> =
    match plan.FeatureSpace with
    | null -> Ok []
    | request ->
        let cells = plan.Cells |> Seq.filter plan.NeedsCheckpoint |> Seq.distinctBy (fun c -> c.Key) |> List.ofSeq
        // Cross-entropy first, as the t-SNE panels and the table always showed them.
        let cells = cells |> List.sortBy (fun c -> (if c.Method = "cross-entropy" then 0 else 1), c.Method)
        let found = cells |> List.map (fun c -> c, rows |> List.tryFind (fun r -> r.CellKey = c.Key))
        let notDrawn why = Error { Chart = sprintf "feature space and t-SNE (labelled=%d, seed 0)" request.Labelled; Why = why }
        match found |> List.filter (fun (_, r) -> r.IsNone) with
        | _ when cells.Length < 2 -> notDrawn "the plan has no cross-entropy and contrastive cell at that count and seed"
        | (_ :: _) as missing -> notDrawn (sprintf "their cells have no current row: %s" (String.Join(", ", missing |> List.map (fun (c, _) -> c.Key))))
        | [] ->
            match found |> List.filter (fun (c, r) -> lacksFeatureSpace plan c r.Value) with
            | (_ :: _) as lacking ->
                notDrawn (sprintf "rows %s hold no feature space of %d pixels per class, %s"
                              (String.Join(", ", lacking |> List.map (fun (c, _) -> c.Key))) request.PointsPerClass refreshHint)
            | [] ->
                found |> List.map (fun (c, r) ->
                    let r, f = r.Value, r.Value.FeatureSpace.Value
                    { Method = c.Method; Run = Array.last r.Stages; IntraClass = f.IntraClass; InterClass = f.InterClass; Ratio = f.Ratio
                      NearestCentroidAccuracy = f.NearestCentroidAccuracy; Points = f.Classes.Length }, f)
                |> Ok

/// The t-SNE panel of a stored sample: (title, points (x, y, class)).
let tsnePanel (labelled: int) (row: FeatureSpaceRow, sample: FeatureSample) =
    sprintf "%s (labelled=%d)" row.Method labelled, Array.init sample.Classes.Length (fun i -> sample.TsneX.[i], sample.TsneY.[i], sample.Classes.[i])
