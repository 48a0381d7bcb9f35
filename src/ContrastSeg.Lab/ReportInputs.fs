/// What the report reads besides the rows: the learning curves in the stages' metrics.jsonl and the feature space of
/// the final models of one label count.
module ContrastSeg.Lab.ReportInputs

open System
open System.Collections.Generic
open System.IO
open System.Text.Json
open ContrastSeg.Analysis
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab.Results

/// Validation mIoU (%) measured during the training of a row's final model, as (step, mIoU) across its
/// stages (fine-tuning steps counted after the pretraining steps), read from each stage's metrics.jsonl.
/// Empty when the run folders are not on this machine. A line that is not a record (cut off when a run was
/// killed mid-write) is skipped with a warning to `warn` naming the file and line: the curve lacks that point.
let validationCurve (warn: string -> unit) (row: ResultRow) =
    let points = List<float * float>()
    let mutable offset = 0
    for stage in row.Stages do
        let file = Path.Combine(stage, "metrics.jsonl")
        let mutable last = 0
        if File.Exists file then
            let seen = Dictionary<int, float>() // a resumed run appends: the last record of a step counts
            for i, line in File.ReadLines file |> Seq.indexed do
                if not (String.IsNullOrWhiteSpace line) then
                    try
                        use doc = JsonDocument.Parse line
                        let e = doc.RootElement
                        let step = e.GetProperty("step").GetInt32()
                        last <- max last step
                        match e.GetProperty("kind").GetString(), e.TryGetProperty "mIoU" with
                        | "val", (true, v) when v.ValueKind = JsonValueKind.Number -> seen.[step] <- 100.0 * v.GetDouble()
                        | _ -> ()
                    with :? JsonException | :? KeyNotFoundException | :? InvalidOperationException | :? FormatException as ex ->
                        warn (sprintf "[learning curves] %s line %d skipped, not a metrics record (%s)" file (i + 1) (ex.Message.Split('\n').[0].TrimEnd('.')))
            for KeyValue (step, v) in seen |> Seq.sortBy (fun kv -> kv.Key) do points.Add((float (offset + step), v))
        offset <- offset + last
    List.ofSeq points

/// The label-efficiency study's learning curves (seed 0 of each method and label count): validation mIoU
/// against training steps, so a reader sees whether each run converged.
let learningCurves (warn: string -> unit) (rows: ResultRow list) =
    rows
    |> List.filter (fun r -> r.Study = "label-efficiency" && r.Seed = 0)
    |> List.sortBy (fun r -> settingOrder r.Setting, r.Method)
    |> List.map (fun r -> sprintf "%s, %s" r.Method r.Setting, validationCurve warn r)
    |> List.filter (fun (_, pts) -> not pts.IsEmpty)

/// Feature-space statistics of one model.
type FeatureSpaceRow = { Method: string; Run: string; IntraClass: float; InterClass: float; Ratio: float; NearestCentroidAccuracy: float; Points: int }

/// t-SNE of softmax-input features (CE vs contrastive at the lowest label count, seed 0, from the report's current `rows`) and the numbers.
let featureSpace (plan: StudyPlan) (rows: ResultRow list) (folder: string) (console: TextWriter) =
    match plan.FeatureSpace with
    | null -> []
    | request ->
        let labelled, perClass = request.Labelled, request.PointsPerClass
        let pick meth =
            rows |> List.tryFind (fun r -> r.Study = "label-efficiency" && r.Setting = sprintf "labelled=%d" labelled && r.Method = meth && r.Seed = 0)
        let contrastive = plan.Cells |> Seq.tryPick (fun c -> if c.Study = "label-efficiency" && c.Method <> "cross-entropy" then Some c.Method else None)
        let models =
            [ yield "cross-entropy", pick "cross-entropy"
              match contrastive with Some m -> yield m, pick m | None -> () ]
            |> List.choose (fun (m, r) -> r |> Option.map (fun r -> m, r))
        let missing = models |> List.filter (fun (_, r) -> (Runner.finalCheckpoint r).IsNone)
        if models.Length < 2 then
            console.WriteLine "[feature-space] skipped: the label-efficiency cells at the lowest count (seed 0) are not finished"
            []
        elif not missing.IsEmpty then
            for m, r in missing do
                console.WriteLine(sprintf "[feature-space] skipped: no checkpoint of %s on this machine (%s); run the grid without --report-only to train it" m (Array.last r.Stages))
            []
        else
            // Both models read the same validation images: one session opens them once.
            let sessions = Runner.CellSessions(console)
            let results =
                models |> List.map (fun (meth, row) ->
                    let run = Array.last row.Stages
                    // The grid's device, not the one the run's config.json records (where it trained).
                    let config = ConfigOverrides.Apply(TrainConfig.Load(Path.Combine(run, "config.json")), [ "Runtime.Device=" + plan.Device ])
                    let struct (features, labels) = (sessions.For config).SampleFeatures(run, config.Model, perClass, 0)
                    let stats = FeatureSpace.Measure(features, labels)
                    let embedded = Tsne.Embed(features, TsneOptions(Seed = 0L))
                    let xy = embedded.data<float32>().ToArray()
                    let ys = labels.data<int64>().ToArray()
                    let pts = Array.init ys.Length (fun i -> xy.[2 * i], xy.[2 * i + 1], int ys.[i])
                    console.WriteLine(sprintf "[feature-space] %s: intra %.3f inter %.3f ratio %.2f nearest-centroid %.1f %%" meth stats.IntraClass stats.InterClass stats.Ratio (100.0 * stats.NearestCentroidAccuracy))
                    { Method = meth; Run = run; IntraClass = stats.IntraClass; InterClass = stats.InterClass; Ratio = stats.Ratio
                      NearestCentroidAccuracy = stats.NearestCentroidAccuracy; Points = ys.Length }, (sprintf "%s (labelled=%d)" meth labelled, pts))
            let classNames = sessions.Opened.Head.Data.Info.ClassNames |> Array.ofSeq
            Charts.tsne folder classNames (results |> List.map snd)
            let rows = results |> List.map fst
            File.WriteAllText(Path.Combine(folder, "feature-space.json"), JsonSerializer.Serialize(rows, JsonSerializerOptions(WriteIndented = true)))
            rows
