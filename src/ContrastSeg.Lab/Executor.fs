/// Executes a study plan: the cells in waves, in worker processes or one after the other, with progress, ETA and a
/// log that several processes share.
module ContrastSeg.Lab.Executor

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open ContrastSeg.Data
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab.Results

/// The cells of a plan in waves 1, 2, ... for machines that run cells at the same time on one shared runs folder: a
/// cell goes in the wave after the last wave that trains an output it uses. Within a wave no two cells train the same
/// output (two trainings of one run folder at once would delete each other's checkpoint writes), and a cell finds
/// every output it shares with earlier cells finished, so it only reads them (see `Runner.train`).
let waves (plan: StudyPlan) =
    let trainedIn = Dictionary<string, int>()
    plan.Cells
    |> List.ofSeq
    |> List.map (fun c ->
        let wave = 1 + (c.Outputs |> Seq.fold (fun w out -> match trainedIn.TryGetValue out with | true, v -> max w v | _ -> w) 0)
        for out in c.Outputs do
            if not (trainedIn.ContainsKey out) then trainedIn.[out] <- wave
        c, wave)

/// Optimiser steps each stage run of the cells still has to take (stages shared by cells count once;
/// a stage resumes from its last checkpoint): what the grid's ETA is computed from.
let pendingSteps (cells: PlannedCell list) =
    cells
    |> List.collect (fun c -> List.ofSeq c.TrainedStages)
    |> List.distinctBy (fun s -> s.RunDirectory)
    |> List.sumBy (fun s ->
        let done' = match CheckpointStore(s.RunDirectory).List() with l when l.Count > 0 -> (let struct (step, _) = Seq.last l in step) | _ -> 0
        max 0 (s.Optimizer.Steps - done'))

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
let runAllWith (progress: GridProgress) (error: TextWriter) (reused: PlannedCell -> bool) (run: PlannedCell -> ResultRow) (cells: PlannedCell list) =
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
                progress.Line(Runner.doneLine k clock.Elapsed.TotalMinutes c row)
            with
            | :? ConfigException | :? DatasetException | :? TrainingDivergedException | :? Runner.CellNativeException | :? RunInUseException
            | :? Runtime.InteropServices.ExternalException as e ->
                progress.Line(sprintf "[ablations] %s failed after %.1f min: %s" k clock.Elapsed.TotalMinutes c.Key)
                error.WriteLine(sprintf "[ablations] cell %s failed: %s" c.Key e.Message)
                failures.Add((c.Key, e.Message)))
    List.ofSeq failures

/// `runAllWith` without a store: every cell is trained, progress goes to `console` only.
let runAll (console: TextWriter) (error: TextWriter) (run: PlannedCell -> ResultRow) (cells: PlannedCell list) =
    runAllWith (GridProgress(console, TextWriter.Null, cells.Length, (fun () -> 0))) error (fun _ -> false) run cells

/// The order in which worker processes take `cells`: wave by wave (see `waves`: a cell only after the cells
/// that train what it reads), each wave's cells with the most steps left first, so the last cells to start
/// are the short ones and the workers finish together.
let jobPlan (plan: StudyPlan) (cells: PlannedCell list) : PlannedCell list list =
    let waveOf = waves plan |> List.map (fun (c, w) -> c.Key, w) |> dict
    cells
    |> List.groupBy (fun c -> match waveOf.TryGetValue c.Key with | true, w -> w | _ -> 1)
    |> List.sortBy fst
    |> List.map (fun (_, wave) -> wave |> List.sortByDescending (fun c -> pendingSteps [ c ]))

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
                    (progress: GridProgress) (console: TextWriter) (jobs: int) (start: PlannedCell -> ProcessStartInfo) (finished: PlannedCell -> ResultRow option) (plan: PlannedCell list list) =
    let failures = List<string * string>()
    let interrupted = List<string>()
    let total = plan |> List.sumBy List.length
    let running = Dictionary<Process, PlannedCell>(HashIdentity.Reference)
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
                                line (Runner.doneLine k minutes cell row)
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

