/// The PNG renderer of the chart descriptions (ChartSpec), drawn with SkiaSharp (no browser needed), and t-SNE
/// scatter panels. Each chart is laid out first (a pure function of the description and the font's measurements,
/// which the tests check: labels apart, text inside the frame), then drawn from that layout.
/// Text uses the system's fonts through fontconfig (DejaVu on Debian).
module ContrastSeg.Lab.Png

open System
open System.IO
open SkiaSharp
open ContrastSeg.Lab.ChartSpec

let sk (c: Rgb) = SKColor(c.R, c.G, c.B)

/// The series colours as SkiaSharp colours.
let palette = ChartSpec.palette |> Array.map sk

let private typeface = lazy (SKTypeface.FromFamilyName("DejaVu Sans") |> Option.ofObj |> Option.defaultValue SKTypeface.Default)
let private font size = new SKFont(typeface.Force(), size)
let private paint (c: SKColor) width = new SKPaint(Color = c, StrokeWidth = width, IsAntialias = true, Style = SKPaintStyle.Stroke)
let private fill (c: SKColor) = new SKPaint(Color = c, IsAntialias = true, Style = SKPaintStyle.Fill)

/// Width of `s` at `size` points, in pixels.
let textWidth (size: float32) (s: string) =
    use f = font size
    f.MeasureText s

/// Ascent (above the baseline, positive) and descent (below) of the font at `size`.
let private extent (size: float32) =
    use f = font size
    -f.Metrics.Ascent, f.Metrics.Descent

let private lineSpacing (size: float32) = size * 1.25f

/// A piece of text where it is drawn: its lines, the anchor (first line's baseline at X, Y, aligned there), the
/// rotation about the anchor in degrees (SkiaSharp's sense: negative turns counter-clockwise on screen), and the
/// corners of the box it covers on the canvas.
type Placed =
    { Lines: string list; X: float32; Y: float32; Angle: float32; Align: SKTextAlign; Size: float32; Corners: SKPoint[] }

/// Places `lines` at (x, y) with the rotation and alignment given, measuring the box it covers.
let place (lines: string list) (size: float32) (align: SKTextAlign) (angle: float32) (x: float32) (y: float32) =
    let w = lines |> List.map (textWidth size) |> List.fold max 0.0f
    let ascent, descent = extent size
    let x0 = match align with SKTextAlign.Left -> 0.0f | SKTextAlign.Right -> -w | _ -> -w / 2.0f
    let y0, y1 = -ascent, float32 (max 0 (lines.Length - 1)) * lineSpacing size + descent
    let r = float angle * Math.PI / 180.0
    let c, s = float32 (cos r), float32 (sin r)
    let corner (px: float32) (py: float32) = SKPoint(x + px * c - py * s, y + px * s + py * c)
    { Lines = lines; X = x; Y = y; Angle = angle; Align = align; Size = size
      Corners = [| corner x0 y0; corner (x0 + w) y0; corner (x0 + w) y1; corner x0 y1 |] }

/// The same text moved by (dx, dy).
let private shift (dx: float32) (dy: float32) (p: Placed) =
    { p with X = p.X + dx; Y = p.Y + dy; Corners = p.Corners |> Array.map (fun q -> SKPoint(q.X + dx, q.Y + dy)) }

let private top (p: Placed) = p.Corners |> Array.map (fun q -> q.Y) |> Array.min
let private bottom (p: Placed) = p.Corners |> Array.map (fun q -> q.Y) |> Array.max
let private left (p: Placed) = p.Corners |> Array.map (fun q -> q.X) |> Array.min
let private right (p: Placed) = p.Corners |> Array.map (fun q -> q.X) |> Array.max

let private draw (canvas: SKCanvas) (color: SKColor) (p: Placed) =
    use f = font p.Size
    use ink = fill color
    canvas.Save() |> ignore
    if p.Angle <> 0.0f then canvas.RotateDegrees(p.Angle, p.X, p.Y)
    p.Lines |> List.iteri (fun i line -> canvas.DrawText(line, p.X, p.Y + float32 i * lineSpacing p.Size, p.Align, f, ink))
    canvas.Restore()

let private save (path: string) (surface: SKSurface) =
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
    use image = surface.Snapshot()
    use data = image.Encode(SKEncodedImageFormat.Png, 100)
    use stream = File.Create path
    data.SaveTo stream

/// The plot area.
type Frame =
    { L: float32; T: float32; W: float32; H: float32 }
    member f.Bottom = f.T + f.H
    member f.Right = f.L + f.W

/// The title (18 pt) and its notes (13 pt) centred on `cx`, from y = 30 down; returns them and the y below them.
let private titleBlock (title: string) (notes: string list) (cx: float32) =
    let t = place [ title ] 18.0f SKTextAlign.Center 0.0f cx 30.0f
    let n = notes |> List.mapi (fun i line -> place [ line ] 13.0f SKTextAlign.Center 0.0f cx (52.0f + 18.0f * float32 i))
    t :: n, (if notes.IsEmpty then 44.0f else 52.0f + 18.0f * float32 (notes.Length - 1) + 8.0f)

/// A legend to the right of the frame: a swatch and the name per item; returns its items and its width.
/// The canvas width that holds `width` of content and the title block (centred on the canvas).
let private widthFor (titles: Placed list) (width: float32) =
    titles |> List.map (fun t -> right t - left t + 40.0f) |> List.fold max width

let private legendAt (x: float32) (y: float32) (names: string list) =
    let items = names |> List.mapi (fun i n -> place [ n ] 13.0f SKTextAlign.Left 0.0f (x + 20.0f) (y + 14.0f + 20.0f * float32 i))
    items, 20.0f + (names |> List.map (textWidth 13.0f) |> List.fold max 0.0f)

let private drawLegend (canvas: SKCanvas) (items: Placed list) (colors: SKColor list) =
    for item, color in List.zip items colors do
        use p = fill color
        canvas.DrawRect(item.X - 20.0f, item.Y - 10.0f, 14.0f, 10.0f, p)
        draw canvas SKColors.Black item

/// Where everything of a bar chart goes.
type BarsLayout =
    { Width: int
      Height: int
      Frame: Frame
      /// The value axis runs from 0 to Top.
      Top: float
      Ticks: float list
      Titles: Placed list
      /// One per category, in order.
      XLabels: Placed list
      XTitle: Placed option
      YTitle: Placed
      /// (series, rectangle, bar) of every bar drawn, and the text above it.
      Bars: (int * SKRect * Bar * Placed) list
      Legend: Placed list }

let private labelSize, valueSize = 12.0f, 11.0f

/// Lays out a bar chart: the frame widens with the number of categories so bars and their values fit side by side;
/// category labels wrap at commas, or turn 45 or 90 degrees when even a wrapped label is wider than its group;
/// the value axis leaves room above the tallest whisker for its text.
let barsLayout (spec: Bars) =
    let spec = checkBars spec
    let n = max 1 spec.Categories.Length
    let placed = barPlacement spec
    let maxPresent = placed |> List.countBy (fun p -> p.Category) |> List.map snd |> List.fold max 1
    let ascent, descent = extent labelSize
    let labelH = ascent + descent
    let valueW = spec.Series |> List.collect (fun s -> s.Bars |> List.choose id |> List.map (fun b -> textWidth valueSize b.Label)) |> List.fold max 0.0f
    let slot = max (valueW + 6.0f) 14.0f // a bar slot holds its value text
    let groupMin = max (slot * float32 maxPresent / 0.8f) (labelH + 8.0f)
    let wrapped = spec.Categories |> List.map (fun c -> c.Split(',') |> Array.map (fun p -> p.Trim()) |> List.ofArray)
    let wrapW = wrapped |> List.collect id |> List.map (textWidth labelSize) |> List.fold max 0.0f
    // Upright wrapped labels read best: widen the frame for them up to 1000 px, past that turn them.
    let frameW = max 600.0f (float32 n * groupMin) |> max (if float32 n * (wrapW + 10.0f) <= 1000.0f then float32 n * (wrapW + 10.0f) else 0.0f)
    let groupW = frameW / float32 n
    // Rotated labels are parallel: neighbours sit groupW * sin(angle) apart across the text.
    let angle = if wrapW <= groupW - 6.0f then 0.0f elif groupW * 0.7071f >= labelH + 4.0f then -45.0f else -90.0f
    let titles0, titleBottom = titleBlock spec.Title (notesOf spec.Notes spec.Whiskers) 0.0f
    let fr0 = { L = 80.0f; T = titleBottom + 16.0f; W = frameW; H = 400.0f }
    let labelAt i (lines: string list) =
        let cx = fr0.L + groupW * (float32 i + 0.5f)
        let p =
            if angle = 0.0f then place lines labelSize SKTextAlign.Center 0.0f cx 0.0f
            else place [ String.Join(", ", lines) ] labelSize SKTextAlign.Right angle cx 0.0f
        // The text's top (or its right end, turned) just below the frame and centred on the group.
        let p = shift 0.0f (fr0.Bottom + 6.0f - top p) p
        if angle = -90.0f then shift (cx - (left p + right p) / 2.0f) 0.0f p else p
    let labels0 = wrapped |> List.mapi labelAt
    // A long first label turned 45 degrees reaches left of the frame: move the frame right to keep it on the canvas.
    let dx = max 0.0f (6.0f - (labels0 |> List.map left |> List.fold min 0.0f))
    let fr = { fr0 with L = fr0.L + dx }
    let labels = labels0 |> List.map (shift dx 0.0f)
    let valueAscent, valueDescent = extent valueSize
    let headroom = float ((10.0f + valueAscent + valueDescent) / fr.H)
    let topValue = barAxisTop spec headroom
    let py (v: float) = fr.Bottom - float32 (v / topValue) * fr.H
    let bars =
        placed |> List.map (fun p ->
            let bar = (List.item p.Category (List.item p.Series spec.Series).Bars).Value
            let cx = fr.L + groupW * (float32 p.Category + 0.5f + float32 p.Centre)
            let half = groupW * float32 p.Width / 2.0f
            let label = place [ bar.Label ] valueSize SKTextAlign.Center 0.0f cx (py (bar.Value + bar.Error) - 4.0f - valueDescent)
            p.Series, SKRect(cx - half, py bar.Value, cx + half, fr.Bottom), bar, label)
    let xTitle =
        if String.IsNullOrWhiteSpace spec.XTitle then None
        else Some(place [ spec.XTitle ] 14.0f SKTextAlign.Center 0.0f (fr.L + fr.W / 2.0f) ((labels |> List.map bottom |> List.fold max fr.Bottom) + 24.0f))
    let yTitle = place [ spec.YTitle ] 14.0f SKTextAlign.Center -90.0f (fr.L - 52.0f) (fr.T + fr.H / 2.0f)
    let legend, legendW = legendAt (fr.Right + 20.0f) fr.T (spec.Series |> List.map (fun s -> s.Name))
    let width = widthFor titles0 (fr.Right + 20.0f + legendW + 20.0f)
    let height = (match xTitle with Some t -> bottom t | None -> labels |> List.map bottom |> List.fold max fr.Bottom) + 14.0f
    { Width = int (ceil width); Height = int (ceil height); Frame = fr; Top = topValue; Ticks = ticks 0.0 topValue
      Titles = titles0 |> List.map (shift (width / 2.0f) 0.0f); XLabels = labels; XTitle = xTitle; YTitle = yTitle
      Bars = bars; Legend = legend }

let private drawAxes (canvas: SKCanvas) (fr: Frame) (gridLines: (float32 * string) list) =
    use grid = paint (SKColor(220uy, 220uy, 220uy)) 1.0f
    for y, label in gridLines do
        canvas.DrawLine(fr.L, y, fr.Right, y, grid)
        draw canvas SKColors.Black (place [ label ] 12.0f SKTextAlign.Right 0.0f (fr.L - 8.0f) (y + 4.0f))

/// Draws a bar chart into `path`.
let bars (path: string) (spec: Bars) =
    let lay = barsLayout spec
    use surface = SKSurface.Create(SKImageInfo(lay.Width, lay.Height))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    let fr = lay.Frame
    let py (v: float) = fr.Bottom - float32 (v / lay.Top) * fr.H
    drawAxes canvas fr (lay.Ticks |> List.map (fun y -> py y, sprintf "%g" y))
    use whisker = paint SKColors.Black 1.5f
    for si, rect, bar, label in lay.Bars do
        use p = fill (sk (List.item si spec.Series).Color)
        canvas.DrawRect(rect, p)
        if bar.Error > 0.0 then
            let cx = rect.MidX
            let lo, hi = py (max 0.0 (bar.Value - bar.Error)), py (bar.Value + bar.Error)
            canvas.DrawLine(cx, lo, cx, hi, whisker)
            canvas.DrawLine(cx - 4.0f, hi, cx + 4.0f, hi, whisker)
            canvas.DrawLine(cx - 4.0f, lo, cx + 4.0f, lo, whisker)
        draw canvas SKColors.Black label
    use axis = paint SKColors.Black 1.5f
    canvas.DrawRect(fr.L, fr.T, fr.W, fr.H, axis)
    for l in lay.XLabels do draw canvas SKColors.Black l
    lay.XTitle |> Option.iter (draw canvas SKColors.Black)
    draw canvas SKColors.Black lay.YTitle
    for t in lay.Titles do draw canvas SKColors.Black t
    drawLegend canvas lay.Legend (spec.Series |> List.map (fun s -> sk s.Color))
    save path surface

/// Draws a line chart into `path`: markers, whiskers, x on a log scale when the description says so.
let lines (path: string) (spec: Lines) =
    let spec = checkLines spec
    let titles0, titleBottom = titleBlock spec.Title (notesOf spec.Notes spec.Whiskers) 0.0f
    let fr = { L = 80.0f; T = titleBottom + 16.0f; W = 720.0f; H = 420.0f }
    let legend, legendW = legendAt (fr.Right + 20.0f) fr.T (spec.Series |> List.map (fun s -> s.Name))
    let width = widthFor titles0 (fr.Right + 40.0f + legendW)
    use surface = SKSurface.Create(SKImageInfo(int (ceil width), int (fr.Bottom + 64.0f)))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    let all = spec.Series |> List.collect (fun s -> s.Points)
    if not all.IsEmpty then
        let tx x = if spec.LogX then log10 x else x
        let xs = all |> List.map (fun (x, _, _) -> tx x)
        let ys = all |> List.collect (fun (_, y, e) -> [ y - e; y + e ])
        let x0, x1 = List.min xs, List.max xs
        let pad = max ((x1 - x0) * 0.05) 0.1
        let x0, x1 = x0 - pad, x1 + pad
        // The axis ends on ticks outside the lowest and highest whisker, so no point or whisker leaves the frame.
        let lo, hi = max 0.0 (List.min ys - 1.0), List.max ys + 1.0
        let step = tickStep lo hi
        let y0, y1 = floor (lo / step) * step, ceil (hi / step) * step
        let yt = ticks y0 y1
        let px x = fr.L + float32 ((tx x - x0) / (x1 - x0)) * fr.W
        let py y = fr.Bottom - float32 ((y - y0) / (y1 - y0)) * fr.H
        drawAxes canvas fr (yt |> List.map (fun y -> py y, sprintf "%g" y))
        // Every x of a few points is labelled; a long curve (learning curves) gets round ticks instead.
        let distinctX = all |> List.map (fun (x, _, _) -> x) |> List.distinct |> List.sort
        let xLabels = if distinctX.Length <= 12 || spec.LogX then distinctX else ticks (List.min distinctX) (List.max distinctX) |> List.filter (fun x -> x >= List.min distinctX && x <= List.max distinctX)
        for x in xLabels do
            draw canvas SKColors.Black (place [ sprintf "%g" x ] 12.0f SKTextAlign.Center 0.0f (px x) (fr.Bottom + 18.0f))
        for s in spec.Series do
            use line = paint (sk s.Color) 2.5f
            use dot = fill (sk s.Color)
            let pts = s.Points |> List.sortBy (fun (x, _, _) -> x)
            pts |> List.pairwise |> List.iter (fun ((xa, ya, _), (xb, yb, _)) -> canvas.DrawLine(px xa, py ya, px xb, py yb, line))
            for (x, y, e) in pts do
                canvas.DrawCircle(px x, py y, 5.0f, dot)
                if e > 0.0 then
                    canvas.DrawLine(px x, py (y - e), px x, py (y + e), line)
                    canvas.DrawLine(px x - 5.0f, py (y - e), px x + 5.0f, py (y - e), line)
                    canvas.DrawLine(px x - 5.0f, py (y + e), px x + 5.0f, py (y + e), line)
    use axis = paint SKColors.Black 1.5f
    canvas.DrawRect(fr.L, fr.T, fr.W, fr.H, axis)
    draw canvas SKColors.Black (place [ spec.XTitle ] 14.0f SKTextAlign.Center 0.0f (fr.L + fr.W / 2.0f) (fr.Bottom + 42.0f))
    draw canvas SKColors.Black (place [ spec.YTitle ] 14.0f SKTextAlign.Center -90.0f (fr.L - 52.0f) (fr.T + fr.H / 2.0f))
    for t in titles0 do draw canvas SKColors.Black (shift (width / 2.0f) 0.0f t)
    drawLegend canvas legend (spec.Series |> List.map (fun s -> sk s.Color))
    save path surface

/// Where everything of a heatmap goes.
type HeatmapLayout =
    { Width: int
      Height: int
      Titles: Placed list
      /// (row, column, rectangle) of every cell.
      Cells: (int * int * SKRect) list
      CellTexts: (int * int * Placed) list
      RowLabels: Placed list
      ColumnLabels: Placed list
      XTitle: Placed option
      YTitle: Placed option
      /// The colour bar: -Limit at its bottom, +Limit at its top.
      ColorBar: SKRect
      ColorBarTitle: Placed
      ColorBarTicks: (float32 * Placed) list }

/// Lays out a heatmap: cells wide enough for their text, column labels below, rows top to bottom as listed, the
/// colour bar (titled, with its ticks) to the right.
let heatmapLayout (spec: Heatmap) =
    let spec = checkHeatmap spec
    let cellSize = 12.0f
    let textW = spec.CellText |> List.concat |> List.concat |> List.map (textWidth cellSize) |> List.fold max 0.0f
    let maxLines = spec.CellText |> List.concat |> List.map List.length |> List.fold max 1
    let wrappedColumns = spec.Columns |> List.map (fun c -> c.Split(',') |> Array.map (fun p -> p.Trim()) |> List.ofArray)
    let columnW = wrappedColumns |> List.collect id |> List.map (textWidth 13.0f) |> List.fold max 0.0f
    let cellW = max 140.0f (max (textW + 16.0f) (columnW + 10.0f))
    let cellH = max 48.0f (float32 maxLines * lineSpacing cellSize + 20.0f)
    let rowW = spec.Rows |> List.map (textWidth 13.0f) |> List.fold max 0.0f
    let hasY = not (String.IsNullOrWhiteSpace spec.YTitle)
    let gridL = (if hasY then 40.0f else 16.0f) + rowW + 12.0f
    let titles0, titleBottom = titleBlock spec.Title spec.Notes 0.0f
    let gridT = titleBottom + 16.0f
    let gridW, gridH = cellW * float32 spec.Columns.Length, cellH * float32 spec.Rows.Length
    let cells = [ for i in 0 .. spec.Rows.Length - 1 do
                    for j in 0 .. spec.Columns.Length - 1 ->
                        i, j, SKRect(gridL + cellW * float32 j, gridT + cellH * float32 i, gridL + cellW * float32 (j + 1), gridT + cellH * float32 (i + 1)) ]
    let cellTexts =
        cells |> List.map (fun (i, j, r) ->
            let lines = List.item j (List.item i spec.CellText)
            let p = place lines cellSize SKTextAlign.Center 0.0f r.MidX 0.0f
            i, j, shift 0.0f (r.MidY - (top p + bottom p) / 2.0f) p)
    let rowLabels = spec.Rows |> List.mapi (fun i r -> place [ r ] 13.0f SKTextAlign.Right 0.0f (gridL - 10.0f) (gridT + cellH * (float32 i + 0.5f) + 5.0f))
    let columnLabels = wrappedColumns |> List.mapi (fun j c -> place c 13.0f SKTextAlign.Center 0.0f (gridL + cellW * (float32 j + 0.5f)) (gridT + gridH + 20.0f))
    let labelsBottom = columnLabels |> List.map bottom |> List.fold max (gridT + gridH)
    let xTitle = if String.IsNullOrWhiteSpace spec.XTitle then None else Some(place [ spec.XTitle ] 14.0f SKTextAlign.Center 0.0f (gridL + gridW / 2.0f) (labelsBottom + 24.0f))
    let yTitle = if hasY then Some(place [ spec.YTitle ] 14.0f SKTextAlign.Center -90.0f 22.0f (gridT + gridH / 2.0f)) else None
    let barX = gridL + gridW + 30.0f
    let barTitle = place spec.ColorBarTitle 12.0f SKTextAlign.Left 0.0f barX (gridT + 10.0f)
    let barT = bottom barTitle + 12.0f
    let barRect = SKRect(barX, barT, barX + 18.0f, barT + max 160.0f (gridT + gridH - barT))
    let barY (v: float) = barRect.Bottom - float32 ((v + spec.Scale.Limit) / (2.0 * spec.Scale.Limit)) * barRect.Height
    let barTicks = spec.ColorBarTicks |> List.map (fun (v, label) -> barY v, place [ label ] 12.0f SKTextAlign.Left 0.0f (barRect.Right + 8.0f) (barY v + 4.0f))
    let width = [ right barTitle; yield! barTicks |> List.map (snd >> right) ] |> List.fold max (barRect.Right) |> (+) 16.0f |> max (gridL + gridW + 16.0f) |> widthFor titles0
    let height = [ barRect.Bottom + 10.0f; labelsBottom; (match xTitle with Some t -> bottom t | None -> 0.0f) ] |> List.fold max 0.0f |> (+) 14.0f
    let titles = titles0 |> List.map (shift (width / 2.0f) 0.0f)
    { Width = int (ceil width); Height = int (ceil height); Titles = titles; Cells = cells; CellTexts = cellTexts
      RowLabels = rowLabels; ColumnLabels = columnLabels; XTitle = xTitle; YTitle = yTitle
      ColorBar = barRect; ColorBarTitle = barTitle; ColorBarTicks = barTicks }

/// Draws a heatmap into `path`: each cell in its value's colour on the description's scale (the one the HTML uses).
let heatmap (path: string) (spec: Heatmap) =
    let lay = heatmapLayout spec
    use surface = SKSurface.Create(SKImageInfo(lay.Width, lay.Height))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    // Cells are filled without antialiasing: a cell's pixels are exactly its colour.
    let solid (c: Rgb) = new SKPaint(Color = sk c, IsAntialias = false, Style = SKPaintStyle.Fill)
    use border = paint (SKColor(160uy, 160uy, 160uy)) 1.0f
    for i, j, r in lay.Cells do
        match List.item j (List.item i spec.Values) with
        | Some v ->
            use p = solid (Diverging.colour spec.Scale v)
            canvas.DrawRect(r, p)
        | None -> ()
        canvas.DrawRect(r, border)
    for i, j, t in lay.CellTexts do
        let ink = match List.item j (List.item i spec.Values) with Some v when (Diverging.colour spec.Scale v).Luminance < 0.5 -> SKColors.White | _ -> SKColors.Black
        draw canvas ink t
    let bar = lay.ColorBar
    for y in int bar.Top .. int (ceil bar.Bottom) - 1 do
        let v = spec.Scale.Limit * (2.0 * float ((bar.Bottom - (float32 y + 0.5f)) / bar.Height) - 1.0)
        use p = solid (Diverging.colour spec.Scale v)
        canvas.DrawRect(SKRect(bar.Left, float32 y, bar.Right, float32 (y + 1)), p)
    canvas.DrawRect(bar, border)
    use tick = paint SKColors.Black 1.0f
    for y, label in lay.ColorBarTicks do
        canvas.DrawLine(bar.Right, y, bar.Right + 5.0f, y, tick)
        draw canvas SKColors.Black label
    draw canvas SKColors.Black lay.ColorBarTitle
    for p in lay.Titles @ lay.RowLabels @ lay.ColumnLabels @ (Option.toList lay.XTitle) @ (Option.toList lay.YTitle) do
        draw canvas SKColors.Black p
    save path surface

/// Side-by-side scatter panels of 2-D points coloured by class.
let scatter (path: string) (title: string) (classNames: string[]) (panels: (string * (float32 * float32 * int)[]) list) =
    let panelW, panelH = 520, 520
    use surface = SKSurface.Create(SKImageInfo(panelW * panels.Length + 180, panelH + 80))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    draw canvas SKColors.Black (place [ title ] 18.0f SKTextAlign.Center 0.0f (float32 (panelW * panels.Length) / 2.0f) 28.0f)
    panels |> List.iteri (fun i (name, pts) ->
        let fr = { L = float32 (i * panelW + 20); T = 60.0f; W = float32 (panelW - 40); H = float32 (panelH - 40) }
        if pts.Length > 0 then
            let xs = pts |> Array.map (fun (x, _, _) -> x)
            let ys = pts |> Array.map (fun (_, y, _) -> y)
            let (x0, x1), (y0, y1) = (Array.min xs, Array.max xs), (Array.min ys, Array.max ys)
            for (x, y, c) in pts do
                use p = fill (palette.[c % palette.Length].WithAlpha 170uy)
                canvas.DrawCircle(fr.L + (x - x0) / max (x1 - x0) 1e-6f * fr.W, fr.T + (y - y0) / max (y1 - y0) 1e-6f * fr.H, 3.0f, p)
        use border = paint (SKColor(180uy, 180uy, 180uy)) 1.0f
        canvas.DrawRect(fr.L, fr.T, fr.W, fr.H, border)
        draw canvas SKColors.Black (place [ name ] 15.0f SKTextAlign.Center 0.0f (fr.L + fr.W / 2.0f) (fr.T + fr.H + 24.0f)))
    let lx = float32 (panelW * panels.Length + 10)
    classNames |> Array.iteri (fun c name ->
        use p = fill palette.[c % palette.Length]
        canvas.DrawCircle(lx + 6.0f, 80.0f + float32 c * 22.0f, 6.0f, p)
        draw canvas SKColors.Black (place [ name ] 13.0f SKTextAlign.Left 0.0f (lx + 18.0f) (85.0f + float32 c * 22.0f)))
    save path surface
