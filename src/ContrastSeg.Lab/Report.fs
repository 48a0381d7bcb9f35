/// The report of a grid: results.md (tables, regime map, feature space), results.csv and the charts, from the
/// rows of a result store that match the profile's current cells.
module ContrastSeg.Lab.Report

open System.IO
open ContrastSeg.Studies
open ContrastSeg.Lab.Results

/// Where and how the rows were computed, per numerics class: the lines printed above the tables.
let provenance (rows: ResultRow list) =
    let sb = System.Text.StringBuilder()
    let classes = rows |> List.countBy numericsOf |> List.sortByDescending snd
    for numerics, n in classes do
        let ofClass = rows |> List.filter (fun r -> numericsOf r = numerics)
        let values key =
            ofClass |> List.choose (fun r -> if isNull r.Provenance then None else match r.Provenance.TryGetValue key with | true, v -> Some v | _ -> None)
            |> List.collect provenanceValues |> List.distinct
        let line key = match values key with [] -> "not recorded" | vs -> System.String.Join("; ", vs)
        sb.AppendLine(sprintf "- numerics: **%s** (%d row%s)%s" numerics n (if n = 1 then "" else "s")
                        (if classes.Length > 1 && numerics <> fst classes.Head then " — flagged: not comparable with the other rows" else "")) |> ignore
        sb.AppendLine(sprintf "  - CPU: %s" (match values "cpu" with [] -> (ofClass |> List.map (fun r -> r.Machine) |> List.distinct |> String.concat "; ") | vs -> System.String.Join("; ", vs))) |> ignore
        sb.AppendLine(sprintf "  - in force: ATen %s, oneDNN %s, MKL %s; threads %s; TorchSharp %s; %s" (line "aten_capability") (line "onednn") (line "mkl_branch") (line "threads") (line "torchsharp") (line "os")) |> ignore
    sb.ToString()

/// The plan's cells that have no current row, each with why: a report rebuilt while cells are missing (a cluster
/// wave still running, a failed cell) names them instead of passing for the whole grid.
let lacking (plan: StudyPlan) (store: ResultStore) (rows: ResultRow list) =
    let have = rows |> List.map (fun r -> r.CellKey) |> Set.ofList
    plan.Cells |> Seq.map (fun c -> c.Key) |> Seq.distinct |> Seq.filter (have.Contains >> not)
    |> Seq.map (fun key -> key, (if store.Has key then "its row has other settings" else "no row")) |> List.ofSeq

/// How a report is rebuilt from its folder alone (rows and plan.json), as results.md says it.
let rebuildCommand = "dotnet fsi scripts/ablations.fsx -- --plan <this folder>/plan.json --report-only"

/// Writes results.md, results.csv and the charts into the store's folder from the plan and the stored rows alone: the
/// same rows and plan give the same files, byte for byte, on any machine that has neither the run folders nor the
/// command that trained them (that command is in ablations.log). Stored rows of cells the plan does not name (other
/// seeds or settings) are left out and named; charts that rows written before rows stored their inputs cannot give
/// are named with why.
let write (plan: StudyPlan) (store: ResultStore) (console: TextWriter) =
    let rows = Runner.currentRows plan store
    let missing = lacking plan store rows
    let outside = outsidePlan (plan.Cells |> Seq.map (fun c -> c.Key)) (store.All())
    let cellCount = plan.Cells |> Seq.map (fun c -> c.Key) |> Seq.distinct |> Seq.length
    let missingText = System.String.Join(", ", missing |> List.map (fun (key, why) -> sprintf "%s (%s)" key why))
    let outsideText = System.String.Join(", ", outside |> List.map (fun r -> r.CellKey))
    if not missing.IsEmpty then
        console.WriteLine(sprintf "[report] %d of %d cells lack a current row and are left out: %s" missing.Length cellCount missingText)
    if not outside.IsEmpty then
        console.WriteLine(sprintf "[report] %d stored row(s) are of cells the plan does not name (other seeds or settings) and are left out: %s" outside.Length outsideText)
    let summaries = summarise rows
    let folder = store.Root
    let notDrawn = System.Collections.Generic.List<ReportInputs.NotDrawn>()
    let drawn result = match result with Ok x -> Some x | Error why -> notDrawn.Add why; None
    let space = drawn (ReportInputs.featureSpace plan rows) |> Option.defaultValue []
    if not space.IsEmpty then
        Charts.tsne folder (snd space.Head).ClassNames (space |> List.map (ReportInputs.tsnePanel plan.FeatureSpace.Labelled))
        File.WriteAllText(Path.Combine(folder, "feature-space.json"), System.Text.Json.JsonSerializer.Serialize(List.map fst space, System.Text.Json.JsonSerializerOptions(WriteIndented = true)))
    let efficiency = Charts.labelEfficiencySpec plan.EvalSplit summaries
    efficiency |> Option.iter (Charts.lines folder "label-efficiency")
    Charts.ablationBars folder plan.EvalSplit summaries
    let curves = drawn (ReportInputs.learningCurves rows) |> Option.defaultValue []
    Charts.learningCurves folder plan.ValSplit curves
    for n in notDrawn do console.WriteLine(sprintf "[report] not drawn: %s: %s" n.Chart n.Why)
    let map = Regime.cells summaries
    Charts.regimeMap folder plan.EvalSplit map
    File.WriteAllText(Path.Combine(folder, "results.csv"), csv rows)
    let wall = rows |> List.sumBy (fun r -> r.WallSeconds)
    let md = System.Text.StringBuilder()
    md.AppendLine(sprintf "# ContrastSeg ablations: profile `%s`\n" plan.Profile)
      .AppendLine(sprintf "%s.\n" plan.Description)
      .AppendLine(sprintf "- made from `plan.json` and `rows/` alone (rebuild: `%s`); the commands that trained the rows are in `ablations.log`" rebuildCommand)
      .AppendLine(sprintf "- cells: %d, summed wall time of their runs: %.1f min" rows.Length (wall / 60.0))
      .AppendLine(if missing.IsEmpty then sprintf "- every cell of the grid (%d) has its row" cellCount
                  else sprintf "- **incomplete**: %d of %d cells lack a current row and are left out: %s" missing.Length cellCount missingText) |> ignore
    if not outside.IsEmpty then
        md.AppendLine(sprintf "- **left out**: %d stored row(s) of cells the plan does not name (other seeds or settings; a report of them needs the plan they were trained by): %s" outside.Length outsideText) |> ignore
    for n in notDrawn do md.AppendLine(sprintf "- **not drawn**: %s: %s" n.Chart n.Why) |> ignore
    md.AppendLine(sprintf "- metric: mIoU (%%) on the `%s` split, mean ± sample std over seeds (n = seeds)" plan.EvalSplit)
      .AppendLine(provenance rows)
      .AppendLine(markdown summaries) |> ignore
    let comparisons = Paired.compare "cross-entropy" rows
    if not comparisons.IsEmpty then
        md.AppendLine("### paired comparisons against cross-entropy\n")
          .AppendLine("Each pair shares seed, labelled subset and data order; the difference is method − cross-entropy in mIoU points, " +
                      "with its mean, the half-width of its 95 % t-interval and n. A method is *ahead* or *behind* only when the interval excludes 0.\n")
          .AppendLine(Paired.markdown comparisons) |> ignore
    if not map.IsEmpty then
        md.AppendLine("### regime map\n").AppendLine(Regime.markdown plan.EvalSplit map).AppendLine("![regime map](regime-map.png)\n") |> ignore
    if not space.IsEmpty then
        md.AppendLine("### feature space (softmax-input features of sampled pixels)\n")
          .AppendLine("| model | intra-class (lower = compact) | inter-class (higher = separated) | ratio | nearest-centroid accuracy |")
          .AppendLine("|---|---:|---:|---:|---:|") |> ignore
        for s, _ in space do
            md.AppendLine(sprintf "| %s | %.3f | %.3f | %.2f | %.1f %% |" s.Method s.IntraClass s.InterClass s.Ratio (100.0 * s.NearestCentroidAccuracy)) |> ignore
        md.AppendLine("\n![t-SNE](tsne.png)") |> ignore
    // A grid without label-efficiency cells (a regime map, an ablation subset) has no such chart.
    if efficiency.IsSome then md.AppendLine("\n![label efficiency](label-efficiency.png)") |> ignore
    if not curves.IsEmpty then
        md.AppendLine(sprintf "\nLearning curves (validation mIoU on the `%s` split during training; the checkpoint with the best of them is the one scored above):\n\n![learning curves](learning-curves.png)" plan.ValSplit) |> ignore
    File.WriteAllText(Path.Combine(folder, "results.md"), md.ToString())
    console.WriteLine(sprintf "results: %s (%d rows)" (Path.Combine(folder, "results.md")) rows.Length)
