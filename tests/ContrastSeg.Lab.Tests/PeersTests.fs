/// The peers' loss options in the grid (issue 33): the `peers` profile plans, lists and runs its cells; the plans the kit
/// published before the options existed re-plan to the same run names.
module ContrastSeg.Lab.Tests.PeersTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open ContrastSeg.Losses
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid

let private runs = Path.Combine(Path.GetTempPath(), "contrastseg-peers-tests")

let private repo = Path.Combine(__SOURCE_DIRECTORY__, "..", "..")

/// The run names a plan file records for each cell's stages, as written (not derived again).
let private recordedNames (file: string) =
    let root = JsonNode.Parse(File.ReadAllText file)
    [ for cell in root.["Cells"].AsArray() ->
        let stages (name: string) = [ for s in cell.[name].AsArray() -> s.["RunName"].GetValue<string>() ]
        cell.["Key"].GetValue<string>(), stages "TeacherStages" @ stages "Stages" ]

let tests =
    testList "peers" [
        test "the published default plan re-plans to the run names it records" {
            let file = Path.Combine(repo, "docs", "results", "default", "plan.json")
            let recorded = recordedNames file
            Expect.isGreaterThan recorded.Length 20 "the published plan's cells"
            let plan = StudyPlan.Read file
            // Read back: every stage config derives the name it was written with.
            for cell in plan.Cells do
                let names = cell.TrainedStages |> Seq.map (fun s -> s.RunName) |> List.ofSeq
                Expect.equal names (recorded |> List.find (fun (k, _) -> k = cell.Key) |> snd) (cell.Key + ": read back")
            // Planned again from the profile today (its runs folder as published): the same cells, the same names.
            let again = Grid.plan (defaultProfile plan.Defaults.Base.OutputRoot)
            Expect.equal (again.Cells |> Seq.map (fun c -> c.Key) |> List.ofSeq) (recorded |> List.map fst) "the same cells"
            for cell in again.Cells do
                let names = cell.TrainedStages |> Seq.map (fun s -> s.RunName) |> List.ofSeq
                Expect.equal names (recorded |> List.find (fun (k, _) -> k = cell.Key) |> snd) (cell.Key + ": planned again")
            Expect.equal (again.ToJson()) (plan.ToJson()) "the same plan, field by field"
        }

        test "the peers profile pairs every option with cross-entropy and the paper's loss of the default study" {
            let p = peersProfile runs
            let d = defaultProfile runs
            for n, seeds in defaultSeeds do
                for seed in seeds do
                    let at (c: StudyCell) = c.Labelled = Nullable n && c.Seed = seed
                    let methods = p.Cells |> List.filter at |> List.map (fun c -> c.Method)
                    Expect.equal methods ([ "cross-entropy"; "contrastive+finetune" ] @ (peersMethods |> List.map (fun (m, _, _, _) -> m))) (sprintf "n=%d s%d" n seed)
                    // Cross-entropy and the paper's loss are the default study's runs (trained once when runs folders are shared).
                    for meth in [ "cross-entropy"; "contrastive+finetune" ] do
                        let mine = p.Cells |> List.find (fun c -> at c && c.Method = meth)
                        let theirs = d.Cells |> List.find (fun c -> at c && c.Method = meth)
                        Expect.equal (GridTests.planned p mine).FinalStageNames (GridTests.planned d theirs).FinalStageNames (sprintf "%s n=%d s%d: the default study's runs" meth n seed)
                    // Every option cell trains the same budget as cross-entropy: joint at CE's steps, two stages at pretrain + fine-tune.
                    let ce = (GridTests.stagesOf p (p.Cells |> List.find (fun c -> at c && c.Method = "cross-entropy"))).Head.Optimizer.Steps
                    for c in p.Cells |> List.filter at do
                        let stages = GridTests.stagesOf p c
                        Expect.equal (stages |> List.sumBy (fun s -> s.Optimizer.Steps)) ce (c.Key + ": equal budget")
                        for s in stages do s.Validate() |> ignore
            let plan = Grid.plan p
            let joint = plan.Cells |> Seq.find (fun c -> c.Method = "joint-hard-anchors+memory")
            let s = joint.Final
            Expect.equal s.Stage TrainingStage.Joint "joint stage"
            Expect.equal (s.Contrastive.JointWeight, s.Contrastive.AnchorsPerClass, s.Contrastive.HardAnchorFraction, s.Contrastive.MemoryPixels) (0.1, 16, 0.5, 256) "ContrastiveSeg's options"
            let reco = (plan.Cells |> Seq.find (fun c -> c.Method = "joint-reco")).Final.Contrastive
            Expect.equal (reco.Form, reco.Temperature) (ContrastiveForm.Regional, 0.5) "ReCo's form and temperature"
            let memory = plan.Cells |> Seq.find (fun c -> c.Method = "contrastive-memory+finetune")
            Expect.equal memory.Stages.[0].Contrastive.MemoryRegions 64 "the memory in pretraining"
            Expect.equal memory.Stages.[1].Contrastive.MemoryRegions 0 "not in fine-tuning"
            // plan.json round trip, loss settings included.
            let file = Path.Combine(Directory.CreateTempSubdirectory("contrastseg-peers-plan-").FullName, "plan.json")
            plan.Write file
            let back = StudyPlan.Read file
            Expect.equal (back.ToJson()) (plan.ToJson()) "the same plan"
            Expect.equal (back.Cells |> Seq.map (fun c -> c.FinalStageNames) |> List.ofSeq) (plan.Cells |> Seq.map (fun c -> c.FinalStageNames) |> List.ofSeq) "the same runs"
        }

        test "a loss setting outside the Contrastive section is refused naming the cell" {
            let p = peersProfile runs
            let c = p.Cells.Head
            let bad = StudyCell(c.Study, c.Setting, "x", c.Seed, c.Labelled, CellRecipe.Joint(ContrastiveVariant.CrossImage), null, null, RecipeOverrides(Loss = ResizeArray [ "Optimizer.Steps=3" ]))
            let e = Expect.throwsC (fun () -> StudyPlanner.PlanCell(p.Defaults, bad) |> ignore) id
            Expect.stringContains e.Message "Optimizer.Steps=3" "names the setting"
            Expect.stringContains e.Message bad.Key "names the cell"
        }

        test "folder-peers pairs every option with the folder study's own cross-entropy and paper runs at its lowest count" {
            let parse args = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine(args))
            let root = StudyTests.makeFolder 16
            let common = [| "--data-root"; root; "--fractions"; "1/4"; "all"; "--seeds"; "0"; "1" |]
            let folder = parse (Array.append [| "--profile"; "folder" |] common)
            let p = parse (Array.append [| "--profile"; "folder-peers" |] common)
            Expect.equal p.Name "folder-peers" "name"
            Expect.equal p.Defaults.Base.OutputRoot (Path.Combine("runs", "folder")) "runs shared with the folder study"
            Expect.equal (p.Cells |> List.choose (fun c -> Option.ofNullable c.Labelled) |> List.distinct) [ 4 ] "the lowest count only"
            for seed in [ 0; 1 ] do
                let at (c: StudyCell) = c.Labelled = Nullable 4 && c.Seed = seed
                Expect.equal (p.Cells |> List.filter at |> List.map (fun c -> c.Method))
                    ([ "cross-entropy"; "contrastive+finetune" ] @ (peersMethods |> List.map (fun (m, _, _, _) -> m))) (sprintf "s%d" seed)
                for meth in [ "cross-entropy"; "contrastive+finetune" ] do
                    let mine = p.Cells |> List.find (fun c -> at c && c.Method = meth)
                    let theirs = folder.Cells |> List.find (fun c -> at c && c.Method = meth)
                    Expect.equal (GridTests.planned p mine).FinalStageNames (GridTests.planned folder theirs).FinalStageNames (sprintf "%s s%d: the folder study's runs" meth seed)
                let ce = (GridTests.stagesOf p (p.Cells |> List.find (fun c -> at c && c.Method = "cross-entropy"))).Head.Optimizer.Steps
                for c in p.Cells |> List.filter at do
                    Expect.equal (GridTests.stagesOf p c |> List.sumBy (fun s -> s.Optimizer.Steps)) ce (c.Key + ": equal budget")
            let e = Expect.throwsC (fun () -> parse [| "--profile"; "voc-peers"; "--data-root"; root |] |> ignore) id
            Expect.stringContains e.Message "folder-peers" "says which profiles study the options"
        }

        test "the results-methods block lists every option against cross-entropy in the plan's order, with its verdict" {
            let plan = Grid.plan (peersProfile runs)
            let at meth (mious: float list) = mious |> List.mapi (fun seed v -> ResultsTests.row "peers" "labelled=10" meth seed v)
            let rows =
                at "joint-reco" [ 0.121; 0.121; 0.120 ]            // ahead: +2.0, +2.1, +1.9
                @ at "cross-entropy" [ 0.101; 0.100; 0.101 ]
                @ at "joint" [ 0.111; 0.090; 0.101 ]               // tie: +1.0, -1.0, 0.0
                @ at "contrastive+finetune" [ 0.111; 0.110; 0.101 ] // joint-reco − it: +1.0, +1.1, +1.9
            let lines = (ResultsPage.methods plan rows).Split('\n') |> Array.filter (fun l -> l.StartsWith "| 10 |")
            Expect.equal (lines |> Array.map (fun l -> l.Split('|').[2].Trim())) [| "cross-entropy"; "contrastive+finetune"; "joint"; "joint-reco" |] "the plan's order"
            Expect.stringContains lines.[0] "(baseline)" "cross-entropy is the baseline"
            Expect.stringContains lines.[2] "+1.0, −1.0, 0.0" "per-seed differences"
            Expect.stringContains lines.[2] "| tie |" "an interval holding 0 is a tie"
            Expect.stringContains lines.[3] "| ahead |" "an interval above 0 is ahead"
            Expect.stringContains lines.[3] "| 3 |" "n"
            let cols (l: string) = l.Split('|') |> Array.map (fun c -> c.Trim())
            Expect.equal ((cols lines.[3]).[7], (cols lines.[3]).[8]) ("+1.3 [+0.1, +2.6]", "ahead") "against the paper's loss"
            Expect.equal ((cols lines.[1]).[7], (cols lines.[1]).[8]) ("(baseline)", "") "the paper's loss is the second baseline"
        }

        test "the peers' rows draw learning curves (seed 0 of every option), so a reader sees each converged" {
            let curve = Some [| ({ Step = 150; MeanIoU = 0.1 } : Results.CurvePoint); { Step = 300; MeanIoU = 0.12 } |]
            let rows =
                [ for meth in [ "cross-entropy"; "joint-reco" ] do
                    for seed in [ 0; 1 ] -> { ResultsTests.row "peers" "labelled=10" meth seed 0.1 with ValidationCurve = curve } ]
            Expect.equal (ReportInputs.learningCurves rows |> Result.map (List.map fst)) (Ok [ "cross-entropy, labelled=10"; "joint-reco, labelled=10" ]) "seed 0 of each option"
        }

        test "ablations --profile peers --list prints one command per cell" {
            let root = Directory.CreateTempSubdirectory("contrastseg-peers-list-").FullName
            let code, out, err = CliTests.run Cli.ablations [ "--profile"; "peers"; "--list"; "--runs"; Path.Combine(root, "runs"); "--output"; root ]
            Expect.equal code 0 err
            let lines = out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            Expect.equal lines.Length (peersProfile runs).Cells.Length "one per cell"
            Expect.isTrue (lines |> Array.exists (fun l -> l.Contains "peers.joint-reco.labelled-10.s0")) "ReCo's cell"
        }

        testCase "tiny peers cells run end to end from the grid" <| fun () ->
            let root = Directory.CreateTempSubdirectory("contrastseg-peers-run-").FullName
            try
                let p = peersProfile runs
                let key meth = (p.Cells |> List.find (fun c -> c.Method = meth && c.Labelled = Nullable 10 && c.Seed = 0)).Key
                let keys = [ key "joint-hard-anchors+memory"; key "contrastive-memory+finetune" ]
                let small =
                    [ "Data.Scenes.Size=32"; "Data.Crop=32"; "Data.Scenes.Train=40"; "Data.Scenes.Val=4"; "Data.Workers=1"; "EvalEvery=0"
                      "Model.WidthMultiplier=0.125"; "Model.AsppChannels=16"; "Model.DecoderChannels=16"; "Model.LowLevelChannels=8"; "Model.ProjectionChannels=16" ]
                    |> List.collect (fun s -> [ "--set"; s ])
                let code, out, err =
                    CliTests.run Cli.ablations ([ "--profile"; "peers"; "--steps"; "2"; "--jobs"; "1"; "--runs"; Path.Combine(root, "runs"); "--output"; root; "--cells" ] @ keys @ small)
                Expect.equal code 0 (sprintf "%s\n%s" out err)
                for k in keys do
                    let row = (Results.ResultStore(root).Read k)
                    Expect.isSome row (k + ": a row")
                    Expect.isTrue (Double.IsFinite row.Value.MeanIoU) (k + ": a score")
                let memoryFiles = Directory.GetFiles(Path.Combine(root, "runs"), "loss_memory.bin", SearchOption.AllDirectories)
                Expect.isNonEmpty memoryFiles "the memory is checkpointed"
            finally
                try Directory.Delete(root, true) with _ -> ()
    ]
