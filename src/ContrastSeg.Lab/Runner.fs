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

let rec private needsClassification = function
    | ClassificationInit _ -> true
    | SemiSupervised t -> needsClassification t
    | _ -> false

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

/// Every stage folder a cell writes (to delete them with --force).
let cellFolders (p: Profile) (cell: Cell) =
    [ match cell.Recipe with
      | SemiSupervised teacher ->
          yield! stages p cell teacher None |> List.map (fun s -> s.RunDirectory)
          let folder = pseudoFolder p cell
          yield! Option.toList folder
          yield! stages p cell teacher folder |> List.map (fun s -> s.RunDirectory)
      | r -> yield! stages p cell r None |> List.map (fun s -> s.RunDirectory) ]

/// What training a cell writes besides its row: its stage run folders, its pseudo-label folder and the
/// classification-pretraining weights it starts from (each named by its settings, so cells that mean the
/// same training share it).
let cellOutputs (p: Profile) (cell: Cell) =
    [ if needsClassification cell.Recipe then yield classificationWeights p
      yield! cellFolders p cell ]
    |> List.distinct

/// The cells in waves 1, 2, ... for machines that run cells at the same time on one shared runs folder: a cell
/// goes in the wave after the last wave that trains an output it uses. Within a wave no two cells train the
/// same output (two trainings of one run folder at once would delete each other's checkpoint writes), and a
/// cell finds every output it shares with earlier cells finished, so it only reads them (see `train`).
let waves (p: Profile) =
    let trainedIn = Dictionary<string, int>()
    p.Cells
    |> List.distinctBy (fun c -> c.Key)
    |> List.map (fun c ->
        let outputs = cellOutputs p c
        let wave = 1 + (outputs |> List.fold (fun w out -> match trainedIn.TryGetValue out with | true, v -> max w v | _ -> w) 0)
        for out in outputs do
            if not (trainedIn.ContainsKey out) then trainedIn.[out] <- wave
        c, wave)

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

/// A stored row is current when it was computed from the same settings: run names carry a hash of
/// every weights-defining setting, so a changed profile (steps, augmentation, ...) reruns the cell.
/// The names are compared as laid out under the runs folder the row was trained in (its OutputRoot): a stage
/// that starts from other weights (fine-tuning, classification init, pseudo-label students) hashes their path,
/// so a row from a machine with another runs folder (another node's disk) would never be current here.
/// A row without settings (one not read through the store, which sets such rows aside) is not current.
let isCurrent (p: Profile) (cell: Cell) (row: ResultRow) =
    let stored key =
        match row.Settings with
        | null -> ""
        | settings -> match settings.TryGetValue key with | true, v when not (isNull v) -> v | _ -> ""
    let asTrained =
        match stored "OutputRoot" with
        | root when root <> "" && root <> p.Base.OutputRoot -> { p with Base = ConfigOverrides.Apply(p.Base, [ "OutputRoot=" + root ]) }
        | _ -> p
    stored "stages" = finalStageNames asTrained cell && stored "eval_split" = p.EvalSplit

/// The cells whose final checkpoint the report reads besides their row: the feature-space models
/// (label-efficiency cells at the t-SNE label count, seed 0).
let needsCheckpoint (p: Profile) (cell: Cell) =
    match p.Tsne with
    | Some (labelled, _) -> cell.Study = "label-efficiency" && cell.Labelled = Some labelled && cell.Seed = 0
    | None -> false

/// The checkpoint folder a row's final model is in, when it is on this machine.
let finalCheckpoint (row: ResultRow) =
    if isNull row.Stages || row.Stages.Length = 0 then None
    else
        try Some(CheckpointStore.Resolve(Array.last row.Stages))
        with :? FileNotFoundException | :? DirectoryNotFoundException -> None

/// Why a stored row cannot stand for its cell (None: it can be reused).
let staleReason (p: Profile) (cell: Cell) (row: ResultRow) =
    if not (isCurrent p cell row) then Some "the stored result is from other settings"
    elif needsCheckpoint p cell && (finalCheckpoint row).IsNone then
        Some(sprintf "the report's feature space needs its checkpoint and %s is not on this machine" (Array.last row.Stages))
    else None

/// True when the store holds a row that stands for the cell as it is now.
let isReusable (p: Profile) (store: ResultStore) (cell: Cell) =
    match store.Read cell.Key with
    | Some row -> (staleReason p cell row).IsNone
    | None -> false

/// Every training stage of a cell with its step count (teacher and student stages of a semi-supervised cell).
let private cellStages (p: Profile) (cell: Cell) =
    match cell.Recipe with
    | SemiSupervised teacher -> stages p cell teacher None @ stages p cell teacher (pseudoFolder p cell)
    | r -> stages p cell r None

/// Optimiser steps each stage run of the cells still has to take (stages shared by cells count once;
/// a stage resumes from its last checkpoint): what the grid's ETA is computed from.
let pendingSteps (p: Profile) (cells: Cell list) =
    cells
    |> List.collect (cellStages p)
    |> List.distinctBy (fun s -> s.RunDirectory)
    |> List.sumBy (fun s ->
        let done' = match CheckpointStore(s.RunDirectory).List() with l when l.Count > 0 -> (let struct (step, _) = Seq.last l in step) | _ -> 0
        max 0 (s.Optimizer.Steps - done'))

/// The checkpoint of a final stage that is scored: the one with the best in-training validation when the
/// evaluation split is another split than the validation split; the final one when they are the same split
/// (choosing on the split that is scored would flatter every method).
let scoredCheckpoint (p: Profile) (final: TrainConfig) =
    let store = CheckpointStore(final.RunDirectory)
    if String.Equals(p.EvalSplit, final.Data.ValSplit, StringComparison.OrdinalIgnoreCase) then
        match store.Latest() with
        | null -> CheckpointStore.Resolve final.RunDirectory
        | latest -> latest
    else CheckpointStore.Resolve final.RunDirectory

/// Trains every stage of a cell (finished stages are found and reused), scores the final model on
/// the profile's evaluation split, and stores the row.
/// What `--force` removes before a cell trains again: its run folders (and pseudo-labels).
let deleteRuns (p: Profile) (cell: Cell) =
    for f in cellFolders p cell do
        if Directory.Exists f then Directory.Delete(f, true)

/// The progress line of a finished cell.
let private doneLine (k: string) (minutes: float) (cell: Cell) (row: ResultRow) =
    sprintf "[ablations] %s done in %.1f min: %s, %s mIoU %.2f %%" k minutes cell.Key
        (match row.Settings.TryGetValue "eval_split" with | true, s -> s | _ -> "eval") (100.0 * row.MeanIoU)

let runCell (p: Profile) (store: ResultStore) (o: RunOptions) (cell: Cell) : ResultRow =
    match store.Read cell.Key with
    | Some row when not o.Force && (staleReason p cell row).IsNone -> row
    | stale ->
        match stale with
        | Some row when not o.Force -> o.Console.WriteLine(sprintf "=== %s: %s; running it again" cell.Key (staleReason p cell row).Value)
        | _ -> ()
        if o.Force then deleteRuns p cell
        let clock = Stopwatch.StartNew()
        o.Console.WriteLine(sprintf "=== %s (%s, %s, %s, seed %d)" cell.Key cell.Study cell.Setting cell.Method cell.Seed)
        if needsClassification cell.Recipe then
            let encoder = p.Base.Model.ToEncoderOptions()
            let weights = classificationWeights p
            let run = ClassificationPretraining.RunDirectory weights
            inCellPart (sprintf "classification pretraining %s" (Path.GetFileName run)) (Path.Combine(run, "metrics.jsonl")) (fun () ->
                ClassificationPretraining.Run(encoder, FashionMnistSource.Open(p.Base.Data.Root), p.Classification, weights, o.Console, p.Base.Runtime.Device) |> ignore)
        let extras = Dictionary<string, float>()
        let sessions = CellSessions(o.Console)
        let finalStages =
            match cell.Recipe with
            | SemiSupervised teacher ->
                let teacherStages = stages p cell teacher None
                teacherStages |> List.iter (train o sessions)
                let folder = (pseudoFolder p cell).Value
                let teacherFinal = List.last teacherStages
                let report =
                    match PseudoLabelReport.ReadFrom folder with
                    | null ->
                        let report =
                            inCellPart (sprintf "pseudo-labelling with %s" teacherFinal.RunName) (runLog teacherFinal)
                                (fun () -> (sessions.For teacherFinal).PseudoLabel(teacherFinal.RunDirectory, teacherFinal.Model, p.Pseudo, folder))
                        o.Console.WriteLine(sprintf "[pseudo-labels] %d images, %.1f %% of pixels kept -> %s" report.Images (100.0 * report.Coverage) folder)
                        report
                    | written -> written
                extras.["pseudo_coverage"] <- report.Coverage
                let students = stages p cell teacher (Some folder)
                students |> List.iter (train o sessions)
                students
            | r ->
                let s = stages p cell r None
                s |> List.iter (train o sessions)
                s
        let final = List.last finalStages
        let checkpoint = scoredCheckpoint p final
        let eval = inCellPart (sprintf "evaluating %s" checkpoint) (runLog final) (fun () -> (sessions.For final).Evaluate(checkpoint, final.Model, null, p.EvalSplit))
        o.Console.WriteLine(sprintf "=== %s: %s mIoU %.2f %%" cell.Key p.EvalSplit (100.0 * eval.Metrics.MeanIoU))
        let settings = flatten final
        settings.["profile"] <- p.Name
        settings.["eval_split"] <- p.EvalSplit
        settings.["stages"] <- finalStageNames p cell
        settings.["scored_checkpoint"] <- Path.GetRelativePath(final.RunDirectory, checkpoint)
        let numerics, provenance = rowProvenance (finalStages |> List.map (fun s -> s.RunDirectory))
        let row =
            { Study = cell.Study; Setting = cell.Setting; Method = cell.Method; Seed = cell.Seed; CellKey = cell.Key
              Stages = finalStages |> List.map (fun s -> s.RunDirectory) |> Array.ofList
              MeanIoU = eval.Metrics.MeanIoU; PixelAccuracy = eval.Metrics.PixelAccuracy
              Extras = extras; Settings = settings; WallSeconds = clock.Elapsed.TotalSeconds
              Machine = machine (); Numerics = numerics; Provenance = provenance; Finished = DateTimeOffset.UtcNow }
        store.Write row
        row

/// A text log that several processes append to (a grid's worker processes, cluster nodes). .NET's FileMode.Append
/// seeks to the end once, when the file is opened, so two long-lived writers overwrite each other's lines (the
/// 2-worker default study's ablations.log lost parts of lines that way). Text is buffered until `Flush` and then
/// appended in one write under an exclusive lock (FileShare.None: an flock on Linux), at the end as it is then.
type SharedLogWriter(path: string) =
    inherit TextWriter()
    let pending = Text.StringBuilder()
    let append (bytes: byte[]) =
        // Another writer holds the lock for one short write: wait for it, up to ~10 s, then fail loudly.
        let rec attempt n =
            let written =
                try
                    use s = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.None)
                    s.Write(bytes, 0, bytes.Length)
                    true
                with
                | :? DirectoryNotFoundException -> reraise ()
                | :? IOException when n < 1000 -> false
            if not written then
                Threading.Thread.Sleep 10
                attempt (n + 1)
        attempt 0
    override _.Encoding = Text.Encoding.UTF8
    override _.Write(c: char) = pending.Append c |> ignore
    override _.Write(s: string) = pending.Append s |> ignore
    override _.Flush() =
        if pending.Length > 0 then
            let bytes = Text.Encoding.UTF8.GetBytes(pending.ToString())
            pending.Clear() |> ignore
            append bytes
    override this.Dispose(disposing: bool) =
        if disposing then this.Flush()
        base.Dispose disposing

/// Progress of a grid run: cell k of N, elapsed, ETA from the step rate measured in this run. Lines go to
/// the console and, with a timestamp, to `log` (the results folder's ablations.log).
type GridProgress(console: TextWriter, log: TextWriter, total: int, pending: unit -> int) =
    let clock = Stopwatch.StartNew()
    let startSteps = pending ()
    let minutes (s: float) = if s < 90.0 then sprintf "%.0f s" s else sprintf "%.1f min" (s / 60.0)
    member _.Line(text: string) =
        console.WriteLine text
        log.WriteLine(sprintf "%s %s" (DateTimeOffset.Now.ToString "yyyy-MM-dd HH:mm:ss") text)
        log.Flush()
    member _.StartSteps = startSteps
    /// "elapsed 4.2 min, 1,200 steps left, ETA 5.0 min (0.25 s/step)" once a step rate is measured.
    member _.Eta() =
        let left = pending ()
        let trained = startSteps - left
        let elapsed = clock.Elapsed.TotalSeconds
        if trained > 0 && left > 0 then
            let rate = elapsed / float trained
            sprintf "elapsed %s, %d steps left, ETA %s (%.3f s/step measured)" (minutes elapsed) left (minutes (rate * float left)) rate
        elif left = 0 then sprintf "elapsed %s, no steps left" (minutes elapsed)
        else sprintf "elapsed %s, %d steps left, ETA after the first trained cell" (minutes elapsed) left
    member _.Elapsed = clock.Elapsed
    member _.Total = total

/// Runs `cells` in order with `run`. A cell that cannot run for reasons of its own (a setting or data it
/// cannot use, a diverged loss, a libtorch error its automatic resumes did not get past, a stage another process
/// is training) is reported, naming
/// its log where it has one, and skipped so the other cells still run; environment failures (libtorch
/// missing, out of memory, I/O) stop the grid. `reused` tells which cells are served from the
/// store. Returns the failed cells' keys and messages.
let runAllWith (progress: GridProgress) (error: TextWriter) (reused: Cell -> bool) (run: Cell -> ResultRow) (cells: Cell list) =
    let failures = List<string * string>()
    cells |> List.iteri (fun i c ->
        let k = sprintf "cell %d/%d" (i + 1) cells.Length
        if reused c then
            run c |> ignore
            progress.Line(sprintf "[ablations] %s reused: %s" k c.Key)
        else
            progress.Line(sprintf "[ablations] %s start: %s | %s" k c.Key (progress.Eta()))
            let clock = Stopwatch.StartNew()
            try
                let row = run c
                progress.Line(doneLine k clock.Elapsed.TotalMinutes c row)
            with
            | :? ConfigException | :? DatasetException | :? TrainingDivergedException | :? CellNativeException | :? RunInUseException
            | :? Runtime.InteropServices.ExternalException as e ->
                progress.Line(sprintf "[ablations] %s failed after %.1f min: %s" k clock.Elapsed.TotalMinutes c.Key)
                error.WriteLine(sprintf "[ablations] cell %s failed: %s" c.Key e.Message)
                failures.Add((c.Key, e.Message)))
    List.ofSeq failures

/// `runAllWith` without a store: every cell is trained, progress goes to `console` only.
let runAll (console: TextWriter) (error: TextWriter) (run: Cell -> ResultRow) (cells: Cell list) =
    runAllWith (GridProgress(console, TextWriter.Null, cells.Length, (fun () -> 0))) error (fun _ -> false) run cells

/// The order in which worker processes take `cells`: wave by wave (see `waves`: a cell only after the cells
/// that train what it reads), each wave's cells with the most steps left first, so the last cells to start
/// are the short ones and the workers finish together.
let jobPlan (p: Profile) (cells: Cell list) : Cell list list =
    let waveOf = waves p |> List.map (fun (c, w) -> c.Key, w) |> dict
    cells
    |> List.groupBy (fun c -> match waveOf.TryGetValue c.Key with | true, w -> w | _ -> 1)
    |> List.sortBy fst
    |> List.map (fun (_, wave) -> wave |> List.sortByDescending (fun c -> pendingSteps p [ c ]))

/// How many cells train at the same time, one worker process each, when `--jobs` is not given: on the CPU one
/// per core (libtorch's step on this model gains little from a second thread: 0.147 s/step with 2 threads
/// against 0.173 with 1, while two 1-thread processes take 0.20 s/step each, README "Quick start"), at most
/// one per 2 GB of free memory; on a GPU one.
let defaultJobs (device: string) =
    if not (ContrastSeg.Runtime.Devices.Choose(device).Name.StartsWith("cpu", StringComparison.Ordinal)) then 1
    else
        let memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (2L * 1024L * 1024L * 1024L)
        int (max 1L (min (int64 Environment.ProcessorCount) memory))

/// A grid stopped by a signal while its workers ran (see `runWorkersUntil`): the cells whose workers it stopped and
/// how many it did not start. Running the same command again resumes them.
type GridInterruptedException(signal: Runtime.InteropServices.PosixSignal, stopped: string list, notStarted: int) =
    inherit Exception(
        sprintf "stopped by %O: %s; %d cell(s) not started. Run the same command again to resume: finished cells are reused, interrupted stages resume from their last checkpoint."
            signal (if stopped.IsEmpty then "no cell was training" else sprintf "%d cell(s) interrupted (%s)" stopped.Length (String.Join(", ", stopped))) notStarted)
    member _.Signal = signal
    member _.Stopped = stopped
    member _.NotStarted = notStarted

/// Runs `plan` (see `jobPlan`) in worker processes, `jobs` at a time: `start cell` is the worker's command, whose
/// output lines are forwarded to `console` prefixed with the cell's number; `finished cell` reads the row a
/// worker stored. A worker that exits with another code than 0 or stores no row is a failed cell (its key and
/// last error line are returned); the others still run.
/// A stop signal (`stopSignals` calls its handler with it) is passed on to every worker as SIGTERM, no further cell
/// starts, and the workers are waited for; one still running `grace` after the signal is killed. Then a
/// GridInterruptedException says which cells were interrupted. Workers stop by themselves when this process dies.
let runWorkersUntil (stopSignals: (Runtime.InteropServices.PosixSignal -> unit) -> IDisposable) (grace: TimeSpan)
                    (progress: GridProgress) (console: TextWriter) (jobs: int) (start: Cell -> ProcessStartInfo) (finished: Cell -> ResultRow option) (plan: Cell list list) =
    let failures = List<string * string>()
    let interrupted = List<string>()
    let total = plan |> List.sumBy List.length
    let running = Dictionary<Process, Cell>(HashIdentity.Reference)
    let killed = HashSet<Process>(HashIdentity.Reference)
    let gate = obj ()
    let signal = ref None
    let sinceSignal = Stopwatch()
    let line text = lock progress (fun () -> progress.Line text)
    let stop (s: Runtime.InteropServices.PosixSignal) =
        lock gate (fun () ->
            if signal.Value.IsNone then
                signal.Value <- Some s
                sinceSignal.Start()
                line (sprintf "[ablations] %O: passing it on to %d worker(s) and starting no more cells; waiting up to %.0f s for them to exit" s running.Count grace.TotalSeconds)
                for w in running.Keys do Signals.terminate w)
    // Waits until `wait ms` is true, killing meanwhile the workers still running `grace` after a signal.
    let until (wait: int -> bool) =
        while not (wait 500) do
            lock gate (fun () ->
                if signal.Value.IsSome && sinceSignal.Elapsed > grace then
                    for KeyValue (w, cell) in running do
                        if killed.Add w then
                            line (sprintf "[ablations] the worker of %s did not exit within %.0f s of the signal: killed (SIGKILL)" cell.Key grace.TotalSeconds)
                            try w.Kill true with _ -> ())
    let started = ref 0
    try
        use _ = stopSignals stop
        for wave in plan do
            use slots = new Threading.SemaphoreSlim(jobs)
            let workers = List<Threading.Tasks.Task>()
            for cell in wave do
                until slots.Wait
                let number = started.Value + 1
                let k = sprintf "cell %d/%d" number total
                let tag = sprintf "[%d] " number
                let info = start cell
                info.RedirectStandardOutput <- true
                info.RedirectStandardError <- true
                info.UseShellExecute <- false
                let w = new Process(StartInfo = info)
                let lastError = ref ""
                w.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then lock console (fun () -> console.WriteLine(tag + e.Data)))
                w.ErrorDataReceived.Add(fun e ->
                    if not (isNull e.Data) then
                        if e.Data.Trim() <> "" then lastError.Value <- e.Data.Trim()
                        lock console (fun () -> console.WriteLine(tag + e.Data)))
                let clock = Stopwatch.StartNew()
                // Under the gate: a signal finds this worker running (and passes itself on) or keeps it from starting.
                let isStarted =
                    lock gate (fun () ->
                        if signal.Value.IsSome then false
                        else
                            line (sprintf "[ablations] %s start (%d at a time): %s | %s" k jobs cell.Key (progress.Eta()))
                            w.Start() |> ignore
                            running.[w] <- cell
                            started.Value <- number
                            true)
                if not isStarted then
                    w.Dispose()
                    slots.Release() |> ignore
                else
                    w.BeginOutputReadLine()
                    w.BeginErrorReadLine()
                    workers.Add(Threading.Tasks.Task.Run(fun () ->
                        try
                            w.WaitForExit()
                            let stopping = lock gate (fun () -> running.Remove w |> ignore; signal.Value.IsSome)
                            let minutes = clock.Elapsed.TotalMinutes
                            match w.ExitCode, finished cell with
                            | 0, Some row ->
                                line (doneLine k minutes cell row)
                            | code, _ when stopping ->
                                line (sprintf "[ablations] %s interrupted after %.1f min: %s (worker exit code %d)" k minutes cell.Key code)
                                lock interrupted (fun () -> interrupted.Add cell.Key)
                            | code, _ ->
                                line (sprintf "[ablations] %s failed after %.1f min: %s (worker exit code %d)" k minutes cell.Key code)
                                let why = if lastError.Value = "" then sprintf "its worker exited with code %d and stored no result" code else lastError.Value
                                lock failures (fun () -> failures.Add((cell.Key, why)))
                        finally
                            w.Dispose()
                            slots.Release() |> ignore))
            until (fun ms -> Threading.Tasks.Task.WaitAll(workers.ToArray(), ms))
    finally
        // Left by an exception of this process: its workers must not train on unwatched.
        lock gate (fun () -> for w in running.Keys do (try Signals.terminate w with _ -> ()))
    match signal.Value with
    | Some s ->
        line (sprintf "[ablations] stopped by %O after %.1f min" s progress.Elapsed.TotalMinutes)
        raise (GridInterruptedException(s, interrupted |> Seq.sort |> List.ofSeq, total - started.Value))
    | None -> failures |> Seq.sortBy fst |> List.ofSeq

/// `runWorkersUntil` stopped by SIGTERM, SIGINT or SIGHUP to this process; a worker has 60 s to exit.
let runWorkers progress console jobs start finished plan =
    runWorkersUntil Signals.onStop (TimeSpan.FromSeconds 60.0) progress console jobs start finished plan

/// The stored rows of a profile's cells that are current (rows of other settings or other grids are left out of reports).
let currentRows (p: Profile) (store: ResultStore) =
    p.Cells |> List.distinctBy (fun c -> c.Key) |> List.choose (fun c -> store.Read c.Key |> Option.filter (isCurrent p c))

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
let featureSpace (p: Profile) (rows: ResultRow list) (folder: string) (console: TextWriter) =
    match p.Tsne with
    | None -> []
    | Some (labelled, perClass) ->
        let pick meth =
            rows |> List.tryFind (fun r -> r.Study = "label-efficiency" && r.Setting = sprintf "labelled=%d" labelled && r.Method = meth && r.Seed = 0)
        let contrastive = p.Cells |> List.tryPick (fun c -> if c.Study = "label-efficiency" && c.Method <> "cross-entropy" then Some c.Method else None)
        let models =
            [ yield "cross-entropy", pick "cross-entropy"
              match contrastive with Some m -> yield m, pick m | None -> () ]
            |> List.choose (fun (m, r) -> r |> Option.map (fun r -> m, r))
        let missing = models |> List.filter (fun (_, r) -> (finalCheckpoint r).IsNone)
        if models.Length < 2 then
            console.WriteLine "[feature-space] skipped: the label-efficiency cells at the lowest count (seed 0) are not finished"
            []
        elif not missing.IsEmpty then
            for m, r in missing do
                console.WriteLine(sprintf "[feature-space] skipped: no checkpoint of %s on this machine (%s); run the grid without --report-only to train it" m (Array.last r.Stages))
            []
        else
            // Both models read the same validation images: one session opens them once.
            let sessions = CellSessions(console)
            let results =
                models |> List.map (fun (meth, row) ->
                    let run = Array.last row.Stages
                    // The grid's device, not the one the run's config.json records (where it trained).
                    let config = ConfigOverrides.Apply(TrainConfig.Load(Path.Combine(run, "config.json")), [ "Runtime.Device=" + p.Base.Runtime.Device ])
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
