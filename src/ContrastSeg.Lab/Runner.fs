/// Runs grid cells through the C# core, caching finished cells in the result store.
module ContrastSeg.Lab.Runner

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Text.Json
open ContrastSeg.Analysis
open ContrastSeg.Data
open ContrastSeg.Training
open ContrastSeg.Lab.Grid
open ContrastSeg.Lab.Results

type RunOptions =
    { Force: bool
      Console: TextWriter }

let machine () =
    let cpu =
        try File.ReadLines "/proc/cpuinfo" |> Seq.tryFind (fun l -> l.StartsWith "model name") |> Option.map (fun l -> l.Split(':').[1].Trim())
        with _ -> None
    sprintf "%s, %d cores, %s" (defaultArg cpu "unknown CPU") Environment.ProcessorCount (Runtime.InteropServices.RuntimeInformation.OSDescription)

let rec private needsClassification = function
    | ClassificationInit _ -> true
    | SemiSupervised t -> needsClassification t
    | _ -> false

let private train (o: RunOptions) (c: TrainConfig) =
    let r = Experiment.Train(c, o.Console)
    r

/// Every stage folder a cell writes (to delete them with --force).
let cellFolders (p: Profile) (cell: Cell) =
    [ match cell.Recipe with
      | SemiSupervised teacher ->
          yield! stages p cell teacher None |> List.map (fun s -> s.RunDirectory)
          let folder = pseudoFolder p cell
          yield! Option.toList folder
          yield! stages p cell teacher folder |> List.map (fun s -> s.RunDirectory)
      | r -> yield! stages p cell r None |> List.map (fun s -> s.RunDirectory) ]

let private flatten (c: TrainConfig) =
    let d = Dictionary<string, string>()
    let rec walk prefix (e: JsonElement) =
        match e.ValueKind with
        | JsonValueKind.Object -> for p in e.EnumerateObject() do walk (if prefix = "" then p.Name else prefix + "." + p.Name) p.Value
        | _ -> d.[prefix] <- e.ToString()
    use doc = JsonDocument.Parse(c.ToJson())
    walk "" doc.RootElement
    d

/// The run names of the stages that train a cell's final model: what its row was computed from.
let finalStageNames (p: Profile) (cell: Cell) =
    let stagesOf =
        match cell.Recipe with
        | SemiSupervised teacher -> stages p cell teacher (pseudoFolder p cell)
        | r -> stages p cell r None
    String.Join(" -> ", stagesOf |> List.map (fun s -> s.RunName))

/// A stored row is reused only when it was computed from the same settings: run names carry a hash of
/// every weights-defining setting, so a changed profile (steps, augmentation, ...) reruns the cell.
let isCurrent (p: Profile) (cell: Cell) (row: ResultRow) =
    let stored key = match row.Settings.TryGetValue key with | true, v -> v | _ -> ""
    stored "stages" = finalStageNames p cell && stored "eval_split" = p.EvalSplit

/// Trains every stage of a cell (finished stages are found and reused), scores the final model on
/// the profile's evaluation split, and stores the row.
let runCell (p: Profile) (store: ResultStore) (o: RunOptions) (cell: Cell) : ResultRow =
    match store.Read cell.Key with
    | Some row when not o.Force && isCurrent p cell row -> row
    | stale ->
        if stale.IsSome && not o.Force then
            o.Console.WriteLine(sprintf "=== %s: the stored result is from other settings; running it again" cell.Key)
        if o.Force then
            for f in cellFolders p cell do
                if Directory.Exists f then Directory.Delete(f, true)
        let clock = Stopwatch.StartNew()
        o.Console.WriteLine(sprintf "=== %s (%s, %s, %s, seed %d)" cell.Key cell.Experiment cell.Setting cell.Method cell.Seed)
        if needsClassification cell.Recipe then
            let encoder = p.Base.Model.ToOptions(11).Encoder
            ClassificationPretraining.Run(encoder, FashionMnistSource.Open(p.Base.Data.Root), p.Classification, classificationWeights p, o.Console) |> ignore
        let extras = Dictionary<string, float>()
        let finalStages =
            match cell.Recipe with
            | SemiSupervised teacher ->
                let teacherStages = stages p cell teacher None
                teacherStages |> List.iter (train o >> ignore)
                let folder = (pseudoFolder p cell).Value
                let teacherFinal = List.last teacherStages
                if not (File.Exists(Path.Combine(folder, "pseudo-labels.json"))) then
                    let report = Experiment.PseudoLabel(teacherFinal.RunDirectory, teacherFinal, p.Pseudo, folder)
                    o.Console.WriteLine(sprintf "[pseudo-labels] %d images, %.1f %% of pixels kept -> %s" report.Images (100.0 * report.Coverage) folder)
                let report = JsonSerializer.Deserialize<PseudoLabelReport>(File.ReadAllText(Path.Combine(folder, "pseudo-labels.json")))
                extras.["pseudo_coverage"] <- report.Coverage
                let students = stages p cell teacher (Some folder)
                students |> List.iter (train o >> ignore)
                students
            | r ->
                let s = stages p cell r None
                s |> List.iter (train o >> ignore)
                s
        let final = List.last finalStages
        let eval = Experiment.Evaluate(final.RunDirectory, final, null, p.EvalSplit)
        o.Console.WriteLine(sprintf "=== %s: %s mIoU %.2f %%" cell.Key p.EvalSplit (100.0 * eval.Metrics.MeanIoU))
        let settings = flatten final
        settings.["profile"] <- p.Name
        settings.["eval_split"] <- p.EvalSplit
        settings.["stages"] <- finalStageNames p cell
        let row =
            { Experiment = cell.Experiment; Setting = cell.Setting; Method = cell.Method; Seed = cell.Seed; Run = cell.Key
              Stages = finalStages |> List.map (fun s -> s.RunDirectory) |> Array.ofList
              MeanIoU = eval.Metrics.MeanIoU; PixelAccuracy = eval.Metrics.PixelAccuracy
              Extras = extras; Settings = settings; WallSeconds = clock.Elapsed.TotalSeconds
              Machine = machine (); Finished = DateTimeOffset.UtcNow }
        store.Write row
        row

/// Runs `cells` in order with `run`. A cell that cannot run for reasons of its own (a setting or data it
/// cannot use, a diverged loss) is reported and skipped so the other cells still run; environment failures
/// (libtorch missing, out of memory, I/O) stop the grid. Returns the failed cells' keys and messages.
let runAll (console: TextWriter) (error: TextWriter) (run: Cell -> ResultRow) (cells: Cell list) =
    let failures = List<string * string>()
    cells |> List.iteri (fun i c ->
        console.WriteLine(sprintf "[ablations] cell %d/%d: %s" (i + 1) cells.Length c.Key)
        try run c |> ignore
        with
        | :? ConfigException | :? DatasetException | :? TrainingDivergedException as e ->
            error.WriteLine(sprintf "[ablations] cell %s failed: %s" c.Key e.Message)
            failures.Add((c.Key, e.Message)))
    List.ofSeq failures

/// The stored rows of a profile's cells that are current (rows of other settings or other grids are left out of reports).
let currentRows (p: Profile) (store: ResultStore) =
    p.Cells |> List.distinctBy (fun c -> c.Key) |> List.choose (fun c -> store.Read c.Key |> Option.filter (isCurrent p c))

/// Feature-space statistics of one model.
type FeatureSpaceRow = { Method: string; Run: string; IntraClass: float; InterClass: float; Ratio: float; NearestCentroidAccuracy: float; Points: int }

/// t-SNE of softmax-input features (CE vs contrastive at the lowest label count, seed 0, from the report's current `rows`) and the numbers.
let featureSpace (p: Profile) (rows: ResultRow list) (folder: string) (console: TextWriter) =
    match p.Tsne with
    | None -> []
    | Some (labelled, perClass) ->
        let pick meth =
            rows |> List.tryFind (fun r -> r.Experiment = "label-efficiency" && r.Setting = sprintf "labelled=%d" labelled && r.Method = meth && r.Seed = 0)
        let contrastive = p.Cells |> List.tryPick (fun c -> if c.Experiment = "label-efficiency" && c.Method <> "cross-entropy" then Some c.Method else None)
        let models =
            [ yield "cross-entropy", pick "cross-entropy"
              match contrastive with Some m -> yield m, pick m | None -> () ]
            |> List.choose (fun (m, r) -> r |> Option.map (fun r -> m, r))
        if models.Length < 2 then
            console.WriteLine "[feature-space] skipped: the label-efficiency cells at the lowest count (seed 0) are not finished"
            []
        else
            let results =
                models |> List.map (fun (meth, row) ->
                    let run = Array.last row.Stages
                    let config = TrainConfig.Load(Path.Combine(run, "config.json"))
                    let struct (features, labels) = Experiment.SampleFeatures(run, config, perClass, 0)
                    let stats = FeatureSpace.Measure(features, labels)
                    let embedded = Tsne.Embed(features, TsneOptions(Seed = 0L))
                    let xy = embedded.data<float32>().ToArray()
                    let ys = labels.data<int64>().ToArray()
                    let pts = Array.init ys.Length (fun i -> xy.[2 * i], xy.[2 * i + 1], int ys.[i])
                    console.WriteLine(sprintf "[feature-space] %s: intra %.3f inter %.3f ratio %.2f nearest-centroid %.1f %%" meth stats.IntraClass stats.InterClass stats.Ratio (100.0 * stats.NearestCentroidAccuracy))
                    { Method = meth; Run = run; IntraClass = stats.IntraClass; InterClass = stats.InterClass; Ratio = stats.Ratio
                      NearestCentroidAccuracy = stats.NearestCentroidAccuracy; Points = ys.Length }, (sprintf "%s (labelled=%d)" meth labelled, pts))
            let classNames = FashionMnistScenes.SceneInfo.ClassNames |> Array.ofSeq
            Charts.tsne folder classNames (results |> List.map snd)
            let rows = results |> List.map fst
            File.WriteAllText(Path.Combine(folder, "feature-space.json"), JsonSerializer.Serialize(rows, JsonSerializerOptions(WriteIndented = true)))
            rows
