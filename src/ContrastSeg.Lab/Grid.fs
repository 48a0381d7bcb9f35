/// The ablation grid: recipes, cells, profiles, and the stage configs each cell trains.
/// Notebook-safe (FSharp.Core 10.0 API, the C# core only).
module ContrastSeg.Lab.Grid

open System
open System.IO
open ContrastSeg.Losses
open ContrastSeg.Models
open ContrastSeg.Training
open ContrastSeg.Lab.Configs

/// How a cell trains its final model.
type Recipe =
    /// Cross-entropy only.
    | CrossEntropy
    /// Contrastive pretraining (variant, distortions on/off), then softmax fine-tuning.
    | ContrastiveFineTune of variant: ContrastiveVariant * distortion: bool
    /// Encoder from classification pretraining on single items; then CE, or contrastive + fine-tuning.
    | ClassificationInit of withContrastive: bool
    /// The teacher recipe, pseudo-labels for the unlabelled images, then the same recipe on labelled + pseudo-labelled.
    | SemiSupervised of teacher: Recipe

/// A model capacity the regime map varies: the encoder's stem and width multiplier.
type Capacity =
    { Stem: EncoderStem
      Width: float }

/// A step budget the regime map varies: cross-entropy steps, and pretraining + fine-tuning steps.
type Budget =
    { CeSteps: int
      PretrainSteps: int
      FinetuneSteps: int }

/// Settings of the contrastive recipe a recipe study varies against the profile's (None: the profile's value):
/// the loss's temperature and resize size (Contrastive.ResizeTo; 0 = no resize), the projection
/// head's batch norm (both stages, so the fine-tuning loads the head it was pretrained with), the fine-tuning LR.
type RecipeOverrides =
    { Temperature: float option
      ResizeTo: int option
      ProjectionBatchNorm: bool option
      FinetuneLearningRate: float option }

    /// The profile's recipe, unchanged.
    static member None = { Temperature = None; ResizeTo = None; ProjectionBatchNorm = None; FinetuneLearningRate = None }

/// One unit of the grid: a row of the results.
type Cell =
    { Study: string
      Setting: string
      Method: string
      Seed: int
      Labelled: int option
      Recipe: Recipe
      /// The profile's model with another stem and width (None: the profile's).
      Capacity: Capacity option
      /// Another step budget than the profile's (None: the profile's).
      Budget: Budget option
      /// Recipe settings other than the profile's (RecipeOverrides.None: the profile's).
      Overrides: RecipeOverrides }

    /// A stable name for the cell (file names, `--run`).
    member c.Key =
        let clean (s: string) = String(s.ToCharArray() |> Array.map (fun ch -> if Char.IsLetterOrDigit ch || ch = '-' || ch = '.' then ch else '-'))
        sprintf "%s.%s.%s.s%d" (clean c.Study) (clean c.Method) (clean c.Setting) c.Seed

/// A named grid with its training schedule.
type Profile =
    { Name: string
      Description: string
      /// Data, model and shared settings of every stage.
      Base: TrainConfig
      /// The step budget of cells without one of their own (`Cell.Budget`).
      Budget: Budget
      CeLearningRate: float
      PretrainLearningRate: float
      FinetuneLearningRate: float
      Classification: ClassificationPretrainingOptions
      Pseudo: PseudoLabelOptions
      Cells: Cell list
      /// Feature-space plot: labelled count and pixels per class, or None.
      Tsne: (int * int) option
      /// Split the final models are scored on ("test" for the scenes; "val" where test labels are not public).
      EvalSplit: string }

/// A stage's steps and LR; its warm-up is at most a quarter of its steps (a short fine-tuning still decays).
let private withOptimizer (c: TrainConfig) steps lr =
    let warmup = min c.Optimizer.WarmupSteps (steps / 4)
    c |> update <@ fun c -> c.Optimizer @> (c.Optimizer |> update <@ fun o -> o.Steps @> steps |> update <@ fun o -> o.LearningRate @> lr
                                                          |> update <@ fun o -> o.WarmupSteps @> warmup)

/// Where classification-pretrained encoder weights go for a profile.
let classificationWeights (p: Profile) =
    ClassificationPretraining.WeightsFile(Path.Combine(p.Base.OutputRoot, "pretrained"), p.Base.Model.ToEncoderOptions(), p.Classification, p.Base.Data.Root)

/// The training stages of a recipe, in order, with `pseudo` as the pseudo-label folder for students.
let rec stages (p: Profile) (cell: Cell) (recipe: Recipe) (pseudo: string option) : TrainConfig list =
    let data =
        p.Base.Data
        |> update <@ fun d -> d.Labelled @> (Option.toNullable cell.Labelled)
        |> update <@ fun d -> d.PseudoLabels @> (Option.toObj pseudo)
    let o = cell.Overrides
    let model =
        match cell.Capacity with
        | Some c -> p.Base.Model |> update <@ fun m -> m.Stem @> c.Stem |> update <@ fun m -> m.Width @> c.Width
        | None -> p.Base.Model
    let model =
        match o.ProjectionBatchNorm with
        | Some bn -> model |> update <@ fun m -> m.ProjectionBatchNorm @> bn
        | None -> model
    let budget = defaultArg cell.Budget p.Budget
    let common =
        p.Base |> update <@ fun c -> c.Seed @> cell.Seed |> update <@ fun c -> c.Data @> data |> update <@ fun c -> c.Model @> model
    let stage s (init: string) = common |> update <@ fun c -> c.Stage @> s |> update <@ fun c -> c.InitFrom @> init
    let ce init = withOptimizer (stage TrainingStage.CrossEntropy init) budget.CeSteps p.CeLearningRate
    let twoStage variant distortion init =
        let loss =
            common.Contrastive
            |> update <@ fun k -> k.Variant @> variant
            |> update <@ fun k -> k.Temperature @> (defaultArg o.Temperature common.Contrastive.Temperature)
            |> update <@ fun k -> k.ResizeTo @> (defaultArg o.ResizeTo common.Contrastive.ResizeTo)
        let pre =
            stage TrainingStage.Contrastive init
            |> update <@ fun c -> c.Data @> (data |> update <@ fun d -> d.ContrastiveDistortion @> distortion)
            |> update <@ fun c -> c.Contrastive @> loss
        let pre = withOptimizer pre budget.PretrainSteps p.PretrainLearningRate
        let fine = withOptimizer (stage TrainingStage.FineTune pre.RunDirectory) budget.FinetuneSteps (defaultArg o.FinetuneLearningRate p.FinetuneLearningRate)
        [ pre; fine ]
    match recipe with
    | CrossEntropy -> [ ce null ]
    | ContrastiveFineTune (v, d) -> twoStage v d null
    | ClassificationInit false -> [ ce (classificationWeights p) ]
    | ClassificationInit true -> twoStage ContrastiveVariant.WithinImage true (classificationWeights p)
    | SemiSupervised teacher -> stages p cell teacher pseudo

/// The pseudo-label folder of a semi-supervised cell (named after its teacher's final run).
let pseudoFolder (p: Profile) (cell: Cell) =
    match cell.Recipe with
    | SemiSupervised teacher ->
        let teacherFinal = stages p cell teacher None |> List.last
        Some(Path.Combine(p.Base.OutputRoot, "pseudo", teacherFinal.RunName))
    | _ -> None

let private cells experiment seeds (rows: (string * string * int option * Recipe) list) =
    [ for seed in seeds do
        for setting, meth, labelled, recipe in rows ->
            { Study = experiment; Setting = setting; Method = meth; Seed = seed; Labelled = labelled; Recipe = recipe
              Capacity = None; Budget = None; Overrides = RecipeOverrides.None } ]

let private ce, con = "cross-entropy", "contrastive+finetune"

/// A schedule that grows with the label count: (up to this many labelled images, budget), ascending. Runs with
/// more labels need more steps to converge (CE on the embedded scenes is within 1 mIoU of its plateau after
/// ~300 steps with 10 scenes, ~1,000 with 100 and ~3,000 with all 2,000), so one budget for every count
/// measures convergence speed, not label efficiency.
type LabelSchedule = (int * Budget) list

/// The budget of the first schedule entry that covers `labelled` (the last entry beyond it).
let budgetAt (schedule: LabelSchedule) (labelled: int) =
    match schedule |> List.tryFind (fun (upTo, _) -> labelled <= upTo) with
    | Some (_, b) -> b
    | None -> snd (List.last schedule)

/// `b` with every stage capped at `n` steps (`--steps n`: a quick look at any profile).
let capBudget (n: int) (b: Budget) =
    { CeSteps = min n b.CeSteps; PretrainSteps = min n b.PretrainSteps; FinetuneSteps = min n b.FinetuneSteps }

/// What a preset (`TrainPresets.Get` of one name: stage, labelled count -> config) trains at `n` labels, per stage.
let presetBudget (preset: TrainingStage -> int option -> TrainConfig) (n: int) =
    let steps stage = (preset stage (Some n)).Optimizer.Steps
    { CeSteps = steps TrainingStage.CrossEntropy; PretrainSteps = steps TrainingStage.Contrastive; FinetuneSteps = steps TrainingStage.FineTune }

/// A preset's learning rate for a stage (the same at every label count).
let presetRate (preset: TrainingStage -> int option -> TrainConfig) stage = (preset stage None).Optimizer.LearningRate

/// An equal budget: cross-entropy steps = pretraining + fine-tuning steps, split in halves.
let equalBudget ceSteps = { CeSteps = ceSteps; PretrainSteps = ceSteps / 2; FinetuneSteps = ceSteps - ceSteps / 2 }

/// The label-efficiency study: cross-entropy against contrastive pretraining + fine-tuning (`variant`,
/// distortions on) at each label count, for each seed; `budget n` is the cells' step budget at n labels
/// (None: the profile's schedule).
let labelEfficiencyGridWith (variant: ContrastiveVariant) (budget: int -> Budget option) (labelCounts: int list) (seeds: int list) =
    let recipe = ContrastiveFineTune(variant, true)
    [ for seed in seeds do
        for n in labelCounts do
            let setting = sprintf "labelled=%d" n
            for meth, r in [ ce, CrossEntropy; con, recipe ] ->
                { Study = "label-efficiency"; Setting = setting; Method = meth; Seed = seed; Labelled = Some n; Recipe = r
                  Capacity = None; Budget = budget n; Overrides = RecipeOverrides.None } ]

/// The label-efficiency study with the within-image loss (the paper's main recipe) at the profile's schedule.
let labelEfficiencyGrid (labelCounts: int list) (seeds: int list) =
    labelEfficiencyGridWith ContrastiveVariant.WithinImage (fun _ -> None) labelCounts seeds

/// A stem as written in settings and names: imagenet, small.
let stemSlug (s: EncoderStem) = s.ToString().ToLowerInvariant()

/// The regime map: cross-entropy against contrastive pretraining + fine-tuning (`variant`, distortions on)
/// at every label count x capacity x step budget, the budgets at n labels being `budgetAt n` times each of
/// `multiples`. Budgets are equal per cell when the study's are. Settings read
/// "labelled=10,stem=small,width=0.25,steps=600" (CE steps).
let regimeGrid (variant: ContrastiveVariant) (labelCounts: int list) (capacities: Capacity list) (budgetAt: int -> Budget) (multiples: int list) (seeds: int list) =
    let recipe = ContrastiveFineTune(variant, true)
    [ for seed in seeds do
        for capacity in capacities do
            for k in multiples do
                for n in labelCounts do
                    let b = budgetAt n
                    let budget = { CeSteps = k * b.CeSteps; PretrainSteps = k * b.PretrainSteps; FinetuneSteps = k * b.FinetuneSteps }
                    let setting = sprintf "labelled=%d,stem=%s,width=%g,steps=%d" n (stemSlug capacity.Stem) capacity.Width budget.CeSteps
                    for meth, r in [ ce, CrossEntropy; con, recipe ] ->
                        { Study = "regime"; Setting = setting; Method = meth; Seed = seed; Labelled = Some n; Recipe = r
                          Capacity = Some capacity; Budget = Some budget; Overrides = RecipeOverrides.None } ]

/// The paper's ablations on a profile's label counts (the lowest count for the one-setting ablations).
let paperGrid (labelCounts: int list) (seeds: int list) (ablationSeeds: int list) =
    let low = List.min labelCounts
    let lowName = sprintf "labelled=%d" low
    let within = ContrastiveFineTune(ContrastiveVariant.WithinImage, true)
    [ yield! labelEfficiencyGrid labelCounts seeds
      yield! cells "distortions" ablationSeeds
                 [ "distortions=on", con, Some low, within
                   "distortions=off", con, Some low, ContrastiveFineTune(ContrastiveVariant.WithinImage, false) ]
      yield! cells "loss-variant" ablationSeeds
                 [ "variant=within-image", con, Some low, within
                   "variant=cross-image", con, Some low, ContrastiveFineTune(ContrastiveVariant.CrossImage, true)
                   "variant=batch", con, Some low, ContrastiveFineTune(ContrastiveVariant.Batch, true) ]
      yield! cells "classification-pretraining" ablationSeeds
                 [ "init=scratch", ce, Some low, CrossEntropy
                   "init=scratch", con, Some low, within
                   "init=classification", ce, Some low, ClassificationInit false
                   "init=classification", con, Some low, ClassificationInit true ]
      yield! cells "semi-supervised" ablationSeeds
                 [ lowName + ",pseudo=off", con, Some low, within
                   lowName + ",pseudo=on", con, Some low, SemiSupervised within ] ]

/// The `cpu` preset's data and model (embedded scenes, no random rescaling) with the grid's bookkeeping.
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
                | ContrastiveFineTune (_, distortion) -> { c with Method = sprintf "contrastive(%s)+finetune" slug; Recipe = ContrastiveFineTune(variant, distortion) }
                | _ -> c) }

let private scenes (root: string) =
    TrainPresets.Cpu(TrainingStage.CrossEntropy)
    |> update <@ fun c -> c.OutputRoot @> root
    |> update <@ fun c -> c.LogEvery @> 50
    |> update <@ fun c -> c.CheckpointEvery @> 500
    |> update <@ fun c -> c.KeepLast @> 1

/// `quick`: the whole pipeline end to end on a tiny grid (CI; a few minutes on 2 cores).
let quick (runs: string) =
    let b = scenes runs
    { Name = "quick"
      Description = "every ablation at toy scale: proves the pipeline, not the method"
      Base =
        b |> update <@ fun c -> c.Data @> (b.Data |> update <@ fun d -> d.Scenes @> (b.Data.Scenes |> update <@ fun s -> s.Train @> 400 |> update <@ fun s -> s.Val @> 64))
          |> update <@ fun c -> c.Optimizer @> (b.Optimizer |> update <@ fun o -> o.WarmupSteps @> 5)
          |> update <@ fun c -> c.LogEvery @> 10
          |> update <@ fun c -> c.EvalEvery @> 10
      Budget = { CeSteps = 30; PretrainSteps = 20; FinetuneSteps = 20 }
      CeLearningRate = 0.03; PretrainLearningRate = 0.1; FinetuneLearningRate = 0.03
      Classification = ClassificationPretrainingOptions(Steps = 30, BatchSize = 32)
      Pseudo = PseudoLabelOptions()
      Cells = paperGrid [ 8; 40 ] [ 0 ] [ 0 ]
      Tsne = Some(8, 20)
      EvalSplit = "val" } // 64 scenes: the 500 test scenes took a third of the quick profile; toy numbers either way

/// The `cpu` preset, as profiles read presets.
let private cpuPreset stage (labelled: int option) = TrainPresets.Get("cpu", stage, null, Option.toNullable labelled)

/// The CPU-scale schedule of the embedded scenes per label count: the `cpu` preset's (TrainPresets.CpuSchedule, where
/// the measurements behind it are), each count's budget as the preset trains it.
let scenesSchedule : LabelSchedule = [ for struct (upTo, _) in TrainPresets.CpuSchedule -> upTo, presetBudget cpuPreset upTo ]

/// The contrastive loss of the scene studies: cross-image, which compares pixels of different scenes. The
/// within-image loss only contrasts the 2-5 classes that share a 64x64 scene and lost to CE from 100 labels up
/// (-10 and -28 mIoU); cross-image was ahead at 10 and 100 in the probes (README, "Results").
let scenesVariant = ContrastiveVariant.CrossImage

/// The CPU-scale study on the embedded scenes (both `default` and `ablations`): the `cpu` preset's data, model,
/// schedule and learning rates; cells without a budget of their own train the schedule at 10 scenes.
let private scenesStudy (runs: string) name description cells tsne =
    let b = scenes runs
    let lr = presetRate cpuPreset
    { Name = name
      Description = description
      Base = b
      Budget = budgetAt scenesSchedule 10
      CeLearningRate = lr TrainingStage.CrossEntropy; PretrainLearningRate = lr TrainingStage.Contrastive; FinetuneLearningRate = lr TrainingStage.FineTune
      Classification = ClassificationPretrainingOptions(Steps = 1500)
      Pseudo = PseudoLabelOptions()
      Cells = cells
      Tsne = tsne
      EvalSplit = DatasetRegistry.Get(b.Data.Dataset).EvalSplit } // the scenes' test split

let private scenesDescription =
    "Fashion-MNIST scenes 64x64 (no random rescaling), DeepLabV3+ ResNet-18 (width 0.25, small stem, OS 8), SGD + cosine, equal step budgets per label count"

/// `default`: the label-efficiency study on the embedded Fashion-MNIST scenes, 3 label counts x 3 seeds, each
/// count at its own schedule (`scenesSchedule`), cross-image contrastive pretraining + fine-tuning against
/// cross-entropy, scored on the test split with the best-validation checkpoints; the t-SNE of the 10-scene models.
let defaultProfile (runs: string) =
    let cells = labelEfficiencyGridWith scenesVariant (budgetAt scenesSchedule >> Some) [ 10; 100; 2000 ] [ 0; 1; 2 ] // 2000 = every training scene
    scenesStudy runs "default" (scenesDescription + ", cross-image contrastive loss") cells (Some(10, 50))

/// The recipe's settings the paper fixes and issue 11 asks to study, one at a time against the `cpu` preset's value
/// (the first of each list; temperature 0.07, resize 16, no projection BN, fine-tuning at CE's LR 0.1): temperature,
/// the loss's resize size relative to its feature map (the decoder's, at stride 4: 16x16 for a 64 crop, so 16 is the
/// map's own size and trains exactly what no resize (0) trains; 8 = half, as the paper's 65 is to its 129x129 map
/// of a 513 crop; 32 = 2x), projection-head BN, and the fine-tuning LR (0.03 is the paper's ratio 0.007 / 0.03
/// applied to CE's 0.1). Each experiment holds CE at the same budget as reference.
let recipeStudies : (string * (string * RecipeOverrides) list) list =
    let none = RecipeOverrides.None
    [ "temperature", [ for t in [ 0.07; 0.1; 0.2; 0.5 ] -> sprintf "temperature=%g" t, { none with Temperature = Some t } ]
      "resize", [ for r in [ 16; 8; 32 ] -> sprintf "resize=%d" r, { none with ResizeTo = Some r } ]
      "projection-bn", [ for bn in [ false; true ] -> sprintf "projection-bn=%s" (if bn then "on" else "off"), { none with ProjectionBatchNorm = Some bn } ]
      "finetune-lr", [ for lr in [ 0.1; 0.03; 0.01 ] -> sprintf "finetune-lr=%g" lr, { none with FinetuneLearningRate = Some lr } ] ]

/// The recipe studies at `labelled` labels and `budget` (equal totals), contrastive `variant`: per experiment, CE
/// and each setting. Overrides equal to the profile's value leave the stage configs (and runs) the profile's.
let recipeGrid (variant: ContrastiveVariant) (budget: Budget) (labelled: int) (seeds: int list) =
    [ for seed in seeds do
        for experiment, settings in recipeStudies do
            let cell setting meth recipe overrides =
                { Study = experiment; Setting = sprintf "labelled=%d,%s" labelled setting; Method = meth; Seed = seed
                  Labelled = Some labelled; Recipe = recipe; Capacity = None; Budget = Some budget; Overrides = overrides }
            yield cell "reference" ce CrossEntropy RecipeOverrides.None
            for setting, overrides in settings -> cell setting con (ContrastiveFineTune(variant, true)) overrides ]

/// The paper's budget rule against the equal one at a label count: pretraining as long as cross-entropy, then a
/// fine-tuning of a quarter of that (the paper: 300K + 50K against 300K CE at its low label counts).
let paperRuleBudget (equal: Budget) = { CeSteps = equal.CeSteps; PretrainSteps = equal.CeSteps; FinetuneSteps = max 1 (equal.CeSteps / 4) }

/// `ablations`: the paper's other studies at the lowest label count of `default`, seed 0, with its schedule and
/// the budget-rule study (equal total steps against the paper's rule) at 10 and 100 scenes. Its runs folder
/// defaults to runs/default, so stages both profiles share are trained once.
let ablationsProfile (runs: string) =
    let paper = paperGrid [ 10 ] [ 0 ] [ 0 ] |> List.filter (fun c -> c.Study <> "label-efficiency")
    let rule =
        [ for n in [ 10; 100 ] do
            let equal = budgetAt scenesSchedule n
            for name, budget in [ "equal-total", equal; "paper", paperRuleBudget equal ] ->
                { Study = "budget-rule"; Setting = sprintf "labelled=%d,rule=%s" n name; Method = con; Seed = 0; Labelled = Some n
                  Recipe = ContrastiveFineTune(scenesVariant, true); Capacity = None; Budget = Some budget; Overrides = RecipeOverrides.None } ]
    let recipe = [ for n in [ 10; 100 ] do yield! recipeGrid scenesVariant (budgetAt scenesSchedule n) n [ 0 ] ]
    scenesStudy runs "ablations" (scenesDescription + "; the paper's ablations at 10 labelled scenes, the budget rules and the recipe's settings at 10 and 100, seed 0") (paper @ rule @ recipe) None

/// The capacities and budgets of the regime map at CPU scale: torchvision's stem against the small stem
/// (ResNet-18 width 0.25), and the study's budget at each label count against three times as many steps.
let regimeCapacities = [ { Stem = EncoderStem.ImageNet; Width = 0.25 }; { Stem = EncoderStem.Small; Width = 0.25 } ]

let regimeMultiples = [ 1; 3 ]

/// The step budget a profile's label-efficiency cells train at `labelled` labels.
let studyBudget (p: Profile) (labelled: int) =
    p.Cells
    |> List.tryPick (fun c -> if c.Study = "label-efficiency" && c.Labelled = Some labelled then c.Budget else None)
    |> Option.defaultValue p.Budget

/// The contrastive loss of a profile's label-efficiency cells.
let studyVariant (p: Profile) =
    p.Cells
    |> List.tryPick (fun c -> match c.Study, c.Recipe with | "label-efficiency", ContrastiveFineTune (v, _) -> Some v | _ -> None)
    |> Option.defaultValue ContrastiveVariant.WithinImage

/// A profile's regime map: its label counts (those of its label-efficiency cells) x `regimeCapacities` x
/// `regimeMultiples` of its budget at each count, with its contrastive loss, for `seeds`, as profile `<name>-regime`.
/// Stages it shares with the profile train once when both use the same runs folder.
let regimeOfSeeds (p: Profile) (seeds: int list) =
    let counts = p.Cells |> List.choose (fun c -> if c.Study = "label-efficiency" then c.Labelled else None) |> List.distinct |> List.sort
    { p with
        Name = p.Name + "-regime"
        Description = p.Description + sprintf "; regime map: label count x stem x step budget, seed%s %s" (if seeds.Length > 1 then "s" else "") (String.Join(" ", seeds))
        Cells = regimeGrid (studyVariant p) counts regimeCapacities (studyBudget p) regimeMultiples seeds
        Tsne = None }

/// The regime map at seed 0 (the map's default).
let regimeOf (p: Profile) = regimeOfSeeds p [ 0 ]

/// A paper-scale profile (meant for GPU machines) from the preset `name` of TrainPresets, the one definition of the
/// paper's settings: every stage of a cell at n labels trains what `train --preset <name> --stage <s> --labelled n`
/// trains (model, optimiser, loss, data), with the grid's bookkeeping (run folder, seed, init, pseudo-labels). The
/// ablations that need Fashion-MNIST are left out.
let private paperProfile (name: string) description (runs: string) (root: string) (labelCounts: int list) pseudo =
    let preset stage (labelled: int option) = TrainPresets.Get(name, stage, root, Option.toNullable labelled)
    let budget = presetBudget preset
    let lr = presetRate preset
    { Name = name
      Description = description
      Base = preset TrainingStage.CrossEntropy None |> update <@ fun c -> c.OutputRoot @> runs
      Budget = budget (List.min labelCounts)
      CeLearningRate = lr TrainingStage.CrossEntropy; PretrainLearningRate = lr TrainingStage.Contrastive; FinetuneLearningRate = lr TrainingStage.FineTune
      Classification = ClassificationPretrainingOptions()
      Pseudo = pseudo
      Cells =
        paperGrid labelCounts [ 0 ] [ 0 ]
        |> List.filter (fun c -> c.Study <> "classification-pretraining")
        |> List.map (fun c -> match c.Labelled with Some n -> { c with Budget = Some(budget n) } | None -> c)
      Tsne = None
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
let folderSchedule : LabelSchedule = [ 30, equalBudget 1200; 120, equalBudget 1600; Int32.MaxValue, equalBudget 2400 ]

/// `folder`: the label-efficiency study on a folder dataset (images/, masks/, classes.txt, splits/train.txt and
/// the validation/evaluation splits) at CPU scale: the `cpu` preset's model and schedule on crops of the images.
let folderProfile (runs: string) (study: FolderStudy) =
    let train = ContrastSeg.Data.FolderDataset(study.Root, ContrastSeg.Data.FolderOptions(Split = "train"))
    let withMask = train.LabelledIndices.Count // the training images; a split may declare others, without a mask, unlabelled
    let counts = labelCountsOf withMask study.Fractions
    let b = scenes runs
    let data =
        b.Data
        |> update <@ fun d -> d.Dataset @> "folder"
        |> update <@ fun d -> d.Root @> study.Root
        |> update <@ fun d -> d.TrainSplit @> "train"
        |> update <@ fun d -> d.ValSplit @> study.ValSplit
        |> update <@ fun d -> d.Crop @> study.Crop
        |> update <@ fun d -> d.Resize @> study.Resize
    let fractions = String.Join(", ", study.Fractions |> List.map (fun f -> if f >= 1.0 then "all" else sprintf "1/%g" (Math.Round(1.0 / f, 1))))
    { Name = "folder"
      Description =
        sprintf "folder dataset %s (%d training images; labelled %s = %s), crop %d, resize %g, DeepLabV3+ ResNet-18 (width 0.25, small stem, OS 8), SGD + cosine, cross-image contrastive loss, equal step budgets per label count"
            study.Root withMask fractions (String.Join("/", counts)) study.Crop study.Resize
      Base = b |> update <@ fun c -> c.Data @> data
      Budget = budgetAt folderSchedule (List.min counts)
      CeLearningRate = 0.1; PretrainLearningRate = 0.1; FinetuneLearningRate = 0.1
      Classification = ClassificationPretrainingOptions()
      Pseudo = PseudoLabelOptions()
      Cells = labelEfficiencyGridWith scenesVariant (budgetAt folderSchedule >> Some) counts study.Seeds
      Tsne = None
      EvalSplit = study.EvalSplit }
