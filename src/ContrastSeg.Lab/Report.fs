/// The report of a grid: results.md (tables, regime map, feature space), results.csv and the charts, from the
/// rows of a result store that match the profile's current cells.
module ContrastSeg.Lab.Report

open System.IO
open ContrastSeg.Lab.Grid
open ContrastSeg.Lab.Results

/// Writes results.md, results.csv and the charts into the store's folder; `command` is the one that trained the rows.
let write (p: Profile) (store: ResultStore) (command: string) (console: TextWriter) =
    let rows = Runner.currentRows p store
    let summaries = summarise rows
    let folder = store.Root
    let space = Runner.featureSpace p rows folder console
    Charts.labelEfficiency folder p.EvalSplit summaries
    Charts.ablationBars folder p.EvalSplit summaries
    Charts.learningCurves folder p.Base.Data.ValSplit (Runner.learningCurves rows)
    let map = Regime.cells summaries
    Charts.regimeMap folder p.EvalSplit map
    File.WriteAllText(Path.Combine(folder, "results.csv"), csv rows)
    let wall = rows |> List.sumBy (fun r -> r.WallSeconds)
    let md = System.Text.StringBuilder()
    md.AppendLine(sprintf "# ContrastSeg ablations: profile `%s`\n" p.Name)
      .AppendLine(sprintf "%s.\n" p.Description)
      .AppendLine(sprintf "- command: `%s`" command)
      .AppendLine(sprintf "- machine: %s" (match rows with r :: _ -> r.Machine | [] -> Runner.machine ()))
      .AppendLine(sprintf "- cells: %d, summed wall time of their runs: %.1f min" rows.Length (wall / 60.0))
      .AppendLine(sprintf "- metric: mIoU (%%) on the `%s` split, mean ± sample std over seeds (n = seeds)\n" p.EvalSplit)
      .AppendLine(markdown summaries) |> ignore
    if not map.IsEmpty then
        md.AppendLine("### regime map\n").AppendLine(Regime.markdown p.EvalSplit map).AppendLine("![regime map](regime-map.png)\n") |> ignore
    if not space.IsEmpty then
        md.AppendLine("### feature space (softmax-input features of sampled pixels)\n")
          .AppendLine("| model | intra-class (lower = compact) | inter-class (higher = separated) | ratio | nearest-centroid accuracy |")
          .AppendLine("|---|---:|---:|---:|---:|") |> ignore
        for s in space do
            md.AppendLine(sprintf "| %s | %.3f | %.3f | %.2f | %.1f %% |" s.Method s.IntraClass s.InterClass s.Ratio (100.0 * s.NearestCentroidAccuracy)) |> ignore
        md.AppendLine("\n![t-SNE](tsne.png)") |> ignore
    // A grid without label-efficiency cells (a regime map, an ablation subset) has no such chart.
    if File.Exists(Path.Combine(folder, "label-efficiency.png")) then md.AppendLine("\n![label efficiency](label-efficiency.png)") |> ignore
    if File.Exists(Path.Combine(folder, "learning-curves.png")) then
        md.AppendLine(sprintf "\nLearning curves (validation mIoU on the `%s` split during training; the checkpoint with the best of them is the one scored above):\n\n![learning curves](learning-curves.png)" p.Base.Data.ValSplit) |> ignore
    File.WriteAllText(Path.Combine(folder, "results.md"), md.ToString())
    console.WriteLine(sprintf "results: %s (%d rows)" (Path.Combine(folder, "results.md")) rows.Length)
