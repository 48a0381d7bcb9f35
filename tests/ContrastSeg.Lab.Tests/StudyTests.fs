/// The folder profile (fractions, cells), reuse of committed rows on a fresh clone, learning curves.
module ContrastSeg.Lab.Tests.StudyTests

open System
open System.IO
open Expecto
open ContrastSeg.Data
open ContrastSeg.Training
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid

/// A tiny folder dataset the test makes itself: `train` images in splits/train.txt, 4 in splits/val.txt.
let makeFolder (train: int) =
    let root = Directory.CreateTempSubdirectory("contrastseg-folder-").FullName
    for d in [ "images"; "masks"; "splits" ] do Directory.CreateDirectory(Path.Combine(root, d)) |> ignore
    File.WriteAllLines(Path.Combine(root, "classes.txt"), [| "road 128 64 128"; "car 0 0 142"; "sky 70 130 180" |])
    let ids = [ for i in 0 .. train + 3 -> sprintf "frame%03d" i ]
    let rng = Random(7)
    for id in ids do
        let w, h = 40, 30
        let pixels = Array.init (w * h * 3) (fun _ -> byte (rng.Next 256))
        ImageCodec.WriteRgbPng(Path.Combine(root, "images", id + ".png"), RgbImage(w, h, pixels))
        let labels = Array.init (w * h) (fun i -> if i % w < 10 then 255uy else byte (i / w % 3))
        ImageCodec.WriteGrayscalePng(Path.Combine(root, "masks", id + ".png"), LabelMap(w, h, labels))
    File.WriteAllLines(Path.Combine(root, "splits", "train.txt"), ids |> List.take train)
    File.WriteAllLines(Path.Combine(root, "splits", "val.txt"), ids |> List.skip train)
    root

let private runs = Path.Combine(Path.GetTempPath(), "contrastseg-study-tests")

let tests =
    testList "study" [
        test "label fractions become counts of the training split, each once" {
            Expect.equal (labelCountsOf 367 [ 1.0 / 16.0; 1.0 / 8.0; 1.0 / 4.0; 1.0 ]) [ 23; 46; 92; 367 ] "camvid-dev train"
            Expect.equal (labelCountsOf 10 [ 0.01; 0.05; 1.0 ]) [ 1; 10 ] "at least one image; duplicates merged"
            Expect.throwsT<ConfigException> (fun () -> labelCountsOf 10 [ 1.5 ] |> ignore) "fraction above 1"
            Expect.equal (List.map Cli.parseFraction [ "1/16"; "0.25"; "all"; "1" ]) [ 0.0625; 0.25; 1.0; 1.0 ] "as typed"
            Expect.throwsT<ConfigException> (fun () -> Cli.parseFraction "half" |> ignore) "not a fraction"
        }

        test "the folder profile is the label-efficiency study over fractions, 3 seeds, on the folder's splits" {
            let root = makeFolder 32
            let p = folderProfile runs (folderDefaults root)
            Expect.equal p.Name "folder" "name"
            let counts = p.Cells |> List.choose (fun c -> Option.ofNullable c.Labelled) |> List.distinct |> List.sort
            Expect.equal counts [ 2; 4; 8; 32 ] "1/16, 1/8, 1/4, all of 32"
            Expect.equal p.Cells.Length (4 * 2 * 3) "counts x (CE, contrastive) x seeds"
            Expect.equal (p.Cells |> List.map (fun c -> c.Seed) |> List.distinct) [ 0; 1; 2 ] "seeds"
            Expect.equal p.EvalSplit "val" "scored on val by default"
            for c in p.Cells do
                for s in GridTests.stagesOf p c do
                    let s = s.Validate()
                    Expect.equal s.Data.Dataset "folder" "folder data"
                    Expect.equal s.Data.Root root "its root"
                    Expect.equal s.Data.Crop 128 "default crop"
            // Each count at the folder schedule's budget: up to 30 labelled images 1,200 steps, up to 120 1,600.
            for c in p.Cells do
                let steps = GridTests.stagesOf p c |> List.sumBy (fun s -> s.Optimizer.Steps)
                Expect.equal steps (if c.Labelled.Value <= 30 then 1200 else 1600) (c.Key + ": equal budget of its count")
            Expect.equal (budgetAt folderSchedule 367) (ContrastSeg.Studies.StepBudget.Equal 2400) "camvid-dev's 367: the longest"
            let custom = folderProfile runs { folderDefaults root with Fractions = [ 0.5 ]; Seeds = [ 4 ]; Crop = 32; Resize = 0.5; EvalSplit = "test" }
            Expect.equal (custom.Cells |> List.map (fun c -> c.Labelled, c.Seed) |> List.distinct) [ Nullable 16, 4 ] "options reach the cells"
            let s = GridTests.stagesOf custom custom.Cells.Head |> List.head
            Expect.equal (s.Data.Crop, s.Data.Resize, custom.EvalSplit) (32, 0.5, "test") "crop, resize, split"
        }

        test "--profile folder needs --data-root, and folder options are refused on other profiles" {
            let parse args = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine(args))
            Expect.throwsT<ConfigException> (fun () -> parse [| "--profile"; "folder" |] |> ignore) "no root"
            Expect.throwsT<ConfigException> (fun () -> parse [| "--profile"; "default"; "--fractions"; "1/4" |] |> ignore) "folder-only flag"
            Expect.throwsT<ConfigException> (fun () -> parse [| "--profile"; "default"; "--dataset"; "pictures" |] |> ignore) "unknown dataset"
            let root = makeFolder 16
            let p = parse [| "--profile"; "folder"; "--data-root"; root; "--fractions"; "1/4"; "all"; "--seeds"; "0"; "--crop"; "32" |]
            Expect.equal (p.Cells |> List.choose (fun c -> Option.ofNullable c.Labelled) |> List.distinct) [ 4; 16 ] "fractions parsed"
        }

        test "a committed row that holds its feature space is reused without its checkpoint; one that holds none is trained again" {
            // A fresh clone: rows exist, run folders do not. Training would reach the missing data and fail.
            let p = quick runs |> GridTests.withSettings [ GridTests.emptyDataRoot () ]
            let plan = Grid.plan p
            let store = Results.ResultStore(Directory.CreateTempSubdirectory("contrastseg-fresh-").FullName)
            let row (cell: ContrastSeg.Studies.PlannedCell) =
                let r = { ResultsTests.row cell.Study cell.Setting cell.Method cell.Seed 0.3 with CellKey = cell.Key; Stages = [| "/nonexistent-run-folder" |] }
                r.Settings.["stages"] <- cell.FinalStageNames
                r.Settings.["eval_split"] <- p.EvalSplit
                r
            let sample : Results.FeatureSample =
                { PointsPerClass = plan.FeatureSpace.PointsPerClass; ClassNames = [| "a"; "b" |]; IntraClass = 0.5; InterClass = 0.1; Ratio = 0.2
                  NearestCentroidAccuracy = 0.25; TsneX = [| 0.0f; 1.0f |]; TsneY = [| 1.0f; 0.0f |]; Classes = [| 0; 1 |] }
            let tsneCells = plan.Cells |> Seq.filter plan.NeedsCheckpoint |> List.ofSeq
            let tsneCell, withSample = tsneCells.[0], tsneCells.[1]
            let other = plan.Cells |> Seq.find (plan.NeedsCheckpoint >> not)
            store.Write(row tsneCell)
            store.Write { row withSample with FeatureSpace = Some sample; ValidationCurve = Some [| ({ Step = 10; MeanIoU = 0.2 } : Results.CurvePoint) |] }
            store.Write(row other)
            Expect.isSome (Runner.staleReason plan tsneCell (store.Read tsneCell.Key).Value) "no feature space and no checkpoint"
            Expect.isFalse (Runner.isReusable plan store tsneCell) "not reusable"
            Expect.isTrue (Runner.isReusable plan store withSample) "its stored feature space stands in for the checkpoint"
            Expect.isTrue (Runner.isReusable plan store other) "a row alone is enough for the tables"
            Expect.isSome (Runner.staleReason plan withSample { (store.Read withSample.Key).Value with FeatureSpace = Some { sample with PointsPerClass = 1 } }) "sampled at another count"
            let opts = { Runner.Force = false; Runner.Console = TextWriter.Null }
            Expect.equal (Runner.runCell plan store opts other).MeanIoU 0.3 "reused"
            Expect.equal (Runner.runCell plan store opts withSample).FeatureSpace (Some sample) "reused as stored"
            Expect.throws (fun () -> Runner.runCell plan store opts tsneCell |> ignore) "trained again (and reaches the missing data)"
            // A report from such rows names what it cannot draw and why.
            match ReportInputs.featureSpace plan (Runner.currentRows plan store @ [ row tsneCell ]) with
            | Error n -> Expect.stringContains n.Why tsneCell.Key "names the row without a feature space"
            | Ok _ -> failtest "drawn without the feature space of one of its rows"
            match ReportInputs.learningCurves [ row tsneCell; (store.Read withSample.Key).Value ] with
            | Error n -> Expect.stringContains n.Why (sprintf "1 of their 2 rows hold no validation curve (%s)" tsneCell.Key) "names the row without a curve"
            | Ok _ -> failtest "drawn without the curve of one of its rows"
        }

        test "the learning curve of a two-stage row counts fine-tuning steps after pretraining" {
            let root = Directory.CreateTempSubdirectory("contrastseg-curve-").FullName
            let pre, fine = Path.Combine(root, "pre"), Path.Combine(root, "fine")
            for d in [ pre; fine ] do Directory.CreateDirectory d |> ignore
            File.WriteAllLines(Path.Combine(pre, "metrics.jsonl"), [| """{"kind":"train","step":100,"contrastive":1.0}"""; """{"kind":"train","step":200,"contrastive":0.5}""" |])
            File.WriteAllLines(Path.Combine(fine, "metrics.jsonl"),
                [| """{"kind":"train","step":50,"cross_entropy":1.0}"""; """{"kind":"val","step":50,"mIoU":0.2}"""
                   """{"kind":"val","step":100,"mIoU":0.3}"""; """{"kind":"val","step":100,"mIoU":0.35}""" |]) // resumed: last record counts
            Expect.equal (ReportInputs.validationCurve ignore [| pre; fine |]) (Some [| ({ Step = 250; MeanIoU = 0.2 } : Results.CurvePoint); { Step = 300; MeanIoU = 0.35 } |]) "offset by the pretraining steps"
            Expect.isNone (ReportInputs.validationCurve ignore [| pre; "/nonexistent" |]) "a stage's run folder is not here: no curve"
            // The chart reads the stored curve, in percent.
            let row = { ResultsTests.row "label-efficiency" "labelled=10" "contrastive+finetune" 0 0.3 with ValidationCurve = ReportInputs.validationCurve ignore [| pre; fine |] }
            Expect.equal (ReportInputs.learningCurves [ row ]) (Ok [ "contrastive+finetune, labelled=10", [ 250.0, 20.0; 300.0, 35.0 ] ]) "from the row alone"
        }
    ]

let exportTests =
    testList "export-folder" [
        test "embedded scenes written as a folder read back with the same pixels and labels, and validate" {
            let root = Path.Combine(Directory.CreateTempSubdirectory("contrastseg-export-").FullName, "scenes")
            let code = Cli.exportFolder [| "--output"; root; "--train"; "6"; "--val"; "3"; "--test"; "2" |]
            Expect.equal code 0 "exit code"
            let scenes = FashionMnistScenes(FashionMnistSceneOptions(Split = SceneSplit.Train, TrainScenes = 6), FashionMnistSource.Open())
            let folder = FolderDataset(root, FolderOptions(Split = "train"))
            Expect.equal folder.Ids.Count 6 "train ids"
            Expect.equal (List.ofSeq folder.Ids) (List.ofSeq scenes.Ids) "the scenes' ids (they already name their split)"
            Expect.equal (List.ofSeq folder.Info.ClassNames) (List.ofSeq scenes.Info.ClassNames) "classes"
            for i in 0 .. 5 do
                let a, b = scenes.Load i, folder.Load i
                Expect.equal b.Image.Pixels a.Image.Pixels "pixels"
                Expect.equal b.Labels.Labels a.Labels.Labels "labels"
            Expect.equal (FolderDataset(root, FolderOptions(Split = "test")).Ids.Count) 2 "test split"
            Expect.isTrue (DatasetValidator.ValidateFolder(root, FolderOptions(Split = "val")).IsValid) "the validator accepts it"
        }
    ]
