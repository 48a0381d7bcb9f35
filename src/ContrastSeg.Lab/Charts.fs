/// The charts of a report: each described once (ChartSpec) from the summaries, then rendered twice, as interactive
/// HTML (Plotly.NET, plotly.js embedded so it opens offline) and as PNG (Png.fs), from the same description.
/// Not notebook-safe: Plotly.NET 6 needs FSharp.Core 10.1.
module ContrastSeg.Lab.Charts

open System
open System.Globalization
open System.IO
open Plotly.NET
open Plotly.NET.LayoutObjects
open Plotly.NET.TraceObjects
open ContrastSeg.Lab.ChartSpec
open ContrastSeg.Lab.Results

/// The HTML renderer of the chart descriptions.
module Html =
    let private color (c: Rgb) = Color.fromRGB (int c.R) (int c.G) (int c.B)

    let private grid = Color.fromRGB 220 220 220

    /// Writes the chart as a page with plotly.js embedded. Plotly.NET names the chart's element with a new GUID each
    /// time; it is renamed after the file, so the same description gives the same bytes (a rebuilt report is compared
    /// byte for byte with the one before).
    let save (path: string) (chart: GenericChart) =
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
        let html =
            chart
            |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.Full))
            |> GenericChart.toEmbeddedHTML
        let found = Text.RegularExpressions.Regex.Match(html, "<div id=\"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\"")
        if not found.Success then failwithf "Plotly.NET wrote no chart element with a GUID id (has its HTML changed?): %s not written" path
        let guid = found.Groups.[1].Value
        let id = "chart-" + Path.GetFileNameWithoutExtension path
        File.WriteAllText(path, html.Replace(guid, id).Replace(guid.Replace("-", ""), id.Replace("-", "")))

    /// The title with its notes as smaller lines below it, the top margin they need, the page size, a white plot area
    /// (a cell that was not measured shows blank, as in the PNG).
    let private titled (title: string) (notes: string list) (width: int, height: int) (chart: GenericChart) =
        let text = match notes with [] -> title | _ -> title + "<br><sup>" + String.Join("<br>", notes) + "</sup>"
        chart
        |> Chart.withTitle text
        |> Chart.withMarginSize (Top = 70 + 20 * notes.Length)
        |> Chart.withSize (width, height)
        |> Chart.withLayout (Layout.init (PlotBGColor = Color.fromKeyword ColorKeyword.White))

    /// Writes a heatmap: cells coloured on the description's scale (zmin = -Limit, zmax = +Limit, so 0 is the neutral
    /// stop), each cell's text written in it, a titled colour bar with the description's ticks, rows top to bottom.
    let heatmap (path: string) (spec: Heatmap) =
        let spec = checkHeatmap spec
        let z = spec.Values |> List.map (List.map (function Some v -> v :> IConvertible | None -> null))
        let trace =
            Trace2D.initHeatmap (
                Trace2DStyle.Heatmap(
                    X = spec.Columns, Y = spec.Rows, Z = z, ZMin = -spec.Scale.Limit, ZMax = spec.Scale.Limit,
                    ColorScale = StyleParam.Colorscale.Custom(Diverging.plotlyStops spec.Scale |> List.map (fun (f, c) -> f, color c)),
                    ColorBar = ColorBar.init (Title = Title.init (Text = String.Join("<br>", spec.ColorBarTitle)),
                                              TickVals = (spec.ColorBarTicks |> List.map fst), TickText = (spec.ColorBarTicks |> List.map snd)),
                    TextTemplate = "%{text}", TextFont = Font.init (Size = 12.0), HoverTemplate = "%{y}<br>%{x}<br>%{text}<extra></extra>", XGap = 2, YGap = 2))
        // Plotly.NET takes a heatmap's text only as one list; plotly.js wants one per cell, [row][column].
        trace.SetProperty("text", spec.CellText |> List.map (List.map (fun lines -> String.Join("<br>", lines))))
        // The PNG's size plus room for Plotly's margins: cells big enough for their text.
        let png = Png.heatmapLayout spec
        GenericChart.ofTraceObject true trace
        |> titled spec.Title spec.Notes (png.Width + 120, png.Height + 80)
        |> Chart.withXAxis (LinearAxis.init (Title = Title.init (Text = spec.XTitle), AxisType = StyleParam.AxisType.Category))
        |> Chart.withYAxis (LinearAxis.init (Title = Title.init (Text = spec.YTitle), AxisType = StyleParam.AxisType.Category, AutoRange = StyleParam.AutoRange.Reversed))
        |> save path

    /// Writes a bar chart: bars where the PNG puts them (ChartSpec.barPlacement), the text above each whisker, the
    /// value axis from 0 to ChartSpec.barAxisTop, what the whiskers are under the title.
    let bars (path: string) (spec: Bars) =
        let spec = checkBars spec
        let placed = barPlacement spec
        let png = Png.barsLayout spec
        // Category labels as the PNG shows them: wrapped at commas when it keeps them upright (Plotly turns long ones itself).
        let shown =
            if png.XLabels |> List.forall (fun l -> l.Angle = 0.0f) then spec.Categories |> List.map (fun c -> String.Join("<br>", c.Split(',') |> Array.map (fun p -> p.Trim())))
            else spec.Categories
        let traces =
            spec.Series |> List.mapi (fun si s ->
                let mine = placed |> List.filter (fun p -> p.Series = si)
                let bar (p: BarPlace) = (List.item p.Category s.Bars).Value
                Trace2D.initBar (
                    Trace2DStyle.Bar(
                        Name = s.Name, X = (mine |> List.map (fun p -> List.item p.Category shown)), Y = (mine |> List.map (fun p -> (bar p).Value)),
                        MultiOffset = (mine |> List.map (fun p -> p.Centre - p.Width / 2.0)), MultiWidth = (mine |> List.map (fun p -> p.Width)),
                        Marker = Marker.init (Color = color s.Color),
                        YError = Error.init (Array = (mine |> List.map (fun p -> (bar p).Error)), Color = Color.fromKeyword ColorKeyword.Black,
                                             Visible = (mine |> List.exists (fun p -> (bar p).Error > 0.0))),
                        MultiHoverText = (mine |> List.map (fun p -> (bar p).Label))))
                |> GenericChart.ofTraceObject true)
        let labels =
            placed |> List.map (fun p ->
                let b = (List.item p.Category (List.item p.Series spec.Series).Bars).Value
                Annotation.init (X = float p.Category + p.Centre, Y = b.Value + b.Error, Text = b.Label, ShowArrow = false,
                                 YAnchor = StyleParam.YAnchorPosition.Bottom, YShift = 3))
        Chart.combine traces
        |> titled spec.Title (notesOf spec.Notes spec.Whiskers) (png.Width + 120, png.Height + 80)
        |> Chart.withXAxis (LinearAxis.init (Title = Title.init (Text = spec.XTitle), AxisType = StyleParam.AxisType.Category,
                                             CategoryOrder = StyleParam.CategoryOrder.Array, CategoryArray = shown))
        |> Chart.withYAxisStyle (TitleText = spec.YTitle, MinMax = (0.0, barAxisTop spec 0.08), GridColor = grid)
        |> Chart.withAnnotations labels
        |> save path

    /// Writes a line chart: markers, whiskers, what the whiskers are under the title.
    let lines (path: string) (spec: Lines) =
        let spec = checkLines spec
        spec.Series
        |> List.map (fun s ->
            let pts = s.Points |> List.sortBy (fun (x, _, _) -> x)
            let chart =
                Chart.Line(x = (pts |> List.map (fun (x, _, _) -> x)), y = (pts |> List.map (fun (_, y, _) -> y)), Name = s.Name, ShowMarkers = true,
                           LineColor = color s.Color, MarkerColor = color s.Color)
            if pts |> List.exists (fun (_, _, e) -> e > 0.0) then
                chart |> Chart.withYError (Error.init (Array = (pts |> List.map (fun (_, _, e) -> e)), Color = color s.Color))
            else chart)
        |> Chart.combine
        |> titled spec.Title (notesOf spec.Notes spec.Whiskers) (1000, 600)
        |> Chart.withXAxisStyle (TitleText = spec.XTitle, AxisType = (if spec.LogX then StyleParam.AxisType.Log else StyleParam.AxisType.Linear))
        |> Chart.withYAxisStyle (TitleText = spec.YTitle, GridColor = grid)
        |> save path

/// Writes `<folder>/<name>.html` and `<folder>/<name>.png` from one heatmap description.
let heatmap (folder: string) (name: string) (spec: Heatmap) =
    Html.heatmap (Path.Combine(folder, name + ".html")) spec
    Png.heatmap (Path.Combine(folder, name + ".png")) spec

/// Writes `<folder>/<name>.html` and `<folder>/<name>.png` from one bar chart description.
let bars (folder: string) (name: string) (spec: Bars) =
    Html.bars (Path.Combine(folder, name + ".html")) spec
    Png.bars (Path.Combine(folder, name + ".png")) spec

/// Writes `<folder>/<name>.html` and `<folder>/<name>.png` from one line chart description.
let lines (folder: string) (name: string) (spec: Lines) =
    Html.lines (Path.Combine(folder, name + ".html")) spec
    Png.lines (Path.Combine(folder, name + ".png")) spec

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

/// The methods of these summaries, cross-entropy (the baseline) first, then by name: a method keeps its colour in every chart.
let private methodsOf (cells: Summary list) =
    cells |> List.map (fun c -> c.Method) |> List.distinct |> List.sortBy (fun m -> (if m = "cross-entropy" then 0 else 1), m)

/// What the whiskers of a chart of these summaries are (n is in the legend).
let whiskersOf (cells: Summary list) =
    if cells |> List.exists (fun c -> c.N > 1) then "whiskers: mean ± 1 sample std over seeds (n in the legend; none where n = 1)"
    else "one seed per point (n = 1): no whiskers"

/// mIoU (%) on `split` against the number of labelled images, one line per method, whiskers = std over seeds.
let labelEfficiencySpec (split: string) (summaries: Summary list) : Lines option =
    let cells = summaries |> List.filter (fun s -> s.Study = "label-efficiency")
    let methods = methodsOf cells
    let points m =
        cells |> List.filter (fun c -> c.Method = m)
        |> List.choose (fun c -> labelledCount c.Setting |> Option.map (fun x -> x, 100.0 * c.MeanIoU, 100.0 * c.Std))
        |> List.sortBy (fun (x, _, _) -> x)
    if methods.IsEmpty then None
    else
        Some { Title = sprintf "Label efficiency (%s split)" split; Notes = []; XTitle = "labelled images (log scale)"; YTitle = axisTitle split
               LogX = true; Whiskers = whiskersOf cells
               Series = methods |> List.mapi (fun i m -> { Name = legend m cells; Color = palette.[i % palette.Length]; Points = points m }) }

let labelEfficiency (folder: string) (split: string) (summaries: Summary list) =
    labelEfficiencySpec split summaries |> Option.iter (lines folder "label-efficiency")

/// Validation mIoU during training against the step, one line per run (learning-curves.html/.png).
let learningCurves (folder: string) (split: string) (curves: (string * (float * float) list) list) =
    if not curves.IsEmpty then
        lines folder "learning-curves"
            { Title = sprintf "Learning curves (seed 0, %s split, checked during training)" split; Notes = []
              XTitle = "training step (fine-tuning after pretraining)"; YTitle = axisTitle split; LogX = false; Whiskers = ""
              Series = curves |> List.mapi (fun i (name, pts) ->
                  { Name = name; Color = palette.[i % palette.Length]; Points = pts |> List.map (fun (x, y) -> x, y, 0.0) }) }

/// One grouped bar chart per study other than label efficiency and the regime map: (study, description).
let ablationSpecs (split: string) (summaries: Summary list) : (string * Bars) list =
    [ for study, cells in summaries |> List.filter (fun s -> s.Study <> "label-efficiency" && s.Study <> "regime") |> List.groupBy (fun s -> s.Study) do
        let settings = cells |> List.map (fun c -> c.Setting) |> List.distinct |> List.sortBy settingOrder
        let methods = methodsOf cells
        let bar m s =
            cells |> List.tryFind (fun c -> c.Method = m && c.Setting = s)
            |> Option.map (fun c -> { Value = 100.0 * c.MeanIoU; Error = 100.0 * c.Std; Label = (100.0 * c.MeanIoU).ToString("F1", CultureInfo.InvariantCulture) })
        study,
        { Title = sprintf "%s (%s split)" study split; Notes = [ "bars: mean over seeds, written above each bar" ]
          XTitle = "setting"; YTitle = axisTitle split; Categories = settings; Whiskers = whiskersOf cells
          Series = methods |> List.mapi (fun i m -> { Name = legend m cells; Color = palette.[i % palette.Length]; Bars = settings |> List.map (bar m) }) } ]

let ablationBars (folder: string) (split: string) (summaries: Summary list) =
    for study, spec in ablationSpecs split summaries do bars folder study spec

/// t-SNE scatter panels (one per model), coloured by class.
let tsne (folder: string) (classNames: string[]) (panels: (string * (float32 * float32 * int)[]) list) =
    panels
    |> List.mapi (fun i (name, pts) ->
        pts
        |> Array.groupBy (fun (_, _, c) -> c)
        |> Array.sortBy fst
        |> Array.map (fun (c, ps) ->
            Chart.Point(x = (ps |> Array.map (fun (x, _, _) -> float x)), y = (ps |> Array.map (fun (_, y, _) -> float y)),
                        Name = sprintf "%s: %s" name (if c < classNames.Length then classNames.[c] else string c), ShowLegend = (i = 0),
                        MarkerColor = (let p = palette.[c % palette.Length] in Color.fromRGB (int p.R) (int p.G) (int p.B))))
        |> Chart.combine
        |> Chart.withTitle name)
    |> Chart.Grid(1, panels.Length)
    |> Chart.withTitle "t-SNE of softmax-input features (sampled pixels)"
    |> Html.save (Path.Combine(folder, "tsne.html"))
    Png.scatter (Path.Combine(folder, "tsne.png")) "t-SNE of softmax-input features (sampled pixels)" classNames panels

/// The regime map: contrastive minus cross-entropy mIoU in points, rows = capacity and step budget, columns = label
/// counts; blue where contrastive is ahead, red where cross-entropy is, white at 0; each cell gives both means, the
/// gain, the verdict and n.
let regimeSpec (split: string) (map: Regime.MapCell list) : Heatmap =
    let rows, columns = Regime.axes map
    let find (capacity, steps) n = map |> List.tryFind (fun c -> c.Capacity = capacity && c.Steps = steps && c.Labelled = n)
    let pct (s: Summary option) = match s with Some s -> (100.0 * s.MeanIoU).ToString("F1", CultureInfo.InvariantCulture) | None -> "-"
    let text (c: Regime.MapCell option) =
        match c with
        | None -> [ "not measured" ]
        | Some c ->
            let n = [ c.CrossEntropy; c.Contrastive ] |> List.choose id |> List.map (fun s -> s.N) |> List.fold min Int32.MaxValue
            let gain = match c.Gain with Some g -> sprintf "%s, %s, " (g.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture)) (Regime.verdict c) | None -> ""
            [ sprintf "%s / %s" (pct c.CrossEntropy) (pct c.Contrastive); sprintf "%sn=%d" gain n ]
    let gains = rows |> List.map (fun r -> columns |> List.map (fun n -> find r n |> Option.bind (fun c -> c.Gain)))
    let limit = gains |> List.concat |> List.choose id |> List.map abs |> List.fold max 1.0 |> niceCeiling
    let fmt (v: float) = v.ToString("+0.##;-0.##;0", CultureInfo.InvariantCulture)
    { Title = sprintf "Contrastive + fine-tuning minus cross-entropy (%s mIoU)" split
      Notes = [ "each cell: cross-entropy / contrastive mIoU (%), then the gain in points, the verdict and n (seeds)"
                "a gain within the larger seed std (or 0.5 points) is a tie" ]
      XTitle = "labelled images"; YTitle = "capacity, step budget"
      Columns = columns |> List.map (sprintf "labelled=%d")
      Rows = rows |> List.map (fun (capacity, steps) -> sprintf "%s, %d steps" capacity steps)
      Values = gains
      CellText = rows |> List.map (fun r -> columns |> List.map (fun n -> text (find r n)))
      Scale = Diverging.redBlue limit
      ColorBarTitle = [ "contrastive minus"; "cross-entropy"; "(mIoU points)" ]
      ColorBarTicks = [ -limit, fmt -limit + " cross-entropy ahead"; -limit / 2.0, fmt (-limit / 2.0); 0.0, "0 equal"
                        limit / 2.0, fmt (limit / 2.0); limit, fmt limit + " contrastive ahead" ] }

/// regime-map.html and regime-map.png.
let regimeMap (folder: string) (split: string) (map: Regime.MapCell list) =
    if not map.IsEmpty then heatmap folder "regime-map" (regimeSpec split map)
