/// The regime map: its grid (label count x stem x budget), the map's cells and verdicts, the CLI profiles.
module ContrastSeg.Lab.Tests.RegimeTests

open System
open System.IO
open Expecto
open ContrastSeg.Models
open ContrastSeg.Training
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid
open ContrastSeg.Lab.Results

let private runs = Path.Combine(Path.GetTempPath(), "contrastseg-regime-tests")

/// The summary of one method at one setting with these per-seed mIoU values (regime study rows).
let summary setting meth (values: float list) =
    summarise [ for i, v in List.indexed values ->
                  { Study = "regime"; Setting = setting; Method = meth; Seed = i; CellKey = sprintf "%s.%s.%d" setting meth i; Stages = [||]
                    MeanIoU = v; PixelAccuracy = 0.0; Extras = Collections.Generic.Dictionary(); Settings = Collections.Generic.Dictionary()
                    WallSeconds = 0.0; Machine = ""; Numerics = null; Provenance = null; Finished = DateTimeOffset.UnixEpoch
                    ValidationCurve = None; FeatureSpace = None } ]
    |> List.exactlyOne

let tests =
    testList "regime" [
        test "the default regime map: label counts x stems x budgets, equal budgets, seed 0, stages shared with default" {
            let d = defaultProfile runs
            let all = defaultAllProfile runs
            let p = defaultRegime runs [ 0 ]
            Expect.equal p.Name "default-regime" "name"
            Expect.equal p.Cells.Length (3 * 2 * 2 * 2) "3 label counts x 2 stems x 2 budgets x (CE, contrastive)"
            for c in p.Cells do
                let staged = GridTests.stagesOf p c |> List.map (fun s -> s.Validate())
                let cap, budget = c.Capacity, c.Budget
                for s in staged do
                    Expect.equal (s.Model.Stem, s.Model.WidthMultiplier, s.Seed) (cap.Stem, cap.WidthMultiplier, 0) "the cell's stem and width, seed 0"
                Expect.equal (budget.Pretrain + budget.FineTune) budget.CrossEntropy "equal total steps"
                match c.Recipe with
                | :? ContrastSeg.Studies.CrossEntropyRecipe -> Expect.equal (staged |> List.map (fun s -> s.Optimizer.Steps)) [ budget.CrossEntropy ] "CE steps"
                | _ -> Expect.equal (staged |> List.map (fun s -> s.Optimizer.Steps)) [ budget.Pretrain; budget.FineTune ] "pretraining, fine-tuning"
                Expect.stringContains c.Setting (sprintf "stem=%s,width=0.25,steps=%d" (stemSlug cap.Stem) budget.CrossEntropy) "setting names the point"
            for n in [ 10; 100; 2000 ] do
                let study = budgetAt scenesSchedule n
                Expect.equal (p.Cells |> List.filter (fun c -> c.Labelled = Nullable n) |> List.map (fun c -> c.Budget.CrossEntropy) |> List.distinct |> List.sort)
                    [ study.CrossEntropy; 3 * study.CrossEntropy ] (sprintf "1x and 3x the study's budget at %d labels" n)
            Expect.isTrue (p.Cells |> List.forall (fun c -> match c.Recipe with :? ContrastSeg.Studies.ContrastiveFineTuneRecipe as r -> r.Variant = ContrastSeg.Losses.ContrastiveVariant.CrossImage | _ -> true)) "the study's loss"
            // The point of the map that is the default study itself trains the same stages (one runs folder).
            let names (q: Profile) c = GridTests.stagesOf q c |> List.map (fun s -> s.RunName)
            for c in d.Cells @ all.Cells |> List.filter (fun c -> c.Seed = 0) do
                let twin =
                    p.Cells |> List.find (fun r -> r.Labelled = c.Labelled && r.Method = c.Method && r.Capacity.Stem = EncoderStem.Small && r.Budget.CrossEntropy = (budgetAt scenesSchedule c.Labelled.Value).CrossEntropy)
                Expect.equal (names p twin) (names d c) "same run names as the default studies' seed-0 cells"
        }

        test "the map pairs both methods per point, names the winner and calls gains inside the seed spread a tie" {
            let s = [ summary "labelled=10,stem=small,width=0.25,steps=600" "cross-entropy" [ 0.10; 0.11; 0.12 ]
                      summary "labelled=10,stem=small,width=0.25,steps=600" "contrastive+finetune" [ 0.17; 0.18; 0.16 ]
                      summary "labelled=100,stem=small,width=0.25,steps=600" "cross-entropy" [ 0.20; 0.22; 0.18 ]
                      summary "labelled=100,stem=small,width=0.25,steps=600" "contrastive+finetune" [ 0.10; 0.09; 0.11 ]
                      summary "labelled=10,stem=imagenet,width=0.25,steps=600" "cross-entropy" [ 0.100; 0.12 ]
                      summary "labelled=10,stem=imagenet,width=0.25,steps=600" "contrastive+finetune" [ 0.105; 0.11 ]
                      summary "labelled=100,stem=imagenet,width=0.25,steps=600" "cross-entropy" [ 0.2 ]
                      summary "distortions=on" "contrastive+finetune" [ 0.3 ] ]
            let map = Regime.cells s
            Expect.equal map.Length 4 "the points that name labelled, stem, width and steps"
            let at stem n = map |> List.find (fun c -> c.Capacity = sprintf "stem=%s,width=0.25" stem && c.Labelled = n)
            Expect.floatClose Accuracy.medium (at "small" 10).Gain.Value 6.0 "gain in points"
            Expect.equal (Regime.verdict (at "small" 10)) "contrastive" "contrastive ahead beyond the spread"
            Expect.equal (Regime.verdict (at "small" 100)) "cross-entropy" "CE ahead"
            Expect.equal (Regime.verdict (at "imagenet" 10)) "tie" "within the seed spread"
            Expect.isNone (at "imagenet" 100).Gain "one side missing: no gain"
            let md = Regime.markdown "test" map
            Expect.stringContains md "| stem=small,width=0.25 | 600 | 11.0 ± 1.0 / 17.0 ± 1.0 (+6.0, contrastive, n=3) |" "a row of the table"
            Expect.stringContains md "| stem=imagenet,width=0.25 | 600 |" "every capacity and budget a row"
            let folder = Directory.CreateTempSubdirectory("contrastseg-regime-").FullName
            Charts.regimeMap folder "test" map
            Expect.isTrue (File.Exists(Path.Combine(folder, "regime-map.png")) && File.Exists(Path.Combine(folder, "regime-map.html"))) "chart written"
        }

        test "the CLI runs <profile>-regime for default and folder, caps its budgets with --steps, refuses others" {
            let parse args = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine(args))
            let p = parse [| "--profile"; "default-regime" |]
            Expect.equal p.Name "default-regime" "name"
            Expect.equal p.Defaults.Base.OutputRoot (Path.Combine("runs", "default")) "runs shared with the default study"
            let capped = parse [| "--profile"; "default-regime"; "--steps"; "50" |]
            Expect.isTrue ((Grid.plan capped).Cells |> Seq.forall (fun c -> c.TrainedStages |> Seq.forall (fun s -> s.Optimizer.Steps <= 50))) "--steps caps every stage"
            let root = StudyTests.makeFolder 16
            let f = parse [| "--profile"; "folder-regime"; "--data-root"; root; "--fractions"; "1/4"; "all" |]
            Expect.equal (f.Cells |> List.choose (fun c -> Option.ofNullable c.Labelled) |> List.distinct |> List.sort) [ 4; 16 ] "the folder study's label counts"
            Expect.throwsT<ConfigException> (fun () -> parse [| "--profile"; "voc-regime"; "--data-root"; root |] |> ignore) "no paper-scale regime map"
            // --seeds adds seeds to a map (a point's spread); seed 0's cells stay those of the one-seed map.
            let seeded = parse [| "--profile"; "default-regime"; "--seeds"; "0"; "1"; "2" |]
            Expect.equal (seeded.Cells |> List.map (fun c -> c.Seed) |> List.distinct) [ 0; 1; 2 ] "three seeds"
            Expect.equal (seeded.Cells |> List.filter (fun c -> c.Seed = 0) |> List.map (fun c -> c.Key)) (p.Cells |> List.map (fun c -> c.Key)) "seed 0 as before"
            Expect.throwsT<ConfigException> (fun () -> parse [| "--profile"; "default"; "--seeds"; "1" |] |> ignore) "--seeds stays folder / regime only"
        }
    ]
