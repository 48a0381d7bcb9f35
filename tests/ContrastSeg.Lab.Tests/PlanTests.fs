/// The study plan (issue 30): one place composes every stage's config, written to plan.json; workers, cluster tasks,
/// the reuse check and the report read it, and a worker run from the plan alone gives the local row bit for bit.
module ContrastSeg.Lab.Tests.PlanTests

open System
open System.Diagnostics
open System.IO
open Expecto
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid

let private runs = Path.Combine(Path.GetTempPath(), "contrastseg-plan-tests")

let private bits (x: float) = BitConverter.DoubleToInt64Bits x

/// Runs the Lab executable in its own process, in `cwd`: a worker as the grid or a cluster task starts it.
let private lab (cwd: string) (argv: string list) =
    let info = ProcessStartInfo("dotnet", WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for a in typeof<Executor.GridProgress>.Assembly.Location :: argv do info.ArgumentList.Add a
    info.Environment.["CONTRASTSEG_THREADS"] <- "1"
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Result, err

let tests =
    testList "study plan" [
        test "plan.json holds every stage of every cell and reads back as it was written" {
            let root = Directory.CreateTempSubdirectory("contrastseg-plan-json-").FullName
            for p in [ quick runs; defaultProfile runs; ablationsProfile runs; regimeOf (defaultProfile runs) ] do
                let plan = Grid.plan p
                let file = Path.Combine(root, p.Name, StudyPlan.FileName)
                plan.Write file
                let back = StudyPlan.Read file
                Expect.equal (back.ToJson()) (plan.ToJson()) (p.Name + ": the same plan")
                Expect.equal back.Cells.Count (p.Cells |> List.distinctBy (fun c -> c.Key) |> List.length) (p.Name + ": every cell once")
                for a, b in Seq.zip plan.Cells back.Cells do
                    Expect.equal (b.TrainedStages |> Seq.map (fun s -> s.RunName) |> List.ofSeq) (a.TrainedStages |> Seq.map (fun s -> s.RunName) |> List.ofSeq) (a.Key + ": the same runs")
                    Expect.equal b.Recipe a.Recipe (a.Key + ": the recipe")
        }

        test "a damaged or missing plan file is refused naming it" {
            let root = Directory.CreateTempSubdirectory("contrastseg-plan-bad-").FullName
            let file = Path.Combine(root, "plan.json")
            Expect.throwsT<FileNotFoundException> (fun () -> StudyPlan.Read file |> ignore) "missing"
            File.WriteAllText(file, """{"Format": 1, "Profile": "x", "Cells": [ {"Key": """)
            let e = Expect.throwsC (fun () -> StudyPlan.Read file |> ignore) id
            Expect.isTrue (e :? InvalidDataException && e.Message.Contains file) (sprintf "names the file: %s" e.Message)
            File.WriteAllText(file, (Grid.plan (quick runs)).ToJson().Replace("\"Format\": 1,", "\"Format\": 99,"))
            let e = Expect.throwsC (fun () -> StudyPlan.Read file |> ignore) id
            Expect.stringContains e.Message "format 99" "names the format"
        }

        test "--plan takes no option that shapes cells, and names the ones given" {
            let root = Directory.CreateTempSubdirectory("contrastseg-plan-options-").FullName
            let file = Path.Combine(root, "plan.json")
            (Grid.plan (quick runs)).Write file
            let code, _, err = CliTests.run Cli.ablations [ "--plan"; file; "--set"; "Seed=3"; "--steps"; "5"; "--list-keys" ]
            Expect.equal code 2 "refused"
            Expect.stringContains err "--set, --steps" "names the options"
            let code, out, err = CliTests.run Cli.ablations [ "--plan"; file; "--list-keys" ]
            Expect.equal code 0 err
            Expect.equal (out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray) ((Grid.plan (quick runs)).Cells |> Seq.map (fun c -> c.Key) |> List.ofSeq) "the plan's keys"
            let code, _, err = CliTests.run Cli.ablations [ "--plan"; file; "--cell"; "no-such-cell" ]
            Expect.equal code 2 "an unknown cell"
            Expect.stringContains err "'no-such-cell'" "named"
        }

        test "a cell planned under another runs folder names its stages as planning there does" {
            let p = quick runs
            let there = { p with Defaults = p.Defaults.WithBase(ConfigOverrides.Apply(p.Defaults.Base, [ "OutputRoot=/elsewhere/runs" ])) }
            for c in p.Cells do
                let rebased = (Grid.plan p).Under(GridTests.planned p c, "/elsewhere/runs")
                let planned = GridTests.planned there c
                Expect.equal (rebased.TrainedStages |> Seq.map (fun s -> s.ToJson()) |> List.ofSeq) (planned.TrainedStages |> Seq.map (fun s -> s.ToJson()) |> List.ofSeq) (c.Key + ": every stage")
                Expect.equal (List.ofSeq rebased.Outputs) (List.ofSeq planned.Outputs) (c.Key + ": its outputs")
        }

        test "one warm-up rule: at most a quarter of a stage, in presets, studies and --steps caps" {
            for stage in [ TrainingStage.CrossEntropy; TrainingStage.Contrastive; TrainingStage.FineTune ] do
                for n in [ 10; 100; 2000 ] do
                    let o = (TrainPresets.Cpu(stage, Nullable n)).Optimizer
                    Expect.equal o.WarmupSteps (min 100 (o.Steps / 4)) (sprintf "cpu preset, %O at %d" stage n)
            let capped = { defaultProfile runs with Defaults = (defaultProfile runs).Defaults.WithStepCap 40 }
            for c in (Grid.plan capped).Cells do
                for s in c.TrainedStages do
                    Expect.equal (s.Optimizer.Steps, s.Optimizer.WarmupSteps) (40, 10) (c.Key + ": capped, a quarter warm-up")
        }

        testCase "a worker run from plan.json alone, in another folder, gives the row of a local run bit for bit" <| fun () ->
            let root = Directory.CreateTempSubdirectory("contrastseg-plan-worker-").FullName
            try
                let key = "label-efficiency.contrastive-finetune.labelled-8.s0"
                let grid = [ "--profile"; "quick"; "--steps"; "3"; "--cells"; key ]
                // The plan, written by --list-keys with absolute folders; then its worker from another working directory.
                let planned = Path.Combine(root, "planned")
                let code, _, err = CliTests.run Cli.ablations (grid @ [ "--runs"; Path.Combine(planned, "runs"); "--output"; planned; "--list-keys" ])
                Expect.equal code 0 err
                let elsewhere = Directory.CreateDirectory(Path.Combine(root, "cwd")).FullName
                let code, out, err = lab elsewhere [ "ablations"; "--plan"; Path.Combine(planned, "plan.json"); "--cell"; key ]
                Expect.equal code 0 (sprintf "worker: %s\n%s" out err)
                // The same cell run locally from the profile, in this process.
                let local = Path.Combine(root, "local")
                let code, _, err = CliTests.run Cli.ablations (grid @ [ "--runs"; Path.Combine(local, "runs"); "--output"; local; "--jobs"; "1" ])
                Expect.equal code 0 err
                let a = (Results.ResultStore(planned).Read key).Value
                let b = (Results.ResultStore(local).Read key).Value
                Expect.all a.Stages (fun s -> s.StartsWith(Path.Combine(planned, "runs"))) "the worker trained where the plan says"
                Expect.equal (bits a.MeanIoU) (bits b.MeanIoU) (sprintf "mIoU %.17g vs %.17g" a.MeanIoU b.MeanIoU)
                Expect.equal (bits a.PixelAccuracy) (bits b.PixelAccuracy) "pixel accuracy"
                Expect.equal a.Settings.["Optimizer.Steps"] b.Settings.["Optimizer.Steps"] "the same schedule"
            finally
                try Directory.Delete(root, true) with _ -> ()
    ]
