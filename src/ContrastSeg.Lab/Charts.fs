/// Interactive HTML charts (Plotly.NET, plotly.js embedded so they open offline) and matching PNGs.
/// Not notebook-safe: Plotly.NET 6 needs FSharp.Core 10.1.
module ContrastSeg.Lab.Charts

open System.IO
open Plotly.NET
open ContrastSeg.Lab.Results

let private offline (chart: GenericChart) =
    chart |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.Full))

let private saveHtml (path: string) (chart: GenericChart) =
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
    chart |> offline |> Chart.saveHtml (Path.ChangeExtension(path, null))

let private labelledCount (setting: string) =
    match settingOrder setting with
    | (0, x, _) -> Some x
    | _ -> None

/// The y-axis title of every chart: the metric and the split it was measured on.
let axisTitle (split: string) = sprintf "%s mIoU (%%)" split

/// A legend entry: the method and the seeds behind its points.
let private legend (m: string) (cells: Summary list) =
    match cells |> List.filter (fun c -> c.Method = m) |> List.map (fun c -> c.N) |> List.distinct with
    | [ n ] -> sprintf "%s (n=%d seed%s)" m n (if n = 1 then "" else "s")
    | ns when not ns.IsEmpty -> sprintf "%s (n=%d-%d seeds)" m (List.min ns) (List.max ns)
    | _ -> m

/// mIoU (%) on `split` against the number of labelled images, one line per method, error bars = std over seeds.
let labelEfficiency (folder: string) (split: string) (summaries: Summary list) =
    let cells = summaries |> List.filter (fun s -> s.Study = "label-efficiency")
    let methods = cells |> List.map (fun c -> c.Method) |> List.distinct
    let points m =
        cells |> List.filter (fun c -> c.Method = m)
        |> List.choose (fun c -> labelledCount c.Setting |> Option.map (fun x -> x, 100.0 * c.MeanIoU, 100.0 * c.Std))
        |> List.sortBy (fun (x, _, _) -> x)
    if not methods.IsEmpty then
        methods
        |> List.map (fun m ->
            let pts = points m
            Chart.Line(x = (pts |> List.map (fun (x, _, _) -> x)), y = (pts |> List.map (fun (_, y, _) -> y)), Name = legend m cells, ShowMarkers = true)
            |> Chart.withYError (TraceObjects.Error.init (Array = (pts |> List.map (fun (_, _, e) -> e)))))
        |> Chart.combine
        |> Chart.withTitle (sprintf "Label efficiency (%s split)" split)
        |> Chart.withXAxisStyle (TitleText = "labelled images", AxisType = StyleParam.AxisType.Log)
        |> Chart.withYAxisStyle (TitleText = axisTitle split)
        |> saveHtml (Path.Combine(folder, "label-efficiency.html"))
        Png.lines (Path.Combine(folder, "label-efficiency.png")) (sprintf "Label efficiency (%s split)" split) "labelled images (log scale)" (axisTitle split) true
            (methods |> List.mapi (fun i m -> { Png.Name = legend m cells; Png.Points = points m; Png.Color = Png.palette.[i % Png.palette.Length] }))

/// Validation mIoU during training against the step, one line per run (learning-curves.html/.png).
let learningCurves (folder: string) (split: string) (curves: (string * (float * float) list) list) =
    if not curves.IsEmpty then
        curves
        |> List.map (fun (name, pts) -> Chart.Line(x = (pts |> List.map fst), y = (pts |> List.map snd), Name = name, ShowMarkers = true))
        |> Chart.combine
        |> Chart.withTitle (sprintf "Learning curves (seed 0; %s split, checked during training)" split)
        |> Chart.withXAxisStyle (TitleText = "training step (fine-tuning after pretraining)")
        |> Chart.withYAxisStyle (TitleText = axisTitle split)
        |> saveHtml (Path.Combine(folder, "learning-curves.html"))
        Png.lines (Path.Combine(folder, "learning-curves.png")) (sprintf "Learning curves (seed 0, %s split)" split) "training step (fine-tuning after pretraining)" (axisTitle split) false
            (curves |> List.mapi (fun i (name, pts) ->
                { Png.Name = name; Png.Points = pts |> List.map (fun (x, y) -> x, y, 0.0); Png.Color = Png.palette.[i % Png.palette.Length] }))

/// One grouped bar chart per ablation other than label efficiency.
let ablationBars (folder: string) (split: string) (summaries: Summary list) =
    for exp, cells in summaries |> List.filter (fun s -> s.Study <> "label-efficiency" && s.Study <> "regime") |> List.groupBy (fun s -> s.Study) do
        let settings = cells |> List.map (fun c -> c.Setting) |> List.distinct |> List.sortBy settingOrder
        let methods = cells |> List.map (fun c -> c.Method) |> List.distinct
        let get m s = cells |> List.tryFind (fun c -> c.Method = m && c.Setting = s) |> Option.map (fun c -> 100.0 * c.MeanIoU, 100.0 * c.Std)
        methods
        |> List.map (fun m ->
            let present = settings |> List.filter (fun s -> (get m s).IsSome)
            Chart.Column(values = (present |> List.map (fun s -> fst (get m s).Value)), Keys = present, Name = legend m cells)
            |> Chart.withYError (TraceObjects.Error.init (Array = (present |> List.map (fun s -> snd (get m s).Value)))))
        |> Chart.combine
        |> Chart.withTitle (sprintf "%s (%s split)" exp split)
        |> Chart.withYAxisStyle (TitleText = axisTitle split)
        |> saveHtml (Path.Combine(folder, exp + ".html"))
        Png.bars (Path.Combine(folder, exp + ".png")) (sprintf "%s (%s split)" exp split) (axisTitle split) settings
            (methods |> List.mapi (fun i m -> legend m cells, Png.palette.[i % Png.palette.Length], get m))

/// t-SNE scatter panels (one per model), coloured by class.
let tsne (folder: string) (classNames: string[]) (panels: (string * (float32 * float32 * int)[]) list) =
    panels
    |> List.mapi (fun i (name, pts) ->
        pts
        |> Array.groupBy (fun (_, _, c) -> c)
        |> Array.sortBy fst
        |> Array.map (fun (c, ps) ->
            Chart.Point(x = (ps |> Array.map (fun (x, _, _) -> float x)), y = (ps |> Array.map (fun (_, y, _) -> float y)),
                        Name = sprintf "%s: %s" name (if c < classNames.Length then classNames.[c] else string c), ShowLegend = (i = 0)))
        |> Chart.combine
        |> Chart.withTitle name)
    |> Chart.Grid(1, panels.Length)
    |> Chart.withTitle "t-SNE of softmax-input features (sampled pixels)"
    |> saveHtml (Path.Combine(folder, "tsne.html"))
    Png.scatter (Path.Combine(folder, "tsne.png")) "t-SNE of softmax-input features (sampled pixels)" classNames panels

/// The regime map (regime-map.png/.html): contrastive minus cross-entropy mIoU in points, rows = capacity and
/// step budget, columns = label counts; red where cross-entropy wins, blue where contrastive does.
let regimeMap (folder: string) (split: string) (map: Regime.MapCell list) =
    if not map.IsEmpty then
        let rows, columns = Regime.axes map
        let rowName (capacity: string, steps: int) = sprintf "%s, %d steps" capacity steps
        let find (capacity, steps) n = map |> List.tryFind (fun c -> c.Capacity = capacity && c.Steps = steps && c.Labelled = n)
        let gains = rows |> List.map (fun r -> columns |> List.map (fun n -> find r n |> Option.bind (fun c -> c.Gain)))
        let title = sprintf "Contrastive + fine-tuning minus cross-entropy (%s mIoU points)" split
        Chart.Heatmap(zData = (gains |> List.map (List.map (fun g -> match g with Some v -> v | None -> nan))),
                      X = (columns |> List.map (sprintf "labelled=%d")), Y = (rows |> List.map rowName),
                      ColorScale = StyleParam.Colorscale.RdBu, ReverseScale = false)
        |> Chart.withTitle title
        |> saveHtml (Path.Combine(folder, "regime-map.html"))
        let scale = gains |> List.concat |> List.choose id |> List.map abs |> List.fold max 1.0
        let label i j =
            match find rows.[i] columns.[j] with
            | Some c ->
                let side = function Some (s: Summary) -> sprintf "%.1f" (100.0 * s.MeanIoU) | None -> "-"
                match c.Gain with
                | Some g -> sprintf "%s / %s (%+.1f)" (side c.CrossEntropy) (side c.Contrastive) g
                | None -> sprintf "%s / %s" (side c.CrossEntropy) (side c.Contrastive)
            | None -> "-"
        Png.heatmap (Path.Combine(folder, "regime-map.png")) (sprintf "Contrastive + fine-tuning minus cross-entropy (%s mIoU)\ncells: cross-entropy / contrastive (gain in points); blue: contrastive ahead, red: behind" split) (rows |> List.map rowName)
            (columns |> List.map (sprintf "labelled=%d")) gains label scale
