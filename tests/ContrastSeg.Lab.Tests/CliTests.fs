/// The command line refuses values that parse but cannot work (issue 12, items 2 and 6): a one-line error that
/// names the option or setting and its value, exit code 2, before any work; nothing is silently ignored.
module ContrastSeg.Lab.Tests.CliTests

open System
open System.IO
open Expecto
open ContrastSeg.Lab

/// Runs a command in-process: exit code, standard output, standard error.
let run (command: string[] -> int) (argv: string list) =
    let out, err = new StringWriter(), new StringWriter()
    let previousOut, previousErr = Console.Out, Console.Error
    Console.SetOut out
    Console.SetError err
    try
        let code = command (Array.ofList argv)
        code, out.ToString(), err.ToString()
    finally
        Console.SetOut previousOut
        Console.SetError previousErr

let private expectRefused (code, _, (err: string)) (mentions: string list) what =
    Expect.equal code 2 (sprintf "%s: exit code 2 (stderr: %s)" what err)
    Expect.equal (err.Trim().Split('\n').Length) 1 (sprintf "%s: one line, no stack trace: %s" what err)
    for m in mentions do Expect.stringContains err m (sprintf "%s: names %s" what m)

let private tiny =
    [ "Optimizer.Steps=2"; "Optimizer.WarmupSteps=0"; "Optimizer.BatchSize=2"; "CheckpointEvery=2"; "LogEvery=1"; "Data.SceneSize=32"; "Data.Crop=32"
      "Data.TrainScenes=6"; "Data.ValScenes=2"; "Data.Workers=1"; "Model.Width=0.125"; "Model.AsppChannels=16"; "Model.DecoderChannels=16"
      "Model.LowLevelChannels=8"; "Model.ProjectionChannels=16" ]
    |> List.collect (fun s -> [ "--set"; s ])

/// A tiny trained run (2 steps on 4 labelled scenes of 6, so 2 are unlabelled), made once for the tests that need one
/// (in one fixed temporary folder, emptied first, so reruns leave no trail).
let private teacher =
    lazy (
        let root = Path.Combine(Path.GetTempPath(), "contrastseg-cli-tests")
        if Directory.Exists root then Directory.Delete(root, true)
        let code, out, err = run Cli.train ([ "--preset"; "cpu"; "--stage"; "Baseline"; "--labelled"; "4"; "--set"; "OutputRoot=" + root; "--set"; "Name=teacher" ] @ tiny)
        if code <> 0 then failtestf "the tiny run failed (%d):\n%s\n%s" code out err
        Path.Combine(root, "teacher"))

let tests =
    testList "command line" [
        test "train refuses a derived setting (RunName) and a name that leaves OutputRoot, which 46f90c8 accepted" {
            expectRefused (run Cli.train [ "--set"; "RunName=mine"; "--print-config" ]) [ "RunName"; "Name=" ] "RunName"
            expectRefused (run Cli.train [ "--set"; "Name=.."; "--print-config" ]) [ "Name"; "'..'" ] "Name=.."
            expectRefused (run Cli.train [ "--set"; "Name=../elsewhere"; "--print-config" ]) [ "'../elsewhere'" ] "Name=../elsewhere"
            let code, out, _ = run Cli.train [ "--set"; "Name=mine"; "--print-config" ]
            Expect.equal code 0 "a plain name is fine"
            Expect.stringContains out "run name: mine" "and names the run"
        }

        test "train says what a number, integer or enum setting takes instead of a stack trace or serialiser internals" {
            expectRefused (run Cli.train [ "--set"; "Optimizer.LearningRate=NaN"; "--print-config" ]) [ "Optimizer.LearningRate"; "finite"; "NaN" ] "NaN"
            expectRefused (run Cli.train [ "--set"; "Optimizer.LearningRate=1e400"; "--print-config" ]) [ "Optimizer.LearningRate"; "1e400" ] "1e400"
            expectRefused (run Cli.train [ "--set"; "Contrastive.Variant=Foo"; "--print-config" ]) [ "Contrastive.Variant"; "WithinImage, CrossImage, Batch"; "Foo" ] "enum"
            expectRefused (run Cli.train [ "--set"; "Optimizer.Steps=20.5"; "--print-config" ]) [ "Optimizer.Steps"; "integer"; "20.5" ] "integer"
            expectRefused (run Cli.train [ "--set"; "Model.Dropout=1.5"; "--print-config" ]) [ "Model.Dropout"; "1.5" ] "range"
        }

        test "ablations refuses a non-positive --steps or --labelled before planning cells" {
            let parse args = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine(args))
            let ex = Expect.throwsC (fun () -> parse [| "--profile"; "quick"; "--steps"; "0" |] |> ignore) id
            Expect.isTrue (ex :? ContrastSeg.Training.ConfigException && ex.Message.Contains "got 0") (sprintf "--steps 0: %s" ex.Message)
            let ex = Expect.throwsC (fun () -> parse [| "--profile"; "voc"; "--data-root"; "/tmp"; "--labelled"; "2"; "0" |] |> ignore) id
            Expect.isTrue (ex :? ContrastSeg.Training.ConfigException && ex.Message.Contains "2 0") (sprintf "--labelled 0: %s" ex.Message)
        }

        test "--allow-partial is the AllowPartialInit setting" {
            let code, out, err = run Cli.train [ "--allow-partial"; "--print-config" ]
            Expect.equal code 0 (sprintf "accepted: %s" err)
            Expect.stringContains out "\"AllowPartialInit\": true" "in the config"
        }

        test "predict, evaluate and pseudolabel refuse values that parse but cannot work, before writing anything" {
            let run' = teacher.Force()
            let folder name = Path.Combine(Path.GetDirectoryName run', name)
            for limit in [ "-1"; "0" ] do
                let output = folder ("predictions" + limit)
                expectRefused (run Cli.predict [ "--run"; run'; "--limit"; limit; "--output"; output ]) [ "--limit"; limit ] ("--limit " + limit)
                Expect.isFalse (Directory.Exists output) "nothing written"
            expectRefused (run Cli.evaluate [ "--run"; run'; "--scales"; "1"; "0" ]) [ "--scales"; "scale 0 is invalid" ] "--scales 0"
            expectRefused (run Cli.predict [ "--run"; run'; "--scales"; "-2"; "--output"; folder "p" ]) [ "--scales"; "scale -2" ] "predict --scales -2"
            let pseudo = folder "pseudo"
            expectRefused (run Cli.pseudolabel [ "--teacher"; run'; "--output"; pseudo; "--object-threshold"; "1.5" ]) [ "--object-threshold = 1.5 is invalid"; "[0, 1)" ] "object threshold"
            expectRefused (run Cli.pseudolabel [ "--teacher"; run'; "--output"; pseudo; "--background-threshold"; "1" ]) [ "--background-threshold = 1 is invalid" ] "background threshold"
            Expect.isFalse (Directory.Exists pseudo) "nothing written"
            // The same commands with values that work.
            let output = folder "predictions"
            let code, out, err = run Cli.predict [ "--run"; run'; "--limit"; "1"; "--output"; output; "--scales"; "1"; "1.5" ]
            Expect.equal code 0 (sprintf "predict works: %s%s" out err)
            Expect.equal (Directory.GetFiles(output, "*.png").Length) 2 "one index PNG and one overlay"
            let code, out, err = run Cli.pseudolabel [ "--teacher"; run'; "--output"; pseudo; "--object-threshold"; "0.5" ]
            Expect.equal code 0 (sprintf "pseudolabel works: %s%s" out err)
        }
    ]
