/// Command-line entry points: `train`, `evaluate`, `predict`, `pseudolabel`, `ablations`.
/// The scripts in scripts/ and the Lab executable both call these; `--help` explains every option.
module ContrastSeg.Lab.Cli

open System
open System.Diagnostics
open System.IO
open Argu
open ContrastSeg.Evaluation
open ContrastSeg.Losses
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab.Grid
open ContrastSeg.Lab.Results

/// Runs a command body: --help prints usage (exit 0); bad arguments and invalid settings print a clear message (exit 2).
let private guard (name: string) (body: unit -> int) =
    try body ()
    with
    | :? ArguParseException as e ->
        (if e.ErrorCode = ErrorCode.HelpText then Console.Out else Console.Error).WriteLine e.Message
        if e.ErrorCode = ErrorCode.HelpText then 0 else 2
    | :? ConfigException as e -> eprintfn "%s: invalid setting %s: %s" name e.Field e.Message; 2
    | :? ContrastSeg.Data.DatasetException as e -> eprintfn "%s: data problem: %s" name e.Message; 2
    | :? TrainingDivergedException as e -> eprintfn "%s: %s" name e.Message; 3
    // A training stopped by a signal after checkpointing: the exit code of a process the signal ended.
    | :? TrainingInterruptedException as e -> eprintfn "%s: %s" name e.Message; 128 + e.Signal
    | :? ContrastSeg.Runtime.TorchRuntimeException as e -> eprintfn "%s: %s" name e.Message; 4
    | :? IO.FileNotFoundException as e -> eprintfn "%s: %s" name e.Message; 2
    | :? IO.DirectoryNotFoundException as e -> eprintfn "%s: %s" name e.Message; 2
    | :? IO.InvalidDataException as e -> eprintfn "%s: %s" name e.Message; 2
    // A grid stopped by a signal: which cells it interrupted and how to resume; the exit code of a process the signal ended.
    | :? Executor.GridInterruptedException as e -> eprintfn "%s: %s" name e.Message; 128 + Signals.number e.Signal
    // Disk full and other I/O errors: the message names the path (a CheckpointWriteException also what was being written,
    // an OutputFolderException the folder that cannot be written, a RunInUseException the process training the run).
    | :? IO.IOException as e -> eprintfn "%s: %s" name e.Message; 5
    // A write the commands do not check beforehand (e.g. a read-only file in the way): .NET's message names the path.
    | :? UnauthorizedAccessException as e -> eprintfn "%s: %s" name e.Message; 5

let private parse<'T when 'T :> IArgParserTemplate> (program: string) (argv: string[]) =
    let argv = if argv.Length > 0 && argv.[0] = "--" then argv.[1..] else argv // `dotnet fsi x.fsx -- ...` passes the separator on
    ArgumentParser.Create<'T>(programName = program).ParseCommandLine(argv, raiseOnUsage = true)

/// The dataset names `--dataset` takes (Data.Dataset).
let datasetNames = List.ofSeq DatasetRegistry.Names

let private datasetUsage = "dataset kind: " + String.Join("|", datasetNames) + " (fashion-mnist-scenes is the embedded default; folder = your own images/ + masks/ folder)."

/// `--dataset` and `--data-root` as settings, with the dataset name checked here so the message lists the names.
let private dataAssignments (dataset: string option) (root: string option) =
    [ match dataset with
      | Some d when not (List.contains d datasetNames) ->
          raise (ConfigException(sprintf "--dataset '%s' is unknown: use %s" d (String.Join(", ", datasetNames)), "--dataset"))
      | Some d -> yield "Data.Dataset=" + d
      | None -> ()
      match root with Some p -> yield "Data.Root=" + p | None -> () ]

let private deviceUsage =
    "device: auto (the default: CONTRASTSEG_DEVICE if set, else CUDA when available, else cpu), cpu, cuda or cuda:N; setting Runtime.Device."

/// `--device` as the Runtime.Device setting, checked here so the message names the option.
let private deviceAssignments (device: string option) =
    match device with
    | Some d -> [ "Runtime.Device=" + ContrastSeg.Runtime.Devices.Parse(d, "--device") ]
    | None -> []

/// The device of a command that reads a trained run: `--device`, else auto. The run's config.json records where it
/// trained, which says nothing about where this machine should compute.
let private runDevice (device: string option) =
    match deviceAssignments device with
    | [] -> [ "Runtime.Device=" + ContrastSeg.Runtime.Devices.Auto ]
    | given -> given

// ---------------------------------------------------------------------------------------------- train

type TrainArgs =
    | [<AltCommandLine("-c")>] Config of path: string
    | Preset of name: string
    | Stage of stage: string
    | Dataset of kind: string
    | Data_Root of path: string
    | Labelled of count: int
    | Init_From of path: string
    | Allow_Partial
    | Allow_Unfinished_Init
    | [<AltCommandLine("-s")>] Set of assignment: string
    | Device of device: string
    | Print_Config
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Device _ -> deviceUsage
            | Config _ -> "start from a config JSON file (e.g. a run's config.json)."
            | Preset _ -> "start from a preset: cpu (embedded scenes, default), voc, cityscapes (paper settings)."
            | Stage _ -> "CrossEntropy (default), Contrastive (pretraining), FineTune (needs --init-from) or Joint (cross-entropy + Contrastive.JointWeight x the contrastive loss, as ContrastiveSeg and ReCo train)."
            | Dataset _ -> datasetUsage
            | Data_Root _ -> "dataset root (VOCdevkit/VOC2012, Cityscapes root, custom folder, or a Fashion-MNIST folder)."
            | Labelled _ -> "number of labelled training images (a seeded subset, written to a list file and reused)."
            | Init_From _ -> "initial weights: a run folder or checkpoint, or torchvision ResNet weights (.safetensors/.pth)."
            | Allow_Partial -> "train even when the --init-from weight file fits the encoder only in part (the rest stays freshly initialised); setting AllowPartialInit."
            | Allow_Unfinished_Init -> "start from an --init-from run folder whose training has not taken all its steps (its best, else latest checkpoint); setting AllowUnfinishedInit. Naming a checkpoint folder (<run>/checkpoints/step-N) needs no flag."
            | Set _ -> "override any setting, e.g. --set Optimizer.LearningRate=0.01 --set Contrastive.Variant=CrossImage (repeatable)."
            | Print_Config -> "print the final config JSON and the run name, and exit without training."

let buildConfig (r: ParseResults<TrainArgs>) =
    let stage = match r.TryGetResult Stage with Some s -> TrainingStages.Parse(s, "--stage") | None -> TrainingStage.CrossEntropy
    let start =
        match r.TryGetResult Config with
        | Some path -> TrainConfig.Load path
        // The label count goes to the preset: the paper presets train fewer steps at low counts (50K fine-tuning, 300K CE).
        | None -> TrainPresets.Get(r.GetResult(Preset, "cpu"), stage, r.TryGetResult Data_Root |> Option.toObj, r.TryGetResult Labelled |> Option.toNullable)
    let assignments =
        [ if r.Contains Stage then yield sprintf "Stage=%O" stage
          yield! dataAssignments (r.TryGetResult Dataset) (r.TryGetResult Data_Root)
          match r.TryGetResult Labelled with Some n -> yield sprintf "Data.Labelled=%d" n | None -> ()
          match r.TryGetResult Init_From with Some p -> yield "InitFrom=" + p | None -> ()
          if r.Contains Allow_Partial then yield "AllowPartialInit=true"
          if r.Contains Allow_Unfinished_Init then yield "AllowUnfinishedInit=true"
          yield! deviceAssignments (r.TryGetResult Device)
          yield! r.GetResults Set ]
    ConfigOverrides.Apply(start, assignments).Validate()

let train (argv: string[]) =
    guard "train" (fun () ->
        let r = parse<TrainArgs> "train" argv
        let config = buildConfig r
        if r.Contains Print_Config then
            printfn "%s\nrun name: %s" (config.ToJson()) config.RunName
            0
        else
            let result = Runs.Train config
            match result.Validation with
            | null -> printfn "done: %s (%d steps, %.0f s)" result.RunDirectory result.Steps result.Seconds
            | m -> printfn "done: %s (%d steps, %.0f s), validation mIoU %.2f %%, pixel accuracy %.2f %%" result.RunDirectory result.Steps result.Seconds (100.0 * m.MeanIoU) (100.0 * m.PixelAccuracy)
            0)

// ------------------------------------------------------------------------------- evaluate / predict

type EvalArgs =
    | [<Mandatory; AltCommandLine("-r")>] Run of folder: string
    | Split of name: string
    | Flip
    | Scales of scale: float list
    | Output of path: string
    | Limit of count: int
    | Dataset of kind: string
    | Data_Root of path: string
    | Device of device: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Device _ -> deviceUsage
            | Dataset _ -> "score on another dataset than the run's (same classes): " + datasetUsage
            | Data_Root _ -> "root of that dataset (default: the run's Data.Root)."
            | Run _ -> "run folder (its best, else latest checkpoint) or a checkpoint folder; its config.json describes the data."
            | Split _ -> "split to use (default: the run's validation split; 'test' for the scenes)."
            | Flip -> "test-time augmentation: average with the mirrored image."
            | Scales _ -> "test-time augmentation: average over input scales, e.g. --scales 0.75 1 1.25."
            | Output _ -> "evaluate: write the report JSON here; predict: the folder for index PNGs and overlays."
            | Limit _ -> "predict: at most this many images."

/// The config of a run folder, or of the run holding a checkpoint folder (<run>/checkpoints/<step>),
/// with `data` settings (`--dataset`, `--data-root`) applied.
let private runConfig (run: string) (split: string option) (data: string list) =
    let candidates = [ Path.Combine(run, "config.json"); Path.GetFullPath(Path.Combine(run, "..", "..", "config.json")) ]
    let file =
        match candidates |> List.tryFind File.Exists with
        | Some f -> f
        | None -> raise (IO.FileNotFoundException(sprintf "%s is not a run folder or checkpoint: no config.json there or two levels up" run))
    let c = ConfigOverrides.Apply(TrainConfig.Load file, data)
    match split with
    | Some s -> ConfigOverrides.Apply(c, [ "Data.ValSplit=" + s ])
    | None -> c

/// Runs `make`, reporting an invalid value under the command-line option that gave it.
let private asOption (flag: string) (make: unit -> 'T) =
    try make ()
    with :? ConfigException as e -> raise (ConfigException(e.Message, flag))

let private tta (r: ParseResults<EvalArgs>) =
    asOption "--scales" (fun () -> InferenceOptions(r.Contains Flip, (match r.TryGetResult Scales with Some s -> Array.ofList s | None -> null)))

let evaluate (argv: string[]) =
    guard "evaluate" (fun () ->
        let r = parse<EvalArgs> "evaluate" argv
        let options = tta r
        let run = r.GetResult Run
        // The report's folder is checked before the evaluation, not after it.
        match r.TryGetResult Output with
        | Some path -> OutputFolder.RequireWritable(Path.GetDirectoryName(Path.GetFullPath path), "where the report is written", "pass another --output")
        | None -> ()
        let config = runConfig run None (dataAssignments (r.TryGetResult EvalArgs.Dataset) (r.TryGetResult EvalArgs.Data_Root) @ runDevice (r.TryGetResult EvalArgs.Device))
        let report = Runs.Evaluate(run, config.Validate(), options, r.TryGetResult Split |> Option.toObj, Console.Out)
        printfn "%s on %s: mIoU %.2f %%, pixel accuracy %.2f %%" report.Run report.Split (100.0 * report.Metrics.MeanIoU) (100.0 * report.Metrics.PixelAccuracy)
        report.Metrics.ClassIoU |> Seq.iteri (fun i v -> printfn "  %-14s %s" report.ClassNames.[i] (if Double.IsNaN v then "absent" else sprintf "%.2f" (100.0 * v)))
        match r.TryGetResult Output with
        | Some path -> File.WriteAllText(path, Text.Json.JsonSerializer.Serialize(report, Text.Json.JsonSerializerOptions(WriteIndented = true, NumberHandling = Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals)))
        | None -> ()
        0)

let predict (argv: string[]) =
    guard "predict" (fun () ->
        let r = parse<EvalArgs> "predict" argv
        let options = tta r
        match r.TryGetResult Limit with
        | Some n when n < 1 -> raise (ConfigException(sprintf "must be a positive number of images, got %d (without --limit every image is written)" n, "--limit"))
        | _ -> ()
        let run = r.GetResult Run
        let output = r.GetResult(Output, Path.Combine(run, "predictions"))
        let config = runConfig run (r.TryGetResult Split) (dataAssignments (r.TryGetResult EvalArgs.Dataset) (r.TryGetResult EvalArgs.Data_Root) @ runDevice (r.TryGetResult EvalArgs.Device))
        let n = Runs.Predict(run, config.Validate(), output, options, Option.toNullable (r.TryGetResult Limit), Console.Out)
        printfn "wrote %d predictions (index PNG + overlay) to %s" n output
        0)

type PseudoArgs =
    | [<Mandatory; AltCommandLine("-r")>] Teacher of folder: string
    | [<Mandatory>] Output of folder: string
    | Object_Threshold of p: float
    | Background_Threshold of p: float
    | No_Background
    | Dataset of kind: string
    | Data_Root of path: string
    | Device of device: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Device _ -> deviceUsage
            | Dataset _ -> "label the unlabelled images of another dataset than the teacher's (same classes): " + datasetUsage
            | Data_Root _ -> "root of that dataset (default: the teacher's Data.Root)."
            | Teacher _ -> "the trained run whose predictions become pseudo-labels (its config gives data and labelled subset)."
            | Output _ -> "folder for the pseudo-label index PNGs (then train with --set Data.PseudoLabels=<folder>)."
            | Object_Threshold _ -> "softmax confidence an object pixel needs (default 0.8, as in the paper)."
            | Background_Threshold _ -> "confidence the background class needs (default 0.97, the paper's VOC value)."
            | No_Background -> "the dataset has no background class (Cityscapes): one threshold for all."

let pseudolabel (argv: string[]) =
    guard "pseudolabel" (fun () ->
        let r = parse<PseudoArgs> "pseudolabel" argv
        let teacher = r.GetResult Teacher
        let objectThreshold = PseudoLabelOptions.Checked(r.GetResult(Object_Threshold, 0.8), "--object-threshold")
        let background =
            if r.Contains No_Background then Nullable()
            else Nullable(PseudoLabelOptions.Checked(r.GetResult(Background_Threshold, 0.97), "--background-threshold"))
        let options = PseudoLabelOptions(objectThreshold, background)
        let config = runConfig teacher None (dataAssignments (r.TryGetResult PseudoArgs.Dataset) (r.TryGetResult PseudoArgs.Data_Root) @ runDevice (r.TryGetResult PseudoArgs.Device))
        let report = Runs.PseudoLabel(teacher, config.Validate(), options, r.GetResult Output, Console.Out)
        printfn "pseudo-labelled %d images, %.1f %% of pixels kept, in %s" report.Images (100.0 * report.Coverage) report.Folder
        0)

// -------------------------------------------------------------------------------------- ablations

type AblationArgs =
    | Profile of name: string
    | Plan of file: string
    | Dataset of kind: string
    | Data_Root of path: string
    | Fractions of fraction: string list
    | Crop of pixels: int
    | Resize of factor: float
    | Eval_Split of split: string
    | Val_Split of split: string
    | Seeds of seed: int list
    | Labelled of counts: int list
    | Output of folder: string
    | Runs of folder: string
    | List
    | List_Keys
    | Wave of number: int
    | Cells of keys: string list
    | Cell of key: string
    | Force
    | Jobs of count: int
    | Report_Only
    | Steps of count: int
    | Variant of loss: string
    | [<AltCommandLine("-s")>] Set of assignment: string
    | Device of device: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Device _ -> deviceUsage + " Every stage, pseudo-labelling, evaluation and the classification pretraining of the grid run there; not part of run names."
            | Plan _ -> "run a written plan (results/<profile>/plan.json, which the grid, --list and --list-keys write) instead of a profile: its cells' complete stage configs, as cluster tasks and worker processes run them. Takes no option that shapes cells."
            | Variant _ -> "run only the label-efficiency study with this contrastive loss (within-image, cross-image or batch) into results/<profile>-<variant>."
            | Steps _ -> "cap every stage (and the classification pretraining) at this many steps (warm-up at most a quarter of a stage's steps, as always): a smoke run of a paper profile, a short study."
            | Profile _ -> "quick (tiny, CI), default (the label-efficiency study on the embedded scenes at 10 and 100 labels, 5 and 9 seeds), default-all (the same with all 2,000 scenes labelled, 3 seeds), ablations (the paper's other studies on them, 1 seed), peers (the peers' loss options against cross-entropy and the paper's loss at 10 and 100 labels, the default seeds; docs/loss.md), folder (the label-efficiency study on your own folder dataset, needs --data-root), folder-peers (the peers' options beside it at its lowest label count, its seeds), voc or cityscapes (paper scale, GPU); default-regime / folder-regime: the regime map (label count x stem x step budget, seed 0) of default (10, 100 and 2,000 labels) / folder."
            | Dataset _ -> "the dataset kind of the profile's runs (default: the profile's own): " + datasetUsage
            | Data_Root _ -> "dataset root for the folder/voc/cityscapes profiles (or a Fashion-MNIST folder for quick/default)."
            | Fractions _ -> "folder profile: labelled images as fractions of the training split, e.g. --fractions 1/16 1/8 1/4 all (the default)."
            | Crop _ -> "folder profile: training crop in pixels (default 128)."
            | Resize _ -> "folder profile: working resolution, images and masks resized by this factor for training and scoring (default 1)."
            | Val_Split _ -> "folder profile: split checked during training (learning curves, best checkpoint; default val)."
            | Eval_Split _ -> "folder profile: split the final models are scored on (default val; with the validation split itself the final checkpoint is scored, not the best)."
            | Seeds _ -> "folder profile: training seeds of every cell (default 0 1 2); a regime map (<profile>-regime): its seeds (default 0)."
            | Labelled _ -> "labelled-image counts of the label-efficiency study (paper profiles; e.g. --labelled 2 4 on the shared samples)."
            | Output _ -> "results folder (default results/<profile>): rows/, results.md, results.csv, charts."
            | Runs _ -> "folder for the training runs (default runs/<profile>)."
            | List -> "write the plan (results/<profile>/plan.json), print one command per cell that runs it from the plan (for a cluster job array) and exit."
            | List_Keys -> "write the plan (results/<profile>/plan.json), print one cell key per line (what --cell takes with --plan; for a cluster job array) and exit."
            | Wave _ -> "with --list or --list-keys: only the cells of this wave (1, 2, ...; none past the last). On a shared runs folder, run the waves one after the other, each wave's cells at the same time: a wave trains no stage twice, and later waves only read the stages they share with earlier ones."
            | Cells _ -> "restrict the grid to these cells (keys as --list-keys prints them), for every other option, the report included."
            | Cell _ -> "run only the cell with this key (see --list-keys), from --plan or the profile; results from several machines merge by copying rows/."
            | Force -> "redo cells even when their results exist (their run folders are deleted first)."
            | Jobs _ -> "cells trained at the same time, each in its own worker process (default: on the CPU one per core, at most one per 2 GB of free memory, each with cores/jobs libtorch threads unless CONTRASTSEG_THREADS is set; on a GPU 1). --jobs 1 trains them one after the other in this process. The thread count changes float sums, so rows trained with another --jobs can differ slightly."
            | Report_Only -> "only rebuild results.md, results.csv and the charts from the rows stored in the folder (no run folders needed); --plan <folder>/plan.json --report-only rebuilds a copied results folder byte for byte."
            | Set _ -> "override a setting of every stage, e.g. --set Data.Workers=1 (repeatable)."

/// A label fraction as typed: "1/16", "0.25" or "all".
let parseFraction (text: string) =
    let inv = Globalization.CultureInfo.InvariantCulture
    let number (t: string) =
        match Double.TryParse(t, Globalization.NumberStyles.Float, inv) with
        | true, v -> v
        | _ -> raise (ConfigException(sprintf "--fractions: '%s' is not a fraction (use e.g. 1/16, 0.25 or all)" text, "--fractions"))
    match text.Trim().ToLowerInvariant() with
    | "all" -> 1.0
    | t when t.Contains '/' -> let parts = t.Split('/') in number parts.[0] / number parts.[1]
    | t -> number t

let profileOf (r: ParseResults<AblationArgs>) =
    let requested = r.GetResult(Profile, "default")
    // `<profile>-regime`: the regime map over that profile's label counts; `folder-peers`: the peers' options on a folder.
    let suffix = [ "-regime"; "-peers" ] |> List.tryFind (fun s -> requested.EndsWith(s, StringComparison.Ordinal))
    let regime, peersOfFolder = suffix = Some "-regime", suffix = Some "-peers"
    let name = match suffix with Some s -> requested.Substring(0, requested.Length - s.Length) | None -> requested
    if peersOfFolder && name <> "folder" then
        raise (ConfigException(sprintf "profile '%s': the peers' options are studied by peers (the embedded scenes) and folder-peers (your folder dataset)" requested, "--profile"))
    match r.TryGetResult Steps with
    | Some n when n < 1 -> raise (ConfigException(sprintf "must be a positive number of steps, got %d" n, "--steps"))
    | _ -> ()
    match r.TryGetResult Labelled with
    | Some counts when counts |> List.exists (fun n -> n < 1) ->
        raise (ConfigException(sprintf "labelled-image counts must be >= 1, got %s" (String.Join(" ", counts)), "--labelled"))
    | _ -> ()
    // The ablations and regime maps share stages with their study (e.g. distortions on = its 10-scene runs): same runs folder.
    let runs = r.GetResult(Runs, Path.Combine("runs", (if name = "ablations" || name = "default-all" || name = "peers" then "default" else name)))
    let needRoot () =
        match r.TryGetResult Data_Root with
        | Some root -> root
        | None -> raise (ConfigException(sprintf "the %s profile needs --data-root" name, "--data-root"))
    let p =
        match name with
        | "quick" -> quick runs
        | "default" -> defaultProfile runs
        | "default-all" -> defaultAllProfile runs
        | "ablations" -> ablationsProfile runs
        | "peers" -> peersProfile runs
        | "voc" -> voc runs (needRoot ()) (r.GetResult(Labelled, [ 2118; 5295; 10582 ]))
        | "cityscapes" -> cityscapes runs (needRoot ()) (r.GetResult(Labelled, [ 372; 744; 1488; 2975 ]))
        | "folder" ->
            let d = folderDefaults (needRoot ())
            folderProfile runs
                { d with
                    Fractions = (match r.TryGetResult Fractions with Some fs -> fs |> List.map parseFraction | None -> d.Fractions)
                    Seeds = r.GetResult(Seeds, d.Seeds)
                    Crop = r.GetResult(Crop, d.Crop)
                    Resize = r.GetResult(Resize, d.Resize)
                    ValSplit = r.GetResult(Val_Split, d.ValSplit)
                    EvalSplit = r.GetResult(Eval_Split, d.EvalSplit) }
        | other -> raise (ConfigException(sprintf "profile '%s' is unknown: use quick, default, default-all, ablations, peers, folder, voc or cityscapes (or default-regime, folder-regime, folder-peers)" requested, "--profile"))
    let p = if peersOfFolder then peersOf p else p
    let p =
        match regime, name with
        | false, _ -> p
        // A regime map is seed 0 unless --seeds asks for more (a point's spread, e.g. the 3x budget at one count).
        | true, "default" -> defaultRegime runs (r.GetResult(Seeds, [ 0 ]))
        | true, ("folder" | "quick") -> regimeOfSeeds p (r.GetResult(Seeds, [ 0 ]))
        | true, _ -> raise (ConfigException(sprintf "profile '%s': regime maps exist for default, folder and quick" requested, "--profile"))
    if name <> "folder" then
        for flag, given in [ "--fractions", r.Contains Fractions; "--crop", r.Contains Crop; "--resize", r.Contains Resize; "--seeds", r.Contains Seeds && not regime; "--eval-split", r.Contains Eval_Split; "--val-split", r.Contains Val_Split ] do
            if given then raise (ConfigException(sprintf "%s belongs to the folder profile; with --profile %s use --set (e.g. --set Data.Crop=96)" flag name, flag))
    let edit assignments (p: Profile) = { p with Defaults = p.Defaults.WithBase(ConfigOverrides.Apply(p.Defaults.Base, assignments)) }
    let p =
        match name, r.TryGetResult Data_Root with
        | ("quick" | "default" | "default-all" | "ablations" | "peers"), Some root -> p |> edit [ "Data.Root=" + root ]
        | _ -> p
    let p = p |> edit (dataAssignments (r.TryGetResult Dataset) None) |> edit (r.GetResults Set) |> edit (deviceAssignments (r.TryGetResult AblationArgs.Device))
    let p =
        match r.TryGetResult Steps with
        | Some n -> { p with Defaults = p.Defaults.WithStepCap n }
        | None -> p
    let p =
        match r.TryGetResult Variant with
        | None -> p
        | Some v ->
            match [ ContrastiveVariant.WithinImage; ContrastiveVariant.CrossImage; ContrastiveVariant.Batch ] |> List.tryFind (fun x -> variantSlug x = v) with
            | Some x -> labelEfficiencyWith x p
            | None -> raise (ConfigException(sprintf "--variant '%s' is unknown: use within-image, cross-image or batch" v, "--variant"))
    let p =
        match r.TryGetResult Cells with
        | None -> p
        | Some keys ->
            let known = p.Cells |> List.map (fun c -> c.Key) |> Set.ofList
            match keys |> List.filter (known.Contains >> not) with
            | [] -> { p with Cells = p.Cells |> List.filter (fun c -> List.contains c.Key keys) }
            | unknown -> raise (ConfigException(sprintf "no cell %s in profile %s (see --list-keys)" (String.Join(", ", unknown |> List.map (sprintf "'%s'"))) p.Name, "--cells"))
    p.Defaults.Base.Validate() |> ignore
    p

/// Whether an option shapes a study's cells (with `--plan` the plan file holds what it would say).
let private shapesCells = function
    | Profile _ | Dataset _ | Data_Root _ | Fractions _ | Crop _ | Resize _ | Eval_Split _ | Val_Split _ | Seeds _ | Labelled _
    | Runs _ | Cells _ | Steps _ | Variant _ | Set _ | Device _ -> true
    | _ -> false

/// An option as typed: Data_Root -> --data-root.
let private flagOf (a: AblationArgs) =
    let case, _ = Reflection.FSharpValue.GetUnionFields(a, typeof<AblationArgs>)
    "--" + case.Name.ToLowerInvariant().Replace('_', '-')

/// The plan an ablations command runs and the result store it writes: `--plan` read as written, or the profile's plan,
/// written to the store's plan.json (before anything trains, so workers and cluster tasks read what this process planned).
let private planOf (r: ParseResults<AblationArgs>) =
    match r.TryGetResult Plan with
    | Some file ->
        match r.GetAllResults() |> List.filter shapesCells |> List.map flagOf |> List.distinct with
        | [] -> ()
        | flags ->
            raise (ConfigException(sprintf "%s shape a study's cells, which the plan %s holds: give either --plan or the options that make one" (String.Join(", ", flags)) file, flags.Head))
        let plan = StudyPlan.Read file
        plan, ResultStore(r.GetResult(Output, Path.GetDirectoryName(Path.GetFullPath file)))
    | None ->
        let p = profileOf r
        let plan = Grid.plan p
        let store = ResultStore(r.GetResult(Output, Path.Combine("results", p.Name)))
        plan.Write(Path.Combine(store.Root, StudyPlan.FileName))
        plan, store

let ablations (argv: string[]) =
    guard "ablations" (fun () ->
        let r = parse<AblationArgs> "ablations" argv
        let plan, store = planOf r
        let planFile = Path.Combine(store.Root, StudyPlan.FileName)
        // Logged to ablations.log with the cells it trains; results.md does not name it (a rebuilt report is the same file).
        let command = "dotnet fsi scripts/ablations.fsx -- " + String.Join(" ", argv)
        let listed () =
            match r.TryGetResult Wave with
            | None -> List.ofSeq plan.Cells
            | Some w when w < 1 -> raise (ConfigException(sprintf "waves are numbered from 1, got %d" w, "--wave"))
            | Some w -> Executor.waves plan |> List.filter (fun (_, wave) -> wave = w) |> List.map fst
        if r.Contains Wave && not (r.Contains List || r.Contains List_Keys) then
            raise (ConfigException("--wave selects what --list or --list-keys prints; a cell runs with --plan <plan.json> --cell <key>", "--wave"))
        if r.Contains List && r.Contains List_Keys then
            raise (ConfigException("use --list (commands) or --list-keys (keys), not both", "--list-keys"))
        if r.Contains List_Keys then
            for c in listed () do printfn "%s" c.Key
            0
        elif r.Contains List then
            let quote (a: string) = if a.Contains ' ' then "\"" + a + "\"" else a
            for c in listed () do printfn "dotnet fsi scripts/ablations.fsx -- --plan %s --cell %s" (quote planFile) c.Key
            0
        else
            let opts = { Runner.Force = r.Contains Force; Runner.Console = Console.Out }
            let clock = Stopwatch.StartNew()
            let cells =
                match r.TryGetResult Cell with
                | Some key -> [ plan.Cell key ]
                | None -> if r.Contains Report_Only then [] else List.ofSeq plan.Cells
            // A failed cell does not stop the grid (see Executor.runAllWith): failures are listed and the exit code is 1.
            let single = (r.TryGetResult Cell).IsSome
            if single then Signals.followGrid Console.Error // a grid's worker (else a no-op) ends with its grid
            let reused = if r.Contains Force then Set.empty else cells |> List.filter (Runner.isReusable plan store) |> List.map (fun c -> c.Key) |> Set.ofList
            let toTrain = cells |> List.filter (fun c -> not (reused.Contains c.Key))
            Directory.CreateDirectory store.Root |> ignore
            // Shared: worker processes and cluster nodes append to the same log, a line at a time.
            use log = new Executor.SharedLogWriter(Path.Combine(store.Root, "ablations.log"))
            let progress = Executor.GridProgress(Console.Out, log, cells.Length, (fun () -> Executor.pendingSteps toTrain))
            if not cells.IsEmpty then
                progress.Line(sprintf "[ablations] %s: profile %s, %d cells; %d reused from %s (--force retrains them), %d to train (%d optimiser steps left)"
                                      command plan.Profile cells.Length reused.Count (Path.Combine(store.Root, "rows")) toTrain.Length progress.StartSteps)
            let jobs =
                match r.TryGetResult Jobs with
                | Some j when j < 1 -> raise (ConfigException(sprintf "--jobs must be at least 1, got %d" j, "--jobs"))
                | Some j -> j
                | None -> Executor.defaultJobs plan.Device
            let jobs = min jobs toTrain.Length
            // Worker processes: libtorch's global generator (weights, dropout) cannot be shared by two cells in one process.
            let workerFailures =
                if single || jobs < 2 then []
                else
                    if r.Contains Force then
                        for c in toTrain do
                            Runner.deleteRuns c
                            if store.Has c.Key then File.Delete(store.RowPath c.Key)
                    let dll = typeof<Executor.GridProgress>.Assembly.Location
                    let own = String.IsNullOrEmpty(Environment.GetEnvironmentVariable "CONTRASTSEG_THREADS")
                    let threads = max 1 (Environment.ProcessorCount / jobs)
                    // A worker runs its cell from the plan file alone: nothing of this command's options is re-derived.
                    let start (c: PlannedCell) =
                        let info = ProcessStartInfo("dotnet")
                        for a in [ dll; "ablations"; "--plan"; planFile; "--output"; store.Root; "--cell"; c.Key ] do info.ArgumentList.Add a
                        if own then info.Environment.["CONTRASTSEG_THREADS"] <- string threads
                        info.Environment.[Signals.gridVariable] <- string Environment.ProcessId
                        info
                    progress.Line(sprintf "[ablations] %d worker processes, %s libtorch thread(s) each" jobs
                                          (if own then string threads else "CONTRASTSEG_THREADS = " + Environment.GetEnvironmentVariable "CONTRASTSEG_THREADS"))
                    Executor.runWorkers progress Console.Out jobs start (fun c -> store.Read c.Key) (Executor.jobPlan plan toTrain)
            let failed = workerFailures |> List.map fst |> Set.ofList
            let reused = if jobs < 2 then reused else cells |> List.filter (Runner.isReusable plan store) |> List.map (fun c -> c.Key) |> Set.ofList
            let failures =
                if single then
                    cells |> List.iter (Runner.runCell plan store opts >> ignore)
                    []
                else
                    workerFailures
                    @ Executor.runAllWith progress Console.Error (fun c -> reused.Contains c.Key) (Runner.runCell plan store opts)
                          (cells |> List.filter (fun c -> not (failed.Contains c.Key)))
            if not single then Report.write plan store Console.Out
            // A `--cell` (a worker process's or cluster task's cell) writes no report.
            if single then progress.Line(sprintf "[ablations] --cell %s in %.1f min" (String.Join(", ", cells |> List.map (fun c -> c.Key))) clock.Elapsed.TotalMinutes)
            else progress.Line(sprintf "[ablations] %d cells and the report in %.1f min" cells.Length clock.Elapsed.TotalMinutes)
            if failures.IsEmpty then 0
            else
                eprintfn "[ablations] %d of %d cells failed (the report holds the others):" failures.Length cells.Length
                for key, message in failures do eprintfn "  %s: %s" key message
                1)

// ------------------------------------------------------------------------------- data utilities

/// The datasets validate-data scans (the generated scenes have no files).
let private validatable = String.Join(", ", DatasetRegistry.All |> Seq.filter (fun k -> not (isNull k.Validate)) |> Seq.map (fun k -> k.Name))

type ValidateArgs =
    | [<Mandatory>] Dataset of kind: string
    | [<Mandatory>] Root of path: string
    | Split of name: string
    | Min_Size of pixels: int
    | Resize of factor: float
    | Max_Image_Pixels of pixels: int
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Dataset _ -> validatable + "."
            | Root _ -> "dataset root."
            | Split _ -> "split (list) to check (default: train)."
            | Min_Size _ ->
                sprintf "smallest image side the model reads, its output stride (default %d: the cpu preset's model; 16 for the voc and cityscapes presets)."
                    DatasetRegistry.DefaultMinimum.Side
            | Resize _ -> "the run's Data.Resize: sizes are checked as the run loads the images (default 1)."
            | Max_Image_Pixels _ ->
                sprintf "the most pixels an image or mask may have, as Data.MaxImagePixels for training (default %d = 8192x8192, at most %d)."
                    ContrastSeg.Data.PixelLimit.Default ContrastSeg.Data.PixelLimit.Max

/// The image size `validate-data` checks against: `--min-size` (default: the cpu preset's model) after `--resize`.
let private validationMinimum (r: ParseResults<ValidateArgs>) =
    let resize = r.GetResult(ValidateArgs.Resize, 1.0)
    if not (resize >= TrainConfig.MinResize && resize <= TrainConfig.MaxScale) then
        raise (ConfigException(sprintf "--resize %g is invalid: it must be in [%g, %g], as Data.Resize" resize TrainConfig.MinResize TrainConfig.MaxScale, "--resize"))
    match r.TryGetResult ValidateArgs.Min_Size with
    | Some n when n < 1 -> raise (ConfigException(sprintf "--min-size %d is invalid: at least 1 pixel" n, "--min-size"))
    | Some n -> ContrastSeg.Data.MinimumImageSize(n, sprintf "--min-size %d" n, resize)
    | None -> let d = DatasetRegistry.DefaultMinimum in ContrastSeg.Data.MinimumImageSize(d.Side, d.Why, resize)

/// Scans a dataset and reports every problem in one pass (exit 1 when there is any).
let validateData (argv: string[]) =
    guard "validate-data" (fun () ->
        let r = parse<ValidateArgs> "validate-data" argv
        let root = r.GetResult Root
        let split = r.GetResult(Split, "train")
        let minimum = validationMinimum r
        let maxPixels = r.GetResult(Max_Image_Pixels, ContrastSeg.Data.PixelLimit.Default)
        if maxPixels < 1 || maxPixels > ContrastSeg.Data.PixelLimit.Max then
            raise (ConfigException(sprintf "--max-image-pixels %d: use 1 to %d" maxPixels ContrastSeg.Data.PixelLimit.Max, "--max-image-pixels"))
        let report =
            let name = r.GetResult Dataset
            match DatasetRegistry.Find name with
            | null -> raise (ConfigException(sprintf "dataset '%s' is unknown: use %s" name validatable, "--dataset"))
            | kind when isNull kind.Validate -> raise (ConfigException(sprintf "dataset '%s' is generated, it has no files to validate: use %s" name validatable, "--dataset"))
            | kind -> kind.Validate.Invoke(root, split, maxPixels, minimum)
        printfn "%O" report
        if report.IsValid then 0 else 1)

type SbdArgs =
    | [<Mandatory>] Sbd of folder: string
    | [<Mandatory>] Voc of root: string
    | Overwrite
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Sbd _ -> "the SBD 'dataset' folder (with cls/*.mat, train.txt, val.txt)."
            | Voc _ -> "VOCdevkit/VOC2012: masks go to SegmentationClassAug/, the list to ImageSets/Segmentation/train_aug.txt."
            | Overwrite -> "rewrite PNGs that exist."

/// Converts SBD's MATLAB masks to index PNGs and writes the 10,582-id train_aug list.
let convertSbd (argv: string[]) =
    guard "convert-sbd" (fun () ->
        let r = parse<SbdArgs> "convert-sbd" argv
        let converted = ContrastSeg.Data.SbdConverter.Convert(r.GetResult Sbd, r.GetResult Voc, null, r.Contains Overwrite)
        printfn "wrote %d masks (%d existed) to %s" converted.Written converted.Skipped converted.OutputFolder
        let ids = ContrastSeg.Data.SbdConverter.WriteTrainAugList(r.GetResult Sbd, r.GetResult Voc, null)
        printfn "train_aug: %d ids" ids.Count
        0)

type ExportArgs =
    | [<Mandatory>] Output of folder: string
    | Train of count: int
    | Val of count: int
    | Test of count: int
    | Data_Root of path: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Output _ -> "folder to write (images/, masks/, classes.txt, splits/train.txt, val.txt, test.txt)."
            | Train _ -> "training scenes to write (default 200)."
            | Val _ -> "validation scenes (default 50)."
            | Test _ -> "test scenes (default 50)."
            | Data_Root _ -> "a Fashion-MNIST folder (default: the Debian package if installed, else the repo's subset)."

/// Writes embedded scenes as a folder dataset: a worked example of your own data that needs no download.
let exportFolder (argv: string[]) =
    guard "export-folder" (fun () ->
        let r = parse<ExportArgs> "export-folder" argv
        let output = r.GetResult ExportArgs.Output
        let source = ContrastSeg.Data.FashionMnistSource.Open(r.TryGetResult ExportArgs.Data_Root |> Option.toObj)
        let counts = [ ContrastSeg.Data.SceneSplit.Train, "train", r.GetResult(Train, 200)
                       ContrastSeg.Data.SceneSplit.Val, "val", r.GetResult(Val, 50)
                       ContrastSeg.Data.SceneSplit.Test, "test", r.GetResult(Test, 50) ]
        for split, name, n in counts do
            if n < 1 then raise (ConfigException(sprintf "--%s %d: write at least one scene" name n, "--" + name))
            let scenes = ContrastSeg.Data.FashionMnistScenes(ContrastSeg.Data.FashionMnistSceneOptions(Split = split, TrainScenes = n, ValScenes = n, TestScenes = n), source)
            let ids = ContrastSeg.Data.FolderWriter.WriteSplit(scenes, output, name, n)
            printfn "%s: %d scenes -> %s" name ids.Count (Path.Combine(output, "splits", name + ".txt"))
        printfn "wrote the folder dataset %s (source: %s)" output source.Description
        0)

/// `numerics`: what this process computes with (CONTRASTSEG_NUMERICS and the instruction levels libtorch, oneDNN and MKL
/// run), as one JSON object on standard output; the first line on standard error says it in words.
let numerics (argv: string[]) =
    guard "numerics" (fun () ->
        let argv = if argv.Length > 0 && argv.[0] = "--" then argv.[1..] else argv // as parse does
        if argv |> Array.exists (fun a -> a = "--help" || a = "-h") then
            printfn "USAGE: numerics\n\nPrints this process's numerics mode and what is in force (CPU, ATen capability, oneDNN, MKL branch, threads, versions) as JSON.\nCONTRASTSEG_NUMERICS=portable (default) pins libtorch to AVX2 and one thread so numbers are the same on every x86-64 CPU; native uses the CPU's best."
            0
        elif argv.Length > 0 then
            eprintfn "numerics: takes no arguments, got '%s' (--help for usage; CONTRASTSEG_NUMERICS chooses the mode)" (String.Join(" ", argv))
            2
        else
            let p = ContrastSeg.Runtime.Provenance.Current()
            eprintfn "%O" ContrastSeg.Runtime.TorchRuntime.Status.Numerics
            printfn "%s" (Text.Json.JsonSerializer.Serialize({| provenance = p; numerics_class = p.NumericsClass |}))
            0)

/// The CLI reference (docs/reference/cli.md): every command's usage as its parser prints it for --help.
let cliReference () =
    let sb = Text.StringBuilder()
    sb.AppendLine("# Command-line reference\n")
      .AppendLine("Every command as `--help` prints it. The scripts forward to them (`dotnet fsi scripts/<command>.fsx -- ...`);")
      .AppendLine("the Lab executable takes the command first (`dotnet ContrastSeg.Lab.dll <command> ...`). Generated from the")
      .AppendLine("parsers by `dotnet fsi scripts/reference.fsx`; do not edit.") |> ignore
    let section (name: string) (usage: string) =
        sb.AppendLine().AppendLine("## " + name).AppendLine().AppendLine("```text").AppendLine(usage.TrimEnd()).AppendLine("```") |> ignore
    let usage (parser: ArgumentParser<'T>) = parser.PrintUsage(usageStringCharacterWidth = 110)
    section "train" (usage (ArgumentParser.Create<TrainArgs>(programName = "train")))
    section "evaluate" (usage (ArgumentParser.Create<EvalArgs>(programName = "evaluate")))
    section "predict" (usage (ArgumentParser.Create<EvalArgs>(programName = "predict")))
    section "pseudolabel" (usage (ArgumentParser.Create<PseudoArgs>(programName = "pseudolabel")))
    section "ablations" (usage (ArgumentParser.Create<AblationArgs>(programName = "ablations")))
    section "validate-data" (usage (ArgumentParser.Create<ValidateArgs>(programName = "validate-data")))
    section "convert-sbd" (usage (ArgumentParser.Create<SbdArgs>(programName = "convert-sbd")))
    section "export-folder" (usage (ArgumentParser.Create<ExportArgs>(programName = "export-folder")))
    sb.ToString()

/// The generated references and where they are committed: (file under docs/reference, text).
let references () =
    [ "settings.md", ContrastSeg.Training.SettingsReference.Markdown()
      "cli.md", cliReference () ]

/// `reference`: writes docs/reference/settings.md and cli.md under `--root` (default: the current folder).
let reference (argv: string[]) =
    guard "reference" (fun () ->
        if argv |> Array.exists (fun a -> a = "--help" || a = "-h") then
            printfn "USAGE: reference [--root <repository>]\n\nWrites docs/reference/settings.md and docs/reference/cli.md, generated from the settings and the command-line parsers."
            0
        else
            let root =
                match argv |> Array.filter (fun a -> a <> "--") |> List.ofArray with
                | [] -> "."
                | [ "--root"; r ] -> r
                | other -> raise (ConfigException(sprintf "unexpected arguments %s (reference takes --root <repository>)" (String.Join(" ", other)), "reference"))
            let folder = Path.Combine(root, "docs", "reference")
            Directory.CreateDirectory folder |> ignore
            for name, text in references () do
                File.WriteAllText(Path.Combine(folder, name), text)
                printfn "wrote %s" (Path.Combine(folder, name))
            0)

/// `results-page`: rewrites the generated results blocks of README.md and docs/results.md under `--root` (default: the
/// current folder) from docs/results/<profile>/rows and plan.json.
let resultsPage (argv: string[]) =
    guard "results-page" (fun () ->
        if argv |> Array.exists (fun a -> a = "--help" || a = "-h") then
            printfn "USAGE: results-page [--root <repository>]\n\nRewrites the results tables between the <!-- BEGIN results:<profile> --> and <!-- END ... --> comments of %s from docs/results/<profile>/rows and plan.json; the text outside them is left as it is." (String.Join(" and ", ResultsPage.pages))
            0
        else
            let root =
                match argv |> Array.filter (fun a -> a <> "--") |> List.ofArray with
                | [] -> "."
                | [ "--root"; r ] -> r
                | other -> raise (ConfigException(sprintf "unexpected arguments %s (results-page takes --root <repository>)" (String.Join(" ", other)), "results-page"))
            for page, text in ResultsPage.generated root do
                let path = Path.Combine(root, page)
                if File.ReadAllText path <> text then
                    File.WriteAllText(path, text)
                    printfn "rewrote %s" path
                else printfn "%s is current" path
            0)

/// `docs-site`: stages the documentation site's input, or checks the links of a built site (eng/site.sh runs both around fsdocs).
let docsSite (argv: string[]) =
    guard "docs-site" (fun () ->
        let usage = "USAGE: docs-site stage <folder> [--notebooks <executed notebooks>] [--root <repository>]\n       docs-site check <built site> [--root <where it is served, default />]\n\nstage: docs/, README.md as the home page and the notebooks as pages (with outputs from their executed copies) into <folder>, the input of `dotnet fsdocs build`.\ncheck: every relative link of the built site leads to a file (exit code 1 and each broken link named otherwise)."
        match argv |> Array.filter (fun a -> a <> "--") |> List.ofArray with
        | a :: _ when a = "--help" || a = "-h" -> printfn "%s" usage; 0
        | "stage" :: folder :: options ->
            let rec parse (notebooks, root) = function
                | [] -> notebooks, root
                | "--notebooks" :: n :: rest -> parse (Some n, root) rest
                | "--root" :: r :: rest -> parse (notebooks, r) rest
                | other -> raise (ConfigException(sprintf "unexpected arguments %s (%s)" (String.Join(" ", other)) usage, "docs-site"))
            let notebooks, root = parse (None, ".") options
            DocsSite.stage root folder notebooks
            printfn "staged the site's input in %s%s" folder (match notebooks with Some n -> sprintf " (notebooks executed in %s)" n | None -> " (notebooks without outputs)")
            0
        | "check" :: site :: options ->
            let root = match options with [] -> "/" | [ "--root"; r ] -> r | other -> raise (ConfigException(sprintf "unexpected arguments %s\n%s" (String.Join(" ", other)) usage, "docs-site"))
            match DocsSite.brokenLinks site root with
            | [] -> printfn "docs-site: every relative link of %s leads to a file" site; 0
            | broken ->
                for page, link in broken do eprintfn "docs-site: broken link in %s: %s" page link
                eprintfn "docs-site: %d broken link(s)" broken.Length
                1
        | other -> raise (ConfigException(sprintf "unexpected arguments %s\n%s" (String.Join(" ", other)) usage, "docs-site")))

let usage () =
    printfn "ContrastSeg Lab: train | evaluate | predict | pseudolabel | ablations | validate-data | convert-sbd | export-folder | numerics | reference | results-page | docs-site  (each with --help)"

let main (argv: string[]) =
    match argv |> List.ofArray with
    | "train" :: rest -> train (Array.ofList rest)
    | "evaluate" :: rest -> evaluate (Array.ofList rest)
    | "predict" :: rest -> predict (Array.ofList rest)
    | "pseudolabel" :: rest -> pseudolabel (Array.ofList rest)
    | "ablations" :: rest -> ablations (Array.ofList rest)
    | "validate-data" :: rest -> validateData (Array.ofList rest)
    | "convert-sbd" :: rest -> convertSbd (Array.ofList rest)
    | "export-folder" :: rest -> exportFolder (Array.ofList rest)
    | "numerics" :: rest -> numerics (Array.ofList rest)
    | "reference" :: rest -> reference (Array.ofList rest)
    | "results-page" :: rest -> resultsPage (Array.ofList rest)
    | "docs-site" :: rest -> docsSite (Array.ofList rest)
    | _ -> usage (); 2
