/// Signals to a grid with worker processes (issue 29, case 8): SIGTERM is passed on to the workers, the grid waits for
/// them, says which cells it interrupted and exits 143, leaving no worker behind; workers of a grid killed with SIGKILL
/// stop by themselves; running the command again finishes with the rows of an uninterrupted grid.
module ContrastSeg.Lab.Tests.GridSignalTests

open System
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Threading
open Expecto
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid

let private labDll = Path.Combine(AppContext.BaseDirectory, "ContrastSeg.Lab.dll")

/// A process's state letter from /proc (None: no such process; "Z": exited, not yet reaped).
let private state (pid: int) =
    try
        let stat = File.ReadAllText(sprintf "/proc/%d/stat" pid)
        Some(stat.Substring(stat.LastIndexOf ')' + 2, 1))
    with :? IOException | :? UnauthorizedAccessException -> None

let private alive pid = match state pid with Some s -> s <> "Z" | None -> false

/// The processes whose parent is `pid`.
let private childrenOf (pid: int) =
    [ for d in Directory.GetDirectories "/proc" do
        match Int32.TryParse(Path.GetFileName d) with
        | true, id ->
            try
                let stat = File.ReadAllText(Path.Combine(d, "stat"))
                if int (stat.Substring(stat.LastIndexOf ')' + 2).Split(' ').[1]) = pid then yield id
            with :? IOException | :? FormatException -> ()
        | _ -> () ]

let private waitUntil (timeout: TimeSpan) (condition: unit -> bool) =
    let clock = Stopwatch.StartNew()
    while not (condition ()) && clock.Elapsed < timeout do Thread.Sleep 100
    condition ()

/// The Lab executable as a user starts it, its output collected.
let private start (argv: string list) =
    let psi = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    psi.ArgumentList.Add labDll
    for a in argv do psi.ArgumentList.Add a
    psi.Environment.["CONTRASTSEG_THREADS"] <- "1" // one thread per worker: rows of separate grids compare bit for bit
    let p = Process.Start psi
    let output = Text.StringBuilder()
    let add (e: DataReceivedEventArgs) = if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore)
    p.OutputDataReceived.Add add
    p.ErrorDataReceived.Add add
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p, (fun () -> lock output (fun () -> output.ToString()))

let private finish (p: Process, output: unit -> string) =
    if not (p.WaitForExit(TimeSpan.FromMinutes 4.0)) then
        p.Kill true
        failtestf "the grid did not finish in 4 minutes:\n%s" (output ())
    p.WaitForExit()
    Expect.equal p.ExitCode 0 (sprintf "the grid failed:\n%s" (output ()))

/// Two cells that share nothing, 20 steps each, a checkpoint every 4 (so a stopped stage resumes mid-run).
let private steps = 20
let private cells = [ "label-efficiency.cross-entropy.labelled-8.s0"; "label-efficiency.cross-entropy.labelled-40.s0" ]

let private grid (root: string) =
    [ "ablations"; "--profile"; "quick"; "--steps"; string steps; "--jobs"; "2"; "--set"; "CheckpointEvery=4"
      "--runs"; Path.Combine(root, "runs"); "--output"; Path.Combine(root, "results"); "--cells" ] @ cells

/// Waits until both workers of a grid have trained `lines` steps (6: past a checkpoint, one every 4); their process ids.
let private workersTrainingFor (lines: int) (p: Process, output: unit -> string) =
    // A progress line per step (a resumed stage counts on from its checkpoint's step).
    let training () = [ 1; 2 ] |> List.forall (fun n -> Text.RegularExpressions.Regex.Matches(output (), sprintf @"(?m)^\[%d\] \[CrossEntropy\] \d+/%d" n steps).Count >= lines)
    if not (waitUntil (TimeSpan.FromMinutes 2.0) (fun () -> training () || p.HasExited)) || p.HasExited then
        failtestf "the workers did not start training:\n%s" (output ())
    let workers = childrenOf p.Id
    Expect.equal workers.Length 2 (sprintf "two worker processes of grid %d" p.Id)
    workers

let private workersTraining = workersTrainingFor 6

let private bits (x: float) = BitConverter.DoubleToInt64Bits x

/// How many stages of a grid's output resumed past step 0.
let private resumed (output: string) = Text.RegularExpressions.Regex.Matches(output, sprintf @"\] resuming at step [1-9]\d*/%d from" steps).Count

let tests =
    testList "grid signals" [
        test "a stop signal is passed on as SIGTERM, no cell starts after it, and a worker that ignores it is killed after the grace time" {
            let p = quick (Path.Combine(Path.GetTempPath(), "contrastseg-signal-tests"))
            let plan = Grid.plan p
            let three = Executor.jobPlan plan (List.ofSeq plan.Cells) |> List.concat |> List.truncate 3
            let stubborn = three.[1]
            // Stand-in workers: sleep until signalled; the stubborn one ignores SIGTERM.
            let start (c: ContrastSeg.Studies.PlannedCell) =
                let info = ProcessStartInfo("sh")
                let trap = if c.Key = stubborn.Key then "trap '' TERM; " else ""
                for a in [ "-c"; trap + "echo ready; exec sleep 60" ] do info.ArgumentList.Add a
                info
            let console = new StringWriter()
            let text () = lock console (fun () -> console.ToString())
            // The signal arrives when both workers run (as a handler from PosixSignalRegistration would get it).
            let subscribe (handler: PosixSignal -> unit) =
                let fire = Tasks.Task.Run(fun () ->
                    if waitUntil (TimeSpan.FromSeconds 30.0) (fun () -> Text.RegularExpressions.Regex.Matches(text (), "ready").Count = 2) then handler PosixSignal.SIGTERM)
                { new IDisposable with member _.Dispose() = fire.Wait() }
            let progress = Executor.GridProgress(console, TextWriter.Null, three.Length, (fun () -> 0))
            let clock = Stopwatch.StartNew()
            let e = Expect.throwsC (fun () -> Executor.runWorkersUntil subscribe (TimeSpan.FromSeconds 2.0) progress console 2 start (fun _ -> None) [ three ] |> ignore) id
            Expect.isLessThan clock.Elapsed.TotalSeconds 30.0 "bounded by the grace time, not the workers' 60 s"
            match e with
            | :? Executor.GridInterruptedException as stopped ->
                Expect.equal stopped.Signal PosixSignal.SIGTERM "the signal"
                Expect.equal stopped.Stopped (List.sort [ three.[0].Key; stubborn.Key ]) "both running cells interrupted"
                Expect.equal stopped.NotStarted 1 "the third cell never started"
                Expect.stringContains stopped.Message "Run the same command again to resume" "says how to resume"
            | other -> failtestf "expected GridInterruptedException, got %O" other
            Expect.stringContains (text ()) (sprintf "the worker of %s did not exit within 2 s of the signal: killed (SIGKILL)" stubborn.Key) "the stubborn worker is named"
            Expect.isFalse ((text ()).Contains(sprintf "worker of %s did not exit" three.[0].Key)) "the other one exited on SIGTERM"
            Expect.isFalse ((text ()).Contains three.[2].Key) "the third cell is not started"
        }

        testCase "SIGTERM to a grid with --jobs 2: exit 143, no worker left; SIGKILL: the workers stop; a rerun gives the uninterrupted rows" <| fun () ->
            if not (OperatingSystem.IsLinux()) then skiptest "reads /proc"
            let root = Directory.CreateTempSubdirectory("contrastseg-grid-signal-").FullName
            try
                let reference, interrupted = Path.Combine(root, "reference"), Path.Combine(root, "interrupted")
                finish (start (grid reference))

                // SIGTERM: passed on to the workers, which exit; the grid says what it stopped and exits 128 + 15.
                let g, output = start (grid interrupted)
                let workers = workersTraining (g, output)
                Expect.isTrue (Signals.send g.Id 15) "SIGTERM sent"
                Expect.isTrue (g.WaitForExit(TimeSpan.FromSeconds 90.0)) (sprintf "the grid exits within 90 s of SIGTERM:\n%s" (output ()))
                g.WaitForExit()
                Expect.equal g.ExitCode 143 (sprintf "exit code 128 + SIGTERM:\n%s" (output ()))
                for w in workers do Expect.isFalse (alive w) (sprintf "worker %d is gone when the grid has exited" w)
                Expect.stringContains (output ()) "stopped by SIGTERM: 2 cell(s) interrupted" "names the interrupted cells"
                Expect.stringContains (output ()) "Run the same command again to resume" "says how to resume"
                Expect.isFalse (Directory.Exists(Path.Combine(interrupted, "results", "rows"))) "no cell finished"

                // SIGKILL: the grid cannot pass anything on; its workers see it gone and stop by themselves.
                let g, output = start (grid interrupted)
                // Killed as soon as both train again: a resumed stage has few steps left, and one that finished before its
                // worker noticed the dead grid (it polls every second) would not resume in the rerun below.
                let workers = workersTrainingFor 1 (g, output)
                Expect.equal (resumed (output ())) 2 "both stages resumed from a checkpoint written before SIGTERM"
                g.Kill false // SIGKILL to the grid alone
                g.WaitForExit()
                Expect.isTrue (waitUntil (TimeSpan.FromSeconds 10.0) (fun () -> workers |> List.forall (alive >> not)))
                    (sprintf "the workers of a killed grid stop within seconds (still running: %A)" (workers |> List.filter alive))

                // The same command again finishes both cells: their stages resumed, their rows those of the uninterrupted grid.
                let g, output = start (grid interrupted)
                finish (g, output)
                Expect.equal (resumed (output ())) 2 "both stages resumed from a checkpoint written before SIGKILL"
                let rows folder = Results.ResultStore(Path.Combine(folder, "results")).All() |> List.map (fun r -> r.CellKey, r) |> Map.ofList
                let a, b = rows reference, rows interrupted
                Expect.equal (List.ofSeq b.Keys) (List.sort cells) "both cells have rows"
                for key in cells do
                    Expect.equal (bits b.[key].MeanIoU) (bits a.[key].MeanIoU) (sprintf "%s: mIoU %.17g vs %.17g" key b.[key].MeanIoU a.[key].MeanIoU)
                    Expect.equal (bits b.[key].PixelAccuracy) (bits a.[key].PixelAccuracy) (sprintf "%s: pixel accuracy" key)
                    let settings (folder: string) (r: Results.ResultRow) =
                        r.Settings |> Seq.filter (fun kv -> not (kv.Value.Contains folder)) |> Seq.map (fun kv -> kv.Key, kv.Value) |> List.ofSeq
                    Expect.equal (settings interrupted b.[key]) (settings reference a.[key]) (sprintf "%s: settings other than paths" key)
            finally
                try Directory.Delete(root, true) with _ -> ()
    ]
