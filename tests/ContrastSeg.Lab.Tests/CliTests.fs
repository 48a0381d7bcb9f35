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
    [ "Optimizer.Steps=2"; "Optimizer.WarmupSteps=0"; "Optimizer.BatchSize=2"; "CheckpointEvery=2"; "LogEvery=1"; "Data.Scenes.Size=32"; "Data.Crop=32"
      "Data.Scenes.Train=6"; "Data.Scenes.Val=2"; "Data.Workers=1"; "Model.WidthMultiplier=0.125"; "Model.AsppChannels=16"; "Model.DecoderChannels=16"
      "Model.LowLevelChannels=8"; "Model.ProjectionChannels=16" ]
    |> List.collect (fun s -> [ "--set"; s ])

/// The command that trains the tiny run `teacher` under `root`.
let private teacherArgs (root: string) =
    [ "--preset"; "cpu"; "--stage"; "CrossEntropy"; "--labelled"; "4"; "--set"; "OutputRoot=" + root; "--set"; "Name=teacher" ] @ tiny

/// A tiny trained run (2 steps on 4 labelled scenes of 6, so 2 are unlabelled), made once for the tests that need one
/// (in one fixed temporary folder, emptied first, so reruns leave no trail).
let private teacher =
    lazy (
        let root = Path.Combine(Path.GetTempPath(), "contrastseg-cli-tests")
        if Directory.Exists root then Directory.Delete(root, true)
        let code, out, err = run Cli.train (teacherArgs root)
        if code <> 0 then failtestf "the tiny run failed (%d):\n%s\n%s" code out err
        Path.Combine(root, "teacher"))

/// A command that failed with `code` in one line (no stack trace) that mentions each of `mentions`.
let private expectFailed (code, _, (err: string)) expected (mentions: string list) what =
    Expect.equal code expected (sprintf "%s: exit code %d (stderr: %s)" what expected err)
    Expect.equal (err.Trim().Split('\n').Length) 1 (sprintf "%s: one line, no stack trace: %s" what err)
    for m in mentions do Expect.stringContains err m (sprintf "%s: names %s" what m)

/// A folder nothing can be written to, even by root (tests run as root in CI, where permission bits do not bite): as
/// another user chmod 0500, as root chattr +i (ext4, xfs, btrfs), else a path through a regular file, which cannot be
/// created (see the core tests' ReadOnlyFolder). Returns the folder and what undoes it.
let private readOnlyFolder () =
    let root = Directory.CreateTempSubdirectory("contrastseg-cli-readonly-").FullName
    let folder = Path.Combine(root, "out")
    Directory.CreateDirectory folder |> ignore
    let chattr (flag: string) =
        try
            let info = Diagnostics.ProcessStartInfo("chattr", RedirectStandardError = true, RedirectStandardOutput = true)
            info.ArgumentList.Add flag
            info.ArgumentList.Add folder
            use p = Diagnostics.Process.Start info
            p.WaitForExit()
            p.ExitCode = 0
        with :? ComponentModel.Win32Exception -> false // no chattr
    let remove () = try Directory.Delete(root, true) with _ -> ()
    if not (OperatingSystem.IsWindows()) && Environment.UserName <> "root" then
        File.SetUnixFileMode(folder, UnixFileMode.UserRead ||| UnixFileMode.UserExecute)
        folder, (fun () -> File.SetUnixFileMode(folder, UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute); remove ())
    elif not (OperatingSystem.IsWindows()) && chattr "+i" then
        folder, (fun () -> chattr "-i" |> ignore; remove ())
    else
        File.WriteAllText(Path.Combine(root, "a-file"), "")
        Path.Combine(root, "a-file", "out"), remove

let tests =
    testList "command line" [
        test "train refuses a derived setting (RunName) and a name that leaves OutputRoot, which 46f90c8 accepted" {
            // validate-data takes its datasets from the registry: the generated scenes have no files to scan.
            expectRefused (run Cli.validateData [ "--dataset"; "fashion-mnist-scenes"; "--root"; "." ]) [ "generated"; "folder, voc, cityscapes" ] "validate-data scenes"
            expectRefused (run Cli.validateData [ "--dataset"; "pictures"; "--root"; "." ]) [ "'pictures'"; "folder, voc, cityscapes" ] "validate-data unknown"
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
            expectRefused (run Cli.train [ "--set"; "Model.AsppDropout=1.5"; "--print-config" ]) [ "Model.AsppDropout"; "1.5" ] "range"
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

        test "--allow-unfinished-init is the AllowUnfinishedInit setting, which leaves the run name alone" {
            let code, out, err = run Cli.train [ "--init-from"; "runs/x"; "--allow-unfinished-init"; "--print-config" ]
            Expect.equal code 0 (sprintf "accepted: %s" err)
            Expect.stringContains out "\"AllowUnfinishedInit\": true" "in the config"
            let _, without, _ = run Cli.train [ "--init-from"; "runs/x"; "--print-config" ]
            let name (o: string) = o.Split('\n') |> Array.find (fun l -> l.StartsWith "run name: ")
            Expect.equal (name out) (name without) "the same run name"
        }

        test "--device is the Runtime.Device setting: checked by name, resolved only when work starts, not part of the run name" {
            let code, out, err = run Cli.train [ "--device"; "cpu"; "--print-config" ]
            Expect.equal code 0 (sprintf "accepted: %s" err)
            Expect.stringContains out "\"Device\": \"cpu\"" "in the config"
            let _, plain, _ = run Cli.train [ "--print-config" ]
            let name (text: string) = text.Split('\n') |> Array.find (fun l -> l.StartsWith "run name:")
            Expect.equal (name out) (name plain) "the same run name on every device"
            // A GPU job can be planned on a machine without one: the value is checked, CUDA is looked for when work starts.
            let code, out, err = run Cli.train [ "--device"; "cuda"; "--print-config" ]
            Expect.equal code 0 (sprintf "cuda accepted for planning: %s" err)
            Expect.stringContains out "\"Device\": \"cuda:0\"" "normalised"
            expectRefused (run Cli.train [ "--device"; "gpu"; "--print-config" ]) [ "--device"; "'gpu'"; "auto, cpu, cuda or cuda:N" ] "--device gpu"
            expectRefused (run Cli.train [ "--device"; "cuda:x"; "--print-config" ]) [ "--device"; "'cuda:x'" ] "--device cuda:x"
            expectRefused (run Cli.train [ "--set"; "Runtime.Device=cuda:-1"; "--print-config" ]) [ "Runtime.Device"; "'cuda:-1'" ] "--set Runtime.Device=cuda:-1"
        }

        test "train --device cuda on this CPU-only build stops before any work and says how to get the CUDA backend" {
            if ContrastSeg.Runtime.Devices.Backend = "cpu" then
                let root = Path.Combine(Path.GetTempPath(), "contrastseg-cli-device-" + Guid.NewGuid().ToString("N"))
                expectRefused (run Cli.train ([ "--device"; "cuda"; "--set"; "OutputRoot=" + root ] @ tiny)) [ "TorchSharp-cpu backend"; "-p:TorchBackend=cuda"; "Device and backend" ] "cuda"
                Expect.isFalse (Directory.Exists root) "no run folder written"
        }

        test "evaluate, predict and pseudolabel compute on --device (default auto), not on the device the run recorded" {
            let run' = teacher.Force()
            let code, out, err = run Cli.evaluate [ "--run"; run'; "--device"; "cpu" ]
            Expect.equal code 0 (sprintf "evaluate --device cpu: %s" err)
            Expect.stringContains out "[evaluate] device: cpu (Runtime.Device=cpu)" "the device line"
            let code, out, err = run Cli.evaluate [ "--run"; run' ]
            Expect.equal code 0 (sprintf "evaluate: %s" err)
            Expect.stringContains out "[evaluate] device: cpu (auto:" "auto, although config.json records cpu"
            expectRefused (run Cli.evaluate [ "--run"; run'; "--device"; "gpu" ]) [ "--device"; "'gpu'" ] "evaluate --device gpu"
            expectRefused (run Cli.predict [ "--run"; run'; "--device"; "gpu" ]) [ "--device"; "'gpu'" ] "predict --device gpu"
            expectRefused (run Cli.pseudolabel [ "--teacher"; run'; "--output"; Path.Combine(Path.GetDirectoryName run', "p-gpu"); "--device"; "gpu" ]) [ "--device"; "'gpu'" ] "pseudolabel --device gpu"
        }

        test "ablations takes --device for every stage and writes it into the plan the --list commands run" {
            let parse args = Cli.profileOf (Argu.ArgumentParser.Create<Cli.AblationArgs>().ParseCommandLine(args))
            let p = parse [| "--profile"; "quick"; "--device"; "cuda:1" |]
            Expect.equal p.Defaults.Base.Runtime.Device "cuda:1" "the grid's base config"
            Expect.equal (parse [| "--profile"; "quick" |]).Defaults.Base.RunName p.Defaults.Base.RunName "same run names"
            let ex = Expect.throwsC (fun () -> parse [| "--profile"; "quick"; "--device"; "gpu" |] |> ignore) id
            Expect.isTrue (ex :? ContrastSeg.Training.ConfigException && (ex :?> ContrastSeg.Training.ConfigException).Field = "--device") (sprintf "--device gpu: %s" ex.Message)
            let results = Directory.CreateTempSubdirectory("contrastseg-device-list-").FullName
            let code, out, err = run Cli.ablations [ "--profile"; "quick"; "--device"; "cpu"; "--output"; results; "--list" ]
            Expect.equal code 0 (sprintf "--list: %s" err)
            let lines = out.Trim().Split('\n')
            Expect.isGreaterThan lines.Length 1 "one command per cell"
            let plan = ContrastSeg.Studies.StudyPlan.Read(Path.Combine(results, "plan.json"))
            for l in lines do Expect.stringContains l ("--plan " + Path.Combine(results, "plan.json")) "runs the plan"
            Expect.equal plan.Device "cpu" "the plan's device"
            for c in plan.Cells do
                for s in c.TrainedStages do Expect.equal s.Runtime.Device "cpu" (sprintf "%s: every stage's device" c.Key)
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

        test "train refuses to resume a run whose config.json was edited, naming the file and the field; the edit trains as a run of its own" {
            let root = Directory.CreateTempSubdirectory("contrastseg-cli-edited-").FullName
            try
                let args = [ "--set"; "OutputRoot=" + root ] @ tiny // a derived name: the folder is a hash of the settings
                let code, out, err = run Cli.train args
                Expect.equal code 0 (sprintf "the first run: %s%s" out err)
                let folder = Directory.GetDirectories root |> Array.exactlyOne
                let file = Path.Combine(folder, "config.json")
                let json = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText file)
                let rate = json.["Optimizer"].["LearningRate"].GetValue<float>()
                json.["Optimizer"].["LearningRate"] <- Text.Json.Nodes.JsonValue.Create(rate / 2.0)
                File.WriteAllText(file, json.ToJsonString())
                let edited = File.ReadAllText file
                expectFailed (run Cli.train args) 2 [ file; sprintf "Optimizer.LearningRate %g -> %g" rate (rate / 2.0); sprintf "--set Optimizer.LearningRate=%g" (rate / 2.0) ] "edited"
                Expect.equal (File.ReadAllText file) edited "config.json left as the user wrote it"
                // What the message says to do trains the edited settings in a folder of their own.
                let code, out, err = run Cli.train (args @ [ "--set"; sprintf "Optimizer.LearningRate=%g" (rate / 2.0) ])
                Expect.equal code 0 (sprintf "the edited settings: %s%s" out err)
                Expect.equal (Directory.GetDirectories root).Length 2 "two run folders"
            finally
                Directory.Delete(root, true)
        }

        test "train refuses a run folder another training holds, in one line naming the holder" {
            let run' = teacher.Force()
            use held = ContrastSeg.Training.RunLock.Acquire run'
            expectFailed (run Cli.train (teacherArgs (Path.GetDirectoryName run'))) 5
                [ Path.GetFullPath run' + " is being trained by"; sprintf "process %d on %s" Environment.ProcessId Environment.MachineName ] "locked"
        }

        test "a read-only output folder is one line naming it, for train, predict and evaluate" {
            let run' = teacher.Force()
            let folder, undo = readOnlyFolder ()
            try
                expectFailed (run Cli.train ([ "--set"; "OutputRoot=" + folder ] @ tiny)) 5 [ sprintf "cannot write to %s (OutputRoot" folder; "--set OutputRoot=" ] "train"
                expectFailed (run Cli.predict [ "--run"; run'; "--output"; folder ]) 5 [ sprintf "cannot write to %s (where predictions" folder; "--output" ] "predict"
                expectFailed (run Cli.evaluate [ "--run"; run'; "--output"; Path.Combine(folder, "report.json") ]) 5 [ sprintf "cannot write to %s" folder; "--output" ] "evaluate"
            finally
                undo ()
        }
    ]
