/// Runs the cells of a study plan through the C# core: reuses finished cells from the result store, trains the
/// stages a cell lacks, scores its final model and stores its row.
module ContrastSeg.Lab.Runner

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Text.Json
open ContrastSeg.Data
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab.Results

type RunOptions =
    { Force: bool
      Console: TextWriter }

let machine () =
    sprintf "%O, %d cores, %s" ContrastSeg.Runtime.CpuInfo.Machine Environment.ProcessorCount (Runtime.InteropServices.RuntimeInformation.OSDescription)

/// The numerics class and provenance of a row: every training invocation of its stages (their provenance.jsonl; a stage
/// trained before provenance was recorded counts as "unrecorded") and this process, which evaluates it. One class, or
/// "mixed: ..." when they differ; provenance values that differ are all kept, joined with `provenanceSeparator`.
let rowProvenance (stageFolders: string list) =
    let current = ContrastSeg.Runtime.Provenance.Current()
    let recorded = stageFolders |> List.map (fun s -> s, ContrastSeg.Runtime.Provenance.ReadAll s |> List.ofSeq)
    let all = (recorded |> List.collect snd) @ [ current ]
    let classes =
        [ for _, ps in recorded do
            if ps.IsEmpty then yield "unrecorded"
            for p in ps do yield p.NumericsClass
          yield current.NumericsClass ] |> List.distinct
    let numerics = match classes with [ c ] -> c | cs -> "mixed: " + String.Join(provenanceSeparator, cs)
    let provenance = Dictionary<string, string>()
    let add key (value: string) =
        match provenance.TryGetValue key with
        | true, old when provenanceValues old |> List.contains value -> ()
        | true, old -> provenance.[key] <- old + provenanceSeparator + value
        | _ -> provenance.[key] <- value
    for p in all do
        add "cpu" p.Cpu; add "instruction_set" p.InstructionSet; add "numerics" p.Numerics; add "aten_capability" p.AtenCapability
        add "onednn" p.OneDnn; add "mkl_branch" p.MklBranch; add "threads" (string p.Threads); add "torchsharp" p.TorchSharp; add "os" p.Os
    numerics, provenance

/// A libtorch error in a cell that the trainer's automatic resumes (Trainer.Run) did not get past. `Log` is
/// the log of the run it happened in: its metrics.jsonl, which also records each automatic resume.
type CellNativeException(message: string, log: string, inner: exn) =
    inherit Exception(message, inner)
    member _.Log = log

/// Runs one part of a cell (`what`: "training <run>", ...), turning a libtorch error into a
/// `CellNativeException` that names the part and `log`.
let inCellPart (what: string) (log: string) (f: unit -> 'T) : 'T =
    try f ()
    with :? Runtime.InteropServices.ExternalException as e ->
        raise (CellNativeException(sprintf "libtorch error while %s: %s (log: %s)" what (e.Message.Split('\n').[0].Trim()) log, log, e))

let private runLog (c: TrainConfig) = Path.Combine(c.RunDirectory, "metrics.jsonl")

/// The verified final checkpoint of a stage that has taken all its steps under these settings, or None
/// (not started, unfinished, damaged or of other settings: then a session's `Train` resumes, replays or refuses).
let finishedCheckpoint (c: TrainConfig) =
    match CheckpointStore(c.RunDirectory).Latest() with
    | null -> None
    | latest ->
        try
            let struct (state, _) = CheckpointStore.Verify latest
            if state.Step = c.Optimizer.Steps && TrainConfig.FromJson(state.Config).WeightsDefiningJson() = c.WeightsDefiningJson() then Some latest
            else None
        with :? InvalidDataException | :? FileNotFoundException | :? ConfigException -> None

/// The run sessions of one cell: its stages, pseudo-labels and evaluation share the data they read, opened (and
/// checked) once when the first of them needs it, not once per stage and command.
type CellSessions(console: TextWriter) =
    let sessions = List<RunSession>()
    /// The session that serves `c`'s data and device, opened the first time one is asked for.
    member _.For(c: TrainConfig) =
        match sessions |> Seq.tryFind (fun s -> s.Serves(c.Data, c.Runtime.Device)) with
        | Some s -> s
        | None ->
            let s = RunSession.Open c
            console.WriteLine(sprintf "[%s] data opened on %O" c.RunName s.Device)
            sessions.Add s
            s
    /// Sessions opened so far, in the order they were opened.
    member _.Opened = List.ofSeq sessions

/// Trains a stage, or reuses it when it is finished. A finished stage is only read, never written (no resume pass,
/// no log line, no eval.json): cells that share it may run at the same time on other nodes of a shared runs folder.
let private train (o: RunOptions) (sessions: CellSessions) (c: TrainConfig) =
    match finishedCheckpoint c with
    | Some checkpoint -> o.Console.WriteLine(sprintf "[%s] finished earlier, reused as it is (%s)" c.RunName checkpoint)
    | None -> inCellPart (sprintf "training %s" c.RunName) (runLog c) (fun () -> (sessions.For c).Train(c.Validate(), o.Console)) |> ignore

/// A stored row is current when it was computed from the same settings: run names carry a hash of every
/// weights-defining setting, so a changed study (steps, augmentation, ...) reruns the cell. The names are compared as
/// laid out under the runs folder the row was trained in (its OutputRoot): a stage that starts from other weights
/// (fine-tuning, classification init, pseudo-label students) hashes their path, so a row from a machine with another
/// runs folder (another node's disk) is compared with the cell planned there (`StudyPlan.Under`).
/// A row without settings (one not read through the store, which sets such rows aside) is not current.
let isCurrent (plan: StudyPlan) (cell: PlannedCell) (row: ResultRow) =
    let stored key =
        match row.Settings with
        | null -> ""
        | settings -> match settings.TryGetValue key with | true, v when not (isNull v) -> v | _ -> ""
    let asTrained = match stored "OutputRoot" with "" -> cell | root -> plan.Under(cell, root)
    stored "stages" = asTrained.FinalStageNames && stored "eval_split" = plan.EvalSplit

/// The checkpoint folder a row's final model is in, when it is on this machine.
let finalCheckpoint (row: ResultRow) =
    if isNull row.Stages || row.Stages.Length = 0 then None
    else
        try Some(CheckpointStore.Resolve(Array.last row.Stages))
        with :? FileNotFoundException | :? DirectoryNotFoundException -> None

/// Why a stored row cannot stand for its cell (None: it can be reused, perhaps after `complete` adds what it lacks).
let staleReason (plan: StudyPlan) (cell: PlannedCell) (row: ResultRow) =
    if not (isCurrent plan cell row) then Some "the stored result is from other settings"
    elif ReportInputs.lacksFeatureSpace plan cell row && (finalCheckpoint row).IsNone then
        Some(sprintf "the report's feature space needs it, its row holds none (written before rows stored it) and its checkpoint %s is not on this machine" (Array.last row.Stages))
    else None

/// `row` with what its charts need and it lacks, read from its run folders without training: the validation curve (when
/// its stages' metrics.jsonl are here) and, in a cell the plan's feature space reads, the feature space (from its
/// checkpoint, which `staleReason` requires then). Rows written before rows stored these parts are refreshed this way
/// when the grid runs again where their run folders are. The second value names what was added.
let complete (plan: StudyPlan) (sessions: CellSessions) (console: TextWriter) (cell: PlannedCell) (row: ResultRow) =
    let curve =
        match row.ValidationCurve with
        | Some _ -> None
        | None -> ReportInputs.validationCurve console.WriteLine row.Stages
    let space =
        if not (ReportInputs.lacksFeatureSpace plan cell row) then None
        else
            // The grid's device, not the one the run trained on.
            let config = ConfigOverrides.Apply(cell.Final, [ "Runtime.Device=" + plan.Device ])
            let sample = ReportInputs.sampleFeatureSpace (sessions.For config) (Array.last row.Stages) config.Model plan.FeatureSpace.PointsPerClass
            console.WriteLine(sprintf "[feature-space] %s: intra %.3f inter %.3f ratio %.2f nearest-centroid %.1f %%" cell.Key
                                  sample.IntraClass sample.InterClass sample.Ratio (100.0 * sample.NearestCentroidAccuracy))
            Some sample
    { row with
        ValidationCurve = Option.orElse row.ValidationCurve curve
        FeatureSpace = Option.orElse row.FeatureSpace space },
    [ if curve.IsSome then "validation curve"
      if space.IsSome then "feature space" ]

/// True when the store holds a row that stands for the cell as it is now.
let isReusable (plan: StudyPlan) (store: ResultStore) (cell: PlannedCell) =
    match store.Read cell.Key with
    | Some row -> (staleReason plan cell row).IsNone
    | None -> false

/// The stored rows of a plan's cells that are current (rows of other settings or other grids are left out of reports).
let currentRows (plan: StudyPlan) (store: ResultStore) =
    plan.Cells |> List.ofSeq |> List.choose (fun c -> store.Read c.Key |> Option.filter (isCurrent plan c))

/// The checkpoint of a final stage that is scored: the one with the best in-training validation when the
/// evaluation split is another split than the validation split; the final one when they are the same split
/// (choosing on the split that is scored would flatter every method).
let scoredCheckpoint (evalSplit: string) (final: TrainConfig) =
    let store = CheckpointStore(final.RunDirectory)
    if String.Equals(evalSplit, final.Data.ValSplit, StringComparison.OrdinalIgnoreCase) then
        match store.Latest() with
        | null -> CheckpointStore.Resolve final.RunDirectory
        | latest -> latest
    else CheckpointStore.Resolve final.RunDirectory

/// What `--force` removes before a cell trains again: its run folders (and pseudo-labels).
let deleteRuns (cell: PlannedCell) =
    for f in cell.Folders do
        if Directory.Exists f then Directory.Delete(f, true)

let private flatten (c: TrainConfig) =
    let d = Dictionary<string, string>()
    let rec walk prefix (e: JsonElement) =
        match e.ValueKind with
        | JsonValueKind.Object -> for p in e.EnumerateObject() do walk (if prefix = "" then p.Name else prefix + "." + p.Name) p.Value
        | _ -> d.[prefix] <- e.ToString()
    use doc = JsonDocument.Parse(c.ToJson())
    walk "" doc.RootElement
    d

/// The progress line of a finished cell.
let doneLine (k: string) (minutes: float) (cell: PlannedCell) (row: ResultRow) =
    sprintf "[ablations] %s done in %.1f min: %s, %s mIoU %.2f %%" k minutes cell.Key
        (match row.Settings.TryGetValue "eval_split" with | true, s -> s | _ -> "eval") (100.0 * row.MeanIoU)

/// Trains every stage of a planned cell (finished stages are found and reused), scores the final model on the plan's
/// evaluation split, and stores the row. A row that stands for the cell is returned as it is.
let runCell (plan: StudyPlan) (store: ResultStore) (o: RunOptions) (cell: PlannedCell) : ResultRow =
    match store.Read cell.Key with
    | Some row when not o.Force && (staleReason plan cell row).IsNone ->
        match complete plan (CellSessions o.Console) o.Console cell row with
        | row, [] -> row
        | row, added ->
            store.Write row
            o.Console.WriteLine(sprintf "[%s] row refreshed from its run folders, nothing trained: %s added" cell.Key (String.Join(", ", added)))
            row
    | stale ->
        match stale with
        | Some row when not o.Force -> o.Console.WriteLine(sprintf "=== %s: %s; running it again" cell.Key (staleReason plan cell row).Value)
        | _ -> ()
        if o.Force then deleteRuns cell
        let clock = Stopwatch.StartNew()
        o.Console.WriteLine(sprintf "=== %s (%s, %s, %s, seed %d)" cell.Key cell.Study cell.Setting cell.Method cell.Seed)
        match cell.Classification with
        | null -> ()
        | c ->
            let run = ClassificationPretraining.RunDirectory c.Weights
            inCellPart (sprintf "classification pretraining %s" (Path.GetFileName run)) (Path.Combine(run, "metrics.jsonl")) (fun () ->
                ClassificationPretraining.Run(c.Encoder, FashionMnistSource.Open(c.ItemsRoot), c.Options, c.Weights, o.Console, plan.Device) |> ignore)
        let extras = Dictionary<string, float>()
        let sessions = CellSessions(o.Console)
        for stage in cell.TeacherStages do train o sessions stage
        match cell.PseudoLabels with
        | null -> ()
        | pseudo ->
            let teacherFinal = Seq.last cell.TeacherStages
            let report =
                match PseudoLabelReport.ReadFrom pseudo.Folder with
                | null ->
                    let report =
                        inCellPart (sprintf "pseudo-labelling with %s" teacherFinal.RunName) (runLog teacherFinal)
                            (fun () -> (sessions.For teacherFinal).PseudoLabel(teacherFinal.RunDirectory, teacherFinal.Model, pseudo.Options, pseudo.Folder))
                    o.Console.WriteLine(sprintf "[pseudo-labels] %d images, %.1f %% of pixels kept -> %s" report.Images (100.0 * report.Coverage) pseudo.Folder)
                    report
                | written -> written
            extras.["pseudo_coverage"] <- report.Coverage
        for stage in cell.Stages do train o sessions stage
        let final = cell.Final
        let checkpoint = scoredCheckpoint plan.EvalSplit final
        let eval = inCellPart (sprintf "evaluating %s" checkpoint) (runLog final) (fun () -> (sessions.For final).Evaluate(checkpoint, final.Model, null, plan.EvalSplit))
        o.Console.WriteLine(sprintf "=== %s: %s mIoU %.2f %%" cell.Key plan.EvalSplit (100.0 * eval.Metrics.MeanIoU))
        let settings = flatten final
        settings.["profile"] <- plan.Profile
        settings.["eval_split"] <- plan.EvalSplit
        settings.["stages"] <- cell.FinalStageNames
        settings.["scored_checkpoint"] <- Path.GetRelativePath(final.RunDirectory, checkpoint)
        let numerics, provenance = rowProvenance (cell.Stages |> Seq.map (fun s -> s.RunDirectory) |> List.ofSeq)
        let row =
            { Study = cell.Study; Setting = cell.Setting; Method = cell.Method; Seed = cell.Seed; CellKey = cell.Key
              Stages = cell.Stages |> Seq.map (fun s -> s.RunDirectory) |> Array.ofSeq
              MeanIoU = eval.Metrics.MeanIoU; PixelAccuracy = eval.Metrics.PixelAccuracy
              Extras = extras; Settings = settings; WallSeconds = clock.Elapsed.TotalSeconds
              Machine = machine (); Numerics = numerics; Provenance = provenance; Finished = DateTimeOffset.UtcNow
              ValidationCurve = None; FeatureSpace = None }
        let row, _ = complete plan sessions o.Console cell row
        store.Write row
        row
