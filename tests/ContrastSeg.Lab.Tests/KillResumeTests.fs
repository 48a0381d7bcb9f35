/// A training process killed with SIGKILL at a random moment and started again ends with exactly the
/// weights of an uninterrupted run (the Lab executable is the child process, as a user would run it).
module ContrastSeg.Lab.Tests.KillResumeTests

open System
open System.Diagnostics
open System.IO
open System.Threading
open Expecto

let private labDll = Path.Combine(AppContext.BaseDirectory, "ContrastSeg.Lab.dll")

let private args (root: string) (name: string) =
    [ yield! [ "train"; "--preset"; "cpu"; "--stage"; "CrossEntropy"; "--labelled"; "16" ]
      for s in [ "OutputRoot=" + root; "Name=" + name; "Optimizer.Steps=40"; "Optimizer.WarmupSteps=4"; "Optimizer.BatchSize=4"; "CheckpointEvery=3"; "KeepLast=2"
                 "LogEvery=1"; "Data.SceneSize=32"; "Data.Crop=32"; "Data.TrainScenes=48"; "Data.ValScenes=8"; "Data.Workers=1"
                 "Model.WidthMultiplier=0.125"; "Model.AsppChannels=16"; "Model.DecoderChannels=16"; "Model.LowLevelChannels=8"; "Model.ProjectionChannels=16" ] do
          yield "--set"
          yield s ]

let private start (root: string) (name: string) =
    let psi = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    psi.ArgumentList.Add labDll
    for a in args root name do psi.ArgumentList.Add a
    psi.Environment.["CONTRASTSEG_THREADS"] <- "1" // one thread: no scheduling differences between runs
    let p = Process.Start psi
    let output = Text.StringBuilder()
    p.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p, output

let private finish (p: Process, output: Text.StringBuilder) =
    if not (p.WaitForExit(TimeSpan.FromMinutes 5.0)) then
        p.Kill true
        failtestf "training did not finish in 5 minutes:\n%O" output
    p.WaitForExit()
    Expect.equal p.ExitCode 0 (sprintf "training failed:\n%O" output)
    output.ToString()

let private finalWeights (root: string) (name: string) =
    File.ReadAllBytes(Path.Combine(root, name, "checkpoints", "step-0000040", "model.bin"))

/// Steps logged so far in a run's metrics.jsonl (read while the run writes it).
let private stepsLogged (root: string) (name: string) =
    try
        use s = new FileStream(Path.Combine(root, name, "metrics.jsonl"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite)
        use r = new StreamReader(s)
        r.ReadToEnd().Split('\n') |> Array.filter (fun l -> l.Contains "\"kind\":\"train\"") |> Array.length
    with _ -> 0

let tests =
    testList "kill and resume" [
        testCase "SIGTERM: the run checkpoints the step it finished, exits 143, and the rerun resumes there to the uninterrupted weights" <| fun () ->
            if OperatingSystem.IsWindows() then skiptest "no POSIX signals"
            let root = Directory.CreateTempSubdirectory("contrastseg-sigterm-").FullName
            try
                finish (start root "uninterrupted") |> ignore
                let reference = finalWeights root "uninterrupted"
                let p, output = start root "stopped"
                let deadline = DateTime.UtcNow.AddMinutes 4.0
                while stepsLogged root "stopped" < 10 && not p.HasExited && DateTime.UtcNow < deadline do Thread.Sleep 2
                Expect.isFalse p.HasExited (sprintf "the run ended before the signal:\n%O" output)
                Expect.isTrue (ContrastSeg.Lab.Signals.send p.Id 15) "SIGTERM sent"
                Expect.isTrue (p.WaitForExit(TimeSpan.FromMinutes 1.0)) "the run stops within a step"
                p.WaitForExit()
                Expect.equal p.ExitCode 143 (sprintf "128 + SIGTERM:\n%O" output)
                Expect.stringContains (output.ToString()) "stopped by signal 15 after step" "says where it stopped and how to resume"
                let logged = stepsLogged root "stopped"
                let checkpoints = Directory.GetDirectories(Path.Combine(root, "stopped", "checkpoints"), "step-*") |> Array.map Path.GetFileName
                Expect.contains checkpoints (sprintf "step-%07d" logged) "the last step it finished is checkpointed, not only the last multiple of CheckpointEvery"
                let resumed = finish (start root "stopped")
                Expect.stringContains resumed (sprintf "resuming at step %d/" logged) "the rerun resumes at that step"
                Expect.isTrue (reference = finalWeights root "stopped") "weights after the stop and resume equal the uninterrupted run's"
            finally
                try Directory.Delete(root, true) with _ -> ()

        testCase "a run killed at a random moment and resumed ends with the uninterrupted run's weights" <| fun () ->
            let root = Directory.CreateTempSubdirectory("contrastseg-kill-").FullName
            try
                finish (start root "uninterrupted") |> ignore
                let reference = finalWeights root "uninterrupted"

                let checkpoints = Path.Combine(root, "interrupted", "checkpoints")
                let p, output = start root "interrupted"
                // Kill just after a random step between the first checkpoint and the end (maybe mid-checkpoint).
                let rng = Random()
                let target = rng.Next(4, 36)
                let deadline = DateTime.UtcNow.AddMinutes 4.0
                let metrics = Path.Combine(root, "interrupted", "metrics.jsonl")
                let stepsLogged () =
                    try
                        use s = new FileStream(metrics, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)
                        use r = new StreamReader(s)
                        r.ReadToEnd().Split('\n') |> Array.filter (fun l -> l.Contains "\"kind\":\"train\"") |> Array.length
                    with _ -> 0
                while stepsLogged () < target && not p.HasExited && DateTime.UtcNow < deadline do
                    Thread.Sleep 2
                Thread.Sleep(rng.Next(0, 60))
                Expect.isFalse p.HasExited (sprintf "the run ended before it could be killed:\n%O" output)
                p.Kill true // SIGKILL to the process tree
                p.WaitForExit()
                let killedAt = Directory.GetDirectories(checkpoints, "step-*") |> Array.map Path.GetFileName |> Array.sort
                Expect.isFalse (killedAt |> Array.contains "step-0000040") "killed before the end"

                let resumed = finish (start root "interrupted")
                Expect.stringContains resumed "resuming at step" "the second start resumed"
                Expect.isTrue (reference = finalWeights root "interrupted")
                    (sprintf "weights differ after resume (killed after step %d with checkpoints %A)" target killedAt)
            finally
                try Directory.Delete(root, true) with _ -> ()
    ]
