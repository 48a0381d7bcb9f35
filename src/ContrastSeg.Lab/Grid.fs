/// The ablation grid's studies: which cells each profile has, and what they share (the study request). The
/// `StudyPlanner` of the C# core turns a profile into the complete configs of every stage (`plan`).
/// Notebook-safe (FSharp.Core 10.0 API, the C# core only).
module ContrastSeg.Lab.Grid

open System
open System.IO
open ContrastSeg.Losses
open ContrastSeg.Models
open ContrastSeg.Studies
open ContrastSeg.Training

/// A named grid: what its cells share, its cells, and what its report shows.
type Profile =
    { Name: string
      Description: string
      /// Data, model, step budget, learning rates, classification and pseudo-label settings of every cell.
      Defaults: StudyDefaults
      Cells: StudyCell list
      /// Feature-space plot: labelled count and points per class, or None.
      FeatureSpace: FeatureSpaceRequest option
      /// Split the final models are scored on ("test" for the scenes; "val" where test labels are not public).
      EvalSplit: string }

/// The profile written out: every cell's complete stage configs (what workers, clusters and the report read).
let plan (p: Profile) =
    StudyPlanner.Plan(p.Name, p.Description, p.Defaults, p.Cells, Option.toObj p.FeatureSpace, p.EvalSplit)

/// A cell of the grid (the profile's budget and recipe settings unless given).
let cell study setting meth seed (labelled: int option) recipe =
    StudyCell(study, setting, meth, seed, Option.toNullable labelled, recipe)

/// `c` with a step budget of its own.
let withBudget (budget: StepBudget) (c: StudyCell) =
    StudyCell(c.Study, c.Setting, c.Method, c.Seed, c.Labelled, c.Recipe, c.Capacity, budget, c.Overrides)

let private cells experiment seeds (rows: (string * string * int option * CellRecipe) list) =
    [ for seed in seeds do
        for setting, meth, labelled, recipe in rows -> cell experiment setting meth seed labelled recipe ]

let private ce, con = "cross-entropy", "contrastive+finetune"

/// A schedule that grows with the label count: (up to this many labelled images, budget), ascending. Runs with
/// more labels need more steps to converge (CE on the embedded scenes is within 1 mIoU of its plateau after
/// ~300 steps with 10 scenes, ~1,000 with 100 and ~3,000 with all 2,000), so one budget for every count
/// measures convergence speed, not label efficiency.
type LabelSchedule = (int * StepBudget) list

/// The budget of the first schedule entry that covers `labelled` (the last entry beyond it).
let budgetAt (schedule: LabelSchedule) (labelled: int) =
    match schedule |> List.tryFind (fun (upTo, _) -> labelled <= upTo) with
    | Some (_, b) -> b
    | None -> snd (List.last schedule)

/// What a preset (`TrainPresets.Get` of one name: stage, labelled count -> config) trains at `n` labels, per stage.
let presetBudget (preset: TrainingStage -> int option -> TrainConfig) (n: int) =
    let steps stage = (preset stage (Some n)).Optimizer.Steps
    StepBudget(steps TrainingStage.CrossEntropy, steps TrainingStage.Contrastive, steps TrainingStage.FineTune)

/// A preset's learning rates per stage (the same at every label count).
let presetRates (preset: TrainingStage -> int option -> TrainConfig) = StageRates.Of(fun stage -> preset stage None)

/// The label-efficiency study: cross-entropy against contrastive pretraining + fine-tuning (`variant`,
/// distortions on) at each label count, for each seed; `budget n` is the cells' step budget at n labels
/// (None: the profile's).
let labelEfficiencyGridWith (variant: ContrastiveVariant) (budget: int -> StepBudget option) (labelCounts: int list) (seeds: int list) =
    let recipe = CellRecipe.ContrastiveFineTune(variant, true)
    [ for seed in seeds do
        for n in labelCounts do
            for meth, r in [ ce, CellRecipe.CrossEntropy; con, recipe ] ->
                let c = cell "label-efficiency" (sprintf "labelled=%d" n) meth seed (Some n) r
                match budget n with Some b -> withBudget b c | None -> c ]

/// The label-efficiency study with the within-image loss (the paper's main recipe) at the profile's budget.
let labelEfficiencyGrid (labelCounts: int list) (seeds: int list) =
    labelEfficiencyGridWith ContrastiveVariant.WithinImage (fun _ -> None) labelCounts seeds

/// A stem as written in settings and names: imagenet, small.
let stemSlug (s: EncoderStem) = s.ToString().ToLowerInvariant()

/// The regime map: cross-entropy against contrastive pretraining + fine-tuning (`variant`, distortions on)
/// at every label count x capacity x step budget, the budgets at n labels being `budgetAt n` times each of
/// `multiples`. Budgets are equal per cell when the study's are. Settings read
/// "labelled=10,stem=small,width=0.25,steps=600" (CE steps).
let regimeGrid (variant: ContrastiveVariant) (labelCounts: int list) (capacities: ModelCapacity list) (budgetAt: int -> StepBudget) (multiples: int list) (seeds: int list) =
    let recipe = CellRecipe.ContrastiveFineTune(variant, true)
    [ for seed in seeds do
        for capacity in capacities do
            for k in multiples do
                for n in labelCounts do
                    let budget = (budgetAt n).Times k
                    let setting = sprintf "labelled=%d,stem=%s,width=%g,steps=%d" n (stemSlug capacity.Stem) capacity.WidthMultiplier budget.CrossEntropy
                    for meth, r in [ ce, CellRecipe.CrossEntropy; con, recipe ] ->
                        StudyCell("regime", setting, meth, seed, Nullable n, r, capacity, budget) ]

/// The paper's ablations on a profile's label counts (the lowest count for the one-setting ablations).
let paperGrid (labelCounts: int list) (seeds: int list) (ablationSeeds: int list) =
    let low = List.min labelCounts
    let lowName = sprintf "labelled=%d" low
    let within = CellRecipe.ContrastiveFineTune(ContrastiveVariant.WithinImage, true)
    [ yield! labelEfficiencyGrid labelCounts seeds
      yield! cells "distortions" ablationSeeds
                 [ "distortions=on", con, Some low, within
                   "distortions=off", con, Some low, CellRecipe.ContrastiveFineTune(ContrastiveVariant.WithinImage, false) ]
      yield! cells "loss-variant" ablationSeeds
                 [ "variant=within-image", con, Some low, within
                   "variant=cross-image", con, Some low, CellRecipe.ContrastiveFineTune(ContrastiveVariant.CrossImage, true)
                   "variant=batch", con, Some low, CellRecipe.ContrastiveFineTune(ContrastiveVariant.Batch, true) ]
      yield! cells "classification-pretraining" ablationSeeds
                 [ "init=scratch", ce, Some low, CellRecipe.CrossEntropy
                   "init=scratch", con, Some low, within
                   "init=classification", ce, Some low, CellRecipe.ClassificationInit false
                   "init=classification", con, Some low, CellRecipe.ClassificationInit true ]
      yield! cells "semi-supervised" ablationSeeds
                 [ lowName + ",pseudo=off", con, Some low, within
                   lowName + ",pseudo=on", con, Some low, CellRecipe.SemiSupervised within ] ]

/// A loss variant as written in settings and names: within-image, cross-image, batch.
let variantSlug (v: ContrastiveVariant) =
    match v with
    | ContrastiveVariant.WithinImage -> "within-image"
    | ContrastiveVariant.CrossImage -> "cross-image"
    | ContrastiveVariant.Batch -> "batch"
    | other -> string other

/// The label-efficiency study alone, with `variant` as the contrastive loss (the paper's main recipe is
/// within-image): profile `<name>-<variant>`, its own results folder, the same cross-entropy runs.
let labelEfficiencyWith (variant: ContrastiveVariant) (p: Profile) =
    let slug = variantSlug variant
    { p with
        Name = p.Name + "-" + slug
        Description = p.Description + sprintf "; label efficiency with the %s contrastive loss" slug
        Cells =
            p.Cells
            |> List.filter (fun c -> c.Study = "label-efficiency")
            |> List.map (fun c ->
                match c.Recipe with
                | :? ContrastiveFineTuneRecipe as r ->
                    StudyCell(c.Study, c.Setting, sprintf "contrastive(%s)+finetune" slug, c.Seed, c.Labelled,
                              CellRecipe.ContrastiveFineTune(variant, r.Distortion), c.Capacity, c.Budget, c.Overrides)
                | _ -> c) }

/// `quick`: the whole pipeline end to end on a tiny grid (CI; a few minutes on 2 cores).
let quick (runs: string) =
    { Name = "quick"
      Description = "every ablation at toy scale: proves the pipeline, not the method"
      Defaults =
        StudyDefaults(StudyBases.Quick runs, StepBudget(30, 20, 20), StageRates(0.03, 0.1, 0.03),
                      ClassificationPretrainingOptions(Steps = 30, BatchSize = 32), PseudoLabelOptions())
      Cells = paperGrid [ 8; 40 ] [ 0 ] [ 0 ]
      FeatureSpace = Some(FeatureSpaceRequest(8, 20))
      EvalSplit = "val" } // 64 scenes: the 500 test scenes took a third of the quick profile; toy numbers either way

/// The `cpu` preset, as profiles read presets.
let private cpuPreset stage (labelled: int option) = TrainPresets.Get("cpu", stage, null, Option.toNullable labelled)

/// The CPU-scale schedule of the embedded scenes per label count: the `cpu` preset's (TrainPresets.CpuSchedule, where
/// the measurements behind it are), each count's budget as the preset trains it.
let scenesSchedule : LabelSchedule = [ for struct (upTo, _) in TrainPresets.CpuSchedule -> upTo, presetBudget cpuPreset upTo ]

/// The contrastive loss of the scene studies: cross-image, which compares pixels of different scenes. The
/// within-image loss only contrasts the 2-5 classes that share a 64x64 scene and lost to CE from 100 labels up
/// (-10 and -28 mIoU); cross-image was ahead at 10 and 100 in the probes (docs/results, "label efficiency").
let scenesVariant = ContrastiveVariant.CrossImage

/// The CPU-scale study on the embedded scenes (`default`, `default-all`, `ablations`): the `cpu` preset's data, model,
/// schedule and learning rates; cells without a budget of their own train the schedule at 10 scenes.
let private scenesStudy (runs: string) name description cells featureSpace =
    let b = StudyBases.Scenes runs
    { Name = name
      Description = description
      Defaults = StudyDefaults(b, budgetAt scenesSchedule 10, presetRates cpuPreset, ClassificationPretrainingOptions(Steps = 1500), PseudoLabelOptions())
      Cells = cells
      FeatureSpace = featureSpace
      EvalSplit = DatasetRegistry.Get(b.Data.Dataset).EvalSplit } // the scenes' test split

let private scenesDescription =
    "Fashion-MNIST scenes 64x64 (no random rescaling), DeepLabV3+ ResNet-18 (width 0.25, small stem, OS 8), SGD + cosine, equal step budgets per label count"

/// The label-efficiency study on the embedded scenes: (label count, seeds) pairs, each count at its own schedule
/// (`scenesSchedule`), cross-image contrastive pretraining + fine-tuning against cross-entropy.
let private scenesLabelEfficiency (seedsPerCount: (int * int list) list) =
    [ for n, seeds in seedsPerCount do yield! labelEfficiencyGridWith scenesVariant (budgetAt scenesSchedule >> Some) [ n ] seeds ]

/// The seeds of the default study per label count, chosen from the paired spread measured under portable numerics
/// (docs/numerics.md; CE and contrastive share seed, subset and data order): at 10 scenes the paired difference's sd was
/// 0.2-1.0 mIoU across machines, so 5 pairs give a 95 % half-width of about 1.2 or less; at 100 scenes it was 2-5, and
/// 9 pairs (what fits the 45-minute budget on 2 cores) give about 2.3-3.8: the report prints the half-width reached.
let defaultSeeds = [ 10, [ 0 .. 4 ]; 100, [ 0 .. 8 ] ]

/// `default`: the label-efficiency study on the embedded Fashion-MNIST scenes at 10 and 100 labelled scenes
/// (`defaultSeeds`), scored on the test split with the best-validation checkpoints; the t-SNE of the 10-scene models.
/// All 2,000 labels are the second profile, `default-all` (its 3 pairs took 21 of the former study's 48 minutes).
let defaultProfile (runs: string) =
    scenesStudy runs "default" (scenesDescription + ", cross-image contrastive loss") (scenesLabelEfficiency defaultSeeds) (Some(FeatureSpaceRequest(10, 50)))

/// `default-all`: the same study with every training scene labelled (2,000), 3 seeds: where the claim is whether the
/// contrastive recipe costs anything when labels are plentiful. Its runs folder defaults to runs/default.
let defaultAllProfile (runs: string) =
    scenesStudy runs "default-all" (scenesDescription + ", cross-image contrastive loss, every training scene labelled") (scenesLabelEfficiency [ 2000, [ 0; 1; 2 ] ]) None

/// The label counts the scene studies measure (`default` and `default-all`): what the default regime map spans.
let scenesLabelCounts = [ 10; 100; 2000 ]

/// The recipe's settings the paper fixes and issue 11 asks to study, one at a time against the `cpu` preset's value
/// (the first of each list; temperature 0.07, resize 16, no projection BN, fine-tuning at CE's LR 0.1): temperature,
/// the loss's resize size relative to its feature map (the decoder's, at stride 4: 16x16 for a 64 crop, so 16 is the
/// map's own size and trains exactly what no resize (0) trains; 8 = half, as the paper's 65 is to its 129x129 map
/// of a 513 crop; 32 = 2x), projection-head BN, and the fine-tuning LR (0.03 is the paper's ratio 0.007 / 0.03
/// applied to CE's 0.1). Each experiment holds CE at the same budget as reference.
let recipeStudies : (string * (string * RecipeOverrides) list) list =
    [ "temperature", [ for t in [ 0.07; 0.1; 0.2; 0.5 ] -> sprintf "temperature=%g" t, RecipeOverrides(Temperature = Nullable t) ]
      "resize", [ for r in [ 16; 8; 32 ] -> sprintf "resize=%d" r, RecipeOverrides(ResizeTo = Nullable r) ]
      "projection-bn", [ for bn in [ false; true ] -> sprintf "projection-bn=%s" (if bn then "on" else "off"), RecipeOverrides(ProjectionBatchNorm = Nullable bn) ]
      "finetune-lr", [ for lr in [ 0.1; 0.03; 0.01 ] -> sprintf "finetune-lr=%g" lr, RecipeOverrides(FineTuneLearningRate = Nullable lr) ] ]

/// The recipe studies at `labelled` labels and `budget` (equal totals), contrastive `variant`: per experiment, CE
/// and each setting. Overrides equal to the profile's value leave the stage configs (and runs) the profile's.
let recipeGrid (variant: ContrastiveVariant) (budget: StepBudget) (labelled: int) (seeds: int list) =
    [ for seed in seeds do
        for experiment, settings in recipeStudies do
            let cell setting meth recipe overrides =
                StudyCell(experiment, sprintf "labelled=%d,%s" labelled setting, meth, seed, Nullable labelled, recipe, null, budget, overrides)
            yield cell "reference" ce CellRecipe.CrossEntropy RecipeOverrides.None
            for setting, overrides in settings -> cell setting con (CellRecipe.ContrastiveFineTune(variant, true)) overrides ]

/// `ablations`: the paper's other studies at the lowest label count of `default`, seed 0, with its schedule and
/// the budget-rule study (equal total steps against the paper's rule, `StepBudget.PaperRule`) at 10 and 100 scenes.
/// Its runs folder defaults to runs/default, so stages both profiles share are trained once.
let ablationsProfile (runs: string) =
    let paper = paperGrid [ 10 ] [ 0 ] [ 0 ] |> List.filter (fun c -> c.Study <> "label-efficiency")
    let rule =
        [ for n in [ 10; 100 ] do
            let equal = budgetAt scenesSchedule n
            for name, budget in [ "equal-total", equal; "paper", equal.PaperRule() ] ->
                StudyCell("budget-rule", sprintf "labelled=%d,rule=%s" n name, con, 0, Nullable n,
                          CellRecipe.ContrastiveFineTune(scenesVariant, true), null, budget) ]
    let recipe = [ for n in [ 10; 100 ] do yield! recipeGrid scenesVariant (budgetAt scenesSchedule n) n [ 0 ] ]
    scenesStudy runs "ablations" (scenesDescription + "; the paper's ablations at 10 labelled scenes, the budget rules and the recipe's settings at 10 and 100, seed 0") (paper @ rule @ recipe) None

/// The peers' options (issue 33, docs/loss.md) as rows beside cross-entropy and the paper's loss, scaled to the scenes
/// (16x16 loss maps, 11 classes, batch 8): (method, recipe, temperature or None, Contrastive.* settings). Per-class budgets
/// and the memory in the paper's two stages; the joint stage (CE + 0.1 x contrastive, CE's budget) alone, with
/// ContrastiveSeg's hard anchors, with its memory too, and with ReCo's regional contrast at ReCo's temperature 0.5.
let peersMethods : (string * CellRecipe * float option * string list) list =
    let twoStage = CellRecipe.ContrastiveFineTune(scenesVariant, true)
    let joint = CellRecipe.Joint scenesVariant
    let budgets = [ "Contrastive.AnchorsPerClass=16"; "Contrastive.MaxAnchors=256" ]
    let memory = [ "Contrastive.MemoryPixels=256"; "Contrastive.MemoryPixelsPerImage=10"; "Contrastive.MemoryRegions=64" ]
    let hard = budgets @ [ "Contrastive.HardAnchorFraction=0.5" ]
    [ "contrastive-per-class+finetune", twoStage, None, budgets
      "contrastive-memory+finetune", twoStage, None, memory
      "joint", joint, None, []
      "joint-hard-anchors", joint, None, hard
      "joint-hard-anchors+memory", joint, None, hard @ memory
      "joint-reco", joint, Some 0.5,
      [ "Contrastive.Form=Regional"; "Contrastive.AnchorsPerClass=64"; "Contrastive.RegionalNegatives=128"; "Contrastive.HardQueryThreshold=0.97" ] ]

/// The peers study at `labelled` labels and `budget`: cross-entropy, the paper's loss (the default study's cells, so the
/// same runs) and every `peersMethods` row, for each seed (paired: the same seed, subset and data order).
let peersGrid (budget: StepBudget) (labelled: int) (seeds: int list) =
    let setting = sprintf "labelled=%d" labelled
    [ for seed in seeds do
        let cell meth recipe overrides = StudyCell("peers", setting, meth, seed, Nullable labelled, recipe, null, budget, overrides)
        yield cell ce CellRecipe.CrossEntropy null
        yield cell con (CellRecipe.ContrastiveFineTune(scenesVariant, true)) null
        for meth, recipe, temperature, loss in peersMethods ->
            cell meth recipe (RecipeOverrides(Temperature = Option.toNullable temperature, Loss = ResizeArray loss)) ]

/// `peers`: the peers' options against cross-entropy and the paper's loss on the embedded scenes at 10 and 100 labelled
/// scenes, the default study's seeds and budgets. Its runs folder defaults to runs/default: the cross-entropy and paper cells
/// are the default study's runs, trained once.
let peersProfile (runs: string) =
    let cells = [ for n, seeds in defaultSeeds do yield! peersGrid (budgetAt scenesSchedule n) n seeds ]
    scenesStudy runs "peers" (scenesDescription + "; the peers' options (per-class anchors, hard anchors, class memory, ReCo) against cross-entropy and the cross-image loss at 10 and 100 labelled scenes") cells None

/// The capacities and budgets of the regime map at CPU scale: torchvision's stem against the small stem
/// (ResNet-18 width 0.25), and the study's budget at each label count against three times as many steps.
let regimeCapacities = [ ModelCapacity(EncoderStem.ImageNet, 0.25); ModelCapacity(EncoderStem.Small, 0.25) ]

let regimeMultiples = [ 1; 3 ]

/// The step budget a profile's label-efficiency cells train at `labelled` labels.
let studyBudget (p: Profile) (labelled: int) =
    p.Cells
    |> List.tryPick (fun c -> if c.Study = "label-efficiency" && c.Labelled = Nullable labelled && not (isNull c.Budget) then Some c.Budget else None)
    |> Option.defaultValue p.Defaults.Budget

/// The contrastive loss of a profile's label-efficiency cells.
let studyVariant (p: Profile) =
    p.Cells
    |> List.tryPick (fun c ->
        match c.Recipe with
        | :? ContrastiveFineTuneRecipe as r when c.Study = "label-efficiency" -> Some r.Variant
        | _ -> None)
    |> Option.defaultValue ContrastiveVariant.WithinImage

/// The label counts of a profile's label-efficiency cells, ascending.
let studyLabelCounts (p: Profile) =
    p.Cells |> List.choose (fun c -> if c.Study = "label-efficiency" then Option.ofNullable c.Labelled else None) |> List.distinct |> List.sort

/// A profile's peers study (`folder-peers`): the peers' options at its lowest label count, its label-efficiency budget
/// there and its seeds. The cross-entropy and paper cells are that profile's runs, trained once when both use the same
/// runs folder. The options keep the scenes' sizes (16 anchors per class, 256 per group, 256 + 64 memory entries per
/// class), which suit maps of the same order (a 64 crop at output stride 8 is 8x8).
let peersOf (p: Profile) =
    let n =
        match studyLabelCounts p with
        | [] -> raise (ConfigException(sprintf "profile '%s' has no label-efficiency cells to study the peers' options beside" p.Name, "--profile"))
        | lowest :: _ -> lowest
    let seeds = p.Cells |> List.filter (fun c -> c.Study = "label-efficiency" && c.Labelled = Nullable n) |> List.map (fun c -> c.Seed) |> List.distinct |> List.sort
    { p with
        Name = p.Name + "-peers"
        Description = p.Description + sprintf "; the peers' options (per-class anchors, hard anchors, class memory, ReCo) against cross-entropy and the cross-image loss at %d labelled" n
        Cells = peersGrid (studyBudget p n) n seeds
        FeatureSpace = None }

/// A profile's regime map: its label counts (those of its label-efficiency cells) x `regimeCapacities` x
/// `regimeMultiples` of its budget at each count, with its contrastive loss, for `seeds`, as profile `<name>-regime`.
/// Stages it shares with the profile train once when both use the same runs folder.
let regimeOfSeeds (p: Profile) (seeds: int list) =
    let counts = studyLabelCounts p
    { p with
        Name = p.Name + "-regime"
        Description = p.Description + sprintf "; regime map: label count x stem x step budget, seed%s %s" (if seeds.Length > 1 then "s" else "") (String.Join(" ", seeds))
        Cells = regimeGrid (studyVariant p) counts regimeCapacities (studyBudget p) regimeMultiples seeds
        FeatureSpace = None }

/// The default regime map's study: the scene studies' label counts (`default` and `default-all`), for `seeds`, as
/// profile `default-regime`.
let defaultRegime (runs: string) (seeds: int list) =
    regimeOfSeeds { defaultProfile runs with Cells = scenesLabelEfficiency [ for n in scenesLabelCounts -> n, [ 0 ] ] } seeds

/// The regime map at seed 0 (the map's default).
let regimeOf (p: Profile) = regimeOfSeeds p [ 0 ]

/// A paper-scale profile (meant for GPU machines) from the preset `name` of TrainPresets, the one definition of the
/// paper's settings: every stage of a cell at n labels trains what `train --preset <name> --stage <s> --labelled n`
/// trains (model, optimiser, loss, data), with the grid's bookkeeping (run folder, seed, init, pseudo-labels). The
/// ablations that need Fashion-MNIST are left out.
let private paperProfile (name: string) description (runs: string) (root: string) (labelCounts: int list) pseudo =
    let preset stage (labelled: int option) = TrainPresets.Get(name, stage, root, Option.toNullable labelled)
    let budget = presetBudget preset
    { Name = name
      Description = description
      Defaults = StudyDefaults(StudyBases.Paper(name, root, runs), budget (List.min labelCounts), presetRates preset, ClassificationPretrainingOptions(), pseudo)
      Cells =
        paperGrid labelCounts [ 0 ] [ 0 ]
        |> List.filter (fun c -> c.Study <> "classification-pretraining")
        |> List.map (fun c -> if c.Labelled.HasValue then withBudget (budget c.Labelled.Value) c else c)
      FeatureSpace = None
      EvalSplit = DatasetRegistry.Get(name).EvalSplit } // val: the test labels are not public

let voc runs root labelCounts =
    paperProfile "voc" "PASCAL VOC 2012 train_aug, DeepLabV3+ ResNet-50 OS16, 513 crops, batch 16 (paper settings)" runs root labelCounts
        (PseudoLabelOptions())

// Cityscapes has no background class: 0.8 for every class.
let cityscapes runs root labelCounts =
    paperProfile "cityscapes" "Cityscapes fine train, DeepLabV3+ ResNet-50 OS16, 513 crops, batch 16 (paper settings)" runs root labelCounts
        (PseudoLabelOptions(BackgroundThreshold = Nullable()))

/// Label counts as fractions of a training split of `trainImages` images: round(f x n), at least 1, each once.
let labelCountsOf (trainImages: int) (fractions: float list) =
    fractions
    |> List.map (fun f ->
        if not (f > 0.0 && f <= 1.0) then raise (ConfigException(sprintf "label fraction %g is not in (0, 1]" f, "--fractions"))
        max 1 (int (Math.Round(f * float trainImages, MidpointRounding.AwayFromZero))))
    |> List.distinct

/// What the folder profile studies on a user's dataset.
type FolderStudy =
    { Root: string
      /// Label counts as fractions of the training split.
      Fractions: float list
      Seeds: int list
      /// Training crop (square) and working resolution (Data.Resize) of the images.
      Crop: int
      Resize: float
      /// Split whose images the in-training validation and checkpoint choice use, and the split scored.
      ValSplit: string
      EvalSplit: string }

/// The folder profile's defaults: 1/16, 1/8, 1/4 and all of the training split, 3 seeds, crop 128, full resolution, val.
let folderDefaults (root: string) =
    { Root = root; Fractions = [ 1.0 / 16.0; 1.0 / 8.0; 1.0 / 4.0; 1.0 ]; Seeds = [ 0; 1; 2 ]; Crop = 128; Resize = 1.0
      ValSplit = "val"; EvalSplit = DatasetRegistry.Get("folder").EvalSplit }

/// The folder profile's schedule per label count (equal budgets, the scene studies' loss and LRs). On camvid-dev
/// (120x90, crop 64), at 800 steps for every count, CE with all 367 frames was still rising (31.7 against 41.0
/// validation mIoU with 23): more labels get more steps. With this schedule CE on all 367 plateaus from ~2,000 of
/// its 2,400 steps, while the 23-frame runs still rose at 800 (seed 0: CE 35.4 at 400, 39.1 at 800; fine-tuning
/// 37.6 at 200, 41.3 at 400; README, "Results"): up to 30 labelled images get 1,200. At 1,200 (weight decay 1e-3)
/// the 23-frame CE gains 0.5-1.2 over its last 200 steps, fine-tuning 0.9-1.8 over its last 200 of 600.
let folderSchedule : LabelSchedule = [ 30, StepBudget.Equal 1200; 120, StepBudget.Equal 1600; Int32.MaxValue, StepBudget.Equal 2400 ]

/// `folder`: the label-efficiency study on a folder dataset (images/, masks/, classes.txt, splits/train.txt and
/// the validation/evaluation splits) at CPU scale: the `cpu` preset's model and schedule on crops of the images.
let folderProfile (runs: string) (study: FolderStudy) =
    let train = ContrastSeg.Data.FolderDataset(study.Root, ContrastSeg.Data.FolderOptions(Split = "train"))
    let withMask = train.LabelledIndices.Count // the training images; a split may declare others, without a mask, unlabelled
    let counts = labelCountsOf withMask study.Fractions
    let fractions = String.Join(", ", study.Fractions |> List.map (fun f -> if f >= 1.0 then "all" else sprintf "1/%g" (Math.Round(1.0 / f, 1))))
    { Name = "folder"
      Description =
        sprintf "folder dataset %s (%d training images; labelled %s = %s), crop %d, resize %g, DeepLabV3+ ResNet-18 (width 0.25, small stem, OS 8), SGD + cosine, cross-image contrastive loss, equal step budgets per label count"
            study.Root withMask fractions (String.Join("/", counts)) study.Crop study.Resize
      Defaults =
        StudyDefaults(StudyBases.Folder(runs, study.Root, study.ValSplit, study.Crop, study.Resize), budgetAt folderSchedule (List.min counts),
                      StageRates(0.1, 0.1, 0.1), ClassificationPretrainingOptions(), PseudoLabelOptions())
      Cells = labelEfficiencyGridWith scenesVariant (budgetAt folderSchedule >> Some) counts study.Seeds
      FeatureSpace = None
      EvalSplit = study.EvalSplit }
