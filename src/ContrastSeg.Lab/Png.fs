/// Small PNG charts drawn with SkiaSharp (no browser needed): lines with error bars, grouped bars,
/// scatter panels. Text uses the system's fonts through fontconfig (DejaVu on Debian).
module ContrastSeg.Lab.Png

open System
open System.IO
open SkiaSharp

/// One series: points (x, y, error), drawn with the given colour.
type Series = { Name: string; Points: (float * float * float) list; Color: SKColor }

let palette =
    [| SKColor(31uy, 119uy, 180uy); SKColor(255uy, 127uy, 14uy); SKColor(44uy, 160uy, 44uy); SKColor(214uy, 39uy, 40uy)
       SKColor(148uy, 103uy, 189uy); SKColor(140uy, 86uy, 75uy); SKColor(227uy, 119uy, 194uy); SKColor(127uy, 127uy, 127uy)
       SKColor(188uy, 189uy, 34uy); SKColor(23uy, 190uy, 207uy); SKColor(0uy, 0uy, 0uy) |]

let private font size = new SKFont(SKTypeface.FromFamilyName("DejaVu Sans") |> Option.ofObj |> Option.defaultValue SKTypeface.Default, size)
let private paint (c: SKColor) width = new SKPaint(Color = c, StrokeWidth = width, IsAntialias = true, Style = SKPaintStyle.Stroke)
let private fill (c: SKColor) = new SKPaint(Color = c, IsAntialias = true, Style = SKPaintStyle.Fill)

let private save (path: string) (surface: SKSurface) =
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
    use image = surface.Snapshot()
    use data = image.Encode(SKEncodedImageFormat.Png, 100)
    use stream = File.Create path
    data.SaveTo stream

let private text (canvas: SKCanvas) (s: string) (x: float32) (y: float32) (size: float32) (align: SKTextAlign) =
    use f = font size
    use p = fill SKColors.Black
    canvas.DrawText(s, x, y, align, f, p)

/// Nice round tick values covering [lo, hi].
let ticks (lo: float) (hi: float) =
    let span = max (hi - lo) 1e-9
    let raw = span / 5.0
    let mag = 10.0 ** floor (log10 raw)
    let step = [ 1.0; 2.0; 2.5; 5.0; 10.0 ] |> List.map (fun m -> m * mag) |> List.find (fun s -> s >= raw)
    [ for k in ceil (lo / step) .. floor (hi / step) -> k * step ]

type private Frame = { L: float32; T: float32; W: float32; H: float32 }

let private axes (canvas: SKCanvas) (fr: Frame) (title: string) (xLabel: string) (yLabel: string) =
    use axis = paint SKColors.Black 1.5f
    canvas.DrawRect(fr.L, fr.T, fr.W, fr.H, axis)
    text canvas title (fr.L + fr.W / 2.0f) (fr.T - 14.0f) 18.0f SKTextAlign.Center
    text canvas xLabel (fr.L + fr.W / 2.0f) (fr.T + fr.H + 42.0f) 14.0f SKTextAlign.Center
    canvas.Save() |> ignore
    canvas.RotateDegrees(-90.0f, fr.L - 48.0f, fr.T + fr.H / 2.0f)
    text canvas yLabel (fr.L - 48.0f) (fr.T + fr.H / 2.0f) 14.0f SKTextAlign.Center
    canvas.Restore()

let private legend (canvas: SKCanvas) (fr: Frame) (items: (string * SKColor) list) =
    items |> List.iteri (fun i (name, color) ->
        let y = fr.T + 18.0f + float32 i * 20.0f
        use p = fill color
        canvas.DrawRect(fr.L + 12.0f, y - 10.0f, 14.0f, 10.0f, p)
        text canvas name (fr.L + 32.0f) y 13.0f SKTextAlign.Left)

/// Lines with markers and error bars; x on a log scale when `logX`.
let lines (path: string) (title: string) (xLabel: string) (yLabel: string) (logX: bool) (series: Series list) =
    use surface = SKSurface.Create(SKImageInfo(900, 560))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    let fr = { L = 80.0f; T = 50.0f; W = 780.0f; H = 420.0f }
    let all = series |> List.collect (fun s -> s.Points)
    if not all.IsEmpty then
        let tx x = if logX then log10 x else x
        let xs = all |> List.map (fun (x, _, _) -> tx x)
        let ys = all |> List.collect (fun (_, y, e) -> [ y - e; y + e ])
        let x0, x1 = List.min xs, List.max xs
        let pad = max ((x1 - x0) * 0.05) 0.1
        let x0, x1 = x0 - pad, x1 + pad
        let yt = ticks (max 0.0 (List.min ys - 2.0)) (List.max ys + 2.0)
        let y0, y1 = List.head yt, List.last yt |> max (List.max ys + 1.0)
        let px x = fr.L + float32 ((tx x - x0) / (x1 - x0)) * fr.W
        let py y = fr.T + fr.H - float32 ((y - y0) / (y1 - y0)) * fr.H
        use grid = paint (SKColor(220uy, 220uy, 220uy)) 1.0f
        for y in yt do
            canvas.DrawLine(fr.L, py y, fr.L + fr.W, py y, grid)
            text canvas (sprintf "%g" y) (fr.L - 8.0f) (py y + 4.0f) 12.0f SKTextAlign.Right
        // Every x of a few points is labelled; a long curve (learning curves) gets round ticks instead.
        let distinctX = all |> List.map (fun (x, _, _) -> x) |> List.distinct |> List.sort
        let xLabels = if distinctX.Length <= 12 || logX then distinctX else ticks (List.min distinctX) (List.max distinctX) |> List.filter (fun x -> x >= List.min distinctX && x <= List.max distinctX)
        for x in xLabels do
            text canvas (sprintf "%g" x) (px x) (fr.T + fr.H + 18.0f) 12.0f SKTextAlign.Center
        for s in series do
            use line = paint s.Color 2.5f
            use dot = fill s.Color
            let pts = s.Points |> List.sortBy (fun (x, _, _) -> x)
            pts |> List.pairwise |> List.iter (fun ((xa, ya, _), (xb, yb, _)) -> canvas.DrawLine(px xa, py ya, px xb, py yb, line))
            for (x, y, e) in pts do
                canvas.DrawCircle(px x, py y, 5.0f, dot)
                if e > 0.0 then
                    canvas.DrawLine(px x, py (y - e), px x, py (y + e), line)
                    canvas.DrawLine(px x - 5.0f, py (y - e), px x + 5.0f, py (y - e), line)
                    canvas.DrawLine(px x - 5.0f, py (y + e), px x + 5.0f, py (y + e), line)
        legend canvas fr (series |> List.map (fun s -> s.Name, s.Color))
    axes canvas fr title xLabel yLabel
    save path surface

/// Grouped bars (one group per category, one bar per series) with error bars.
let bars (path: string) (title: string) (yLabel: string) (categories: string list) (series: (string * SKColor * (string -> (float * float) option)) list) =
    use surface = SKSurface.Create(SKImageInfo(900, 560))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    let fr = { L = 80.0f; T = 50.0f; W = 780.0f; H = 420.0f }
    let values = [ for c in categories do for (_, _, get) in series do match get c with Some (v, e) -> yield v + e | None -> () ]
    let yt = ticks 0.0 (if values.IsEmpty then 1.0 else List.max values + 2.0)
    let y1 = List.last yt |> max (if values.IsEmpty then 1.0 else List.max values)
    let py y = fr.T + fr.H - float32 (y / y1) * fr.H
    use grid = paint (SKColor(220uy, 220uy, 220uy)) 1.0f
    for y in yt do
        canvas.DrawLine(fr.L, py y, fr.L + fr.W, py y, grid)
        text canvas (sprintf "%g" y) (fr.L - 8.0f) (py y + 4.0f) 12.0f SKTextAlign.Right
    let groupW = fr.W / float32 (max 1 categories.Length)
    let barW = groupW * 0.8f / float32 (max 1 series.Length)
    categories |> List.iteri (fun gi c ->
        let gx = fr.L + float32 gi * groupW + groupW * 0.1f
        text canvas c (gx + groupW * 0.4f) (fr.T + fr.H + 18.0f) 12.0f SKTextAlign.Center
        series |> List.iteri (fun si (_, color, get) ->
            match get c with
            | Some (v, e) ->
                let x = gx + float32 si * barW
                use p = fill color
                canvas.DrawRect(x, py v, barW * 0.92f, fr.T + fr.H - py v, p)
                use err = paint SKColors.Black 1.5f
                if e > 0.0 then canvas.DrawLine(x + barW * 0.46f, py (v - e), x + barW * 0.46f, py (v + e), err)
                text canvas (sprintf "%.1f" v) (x + barW * 0.46f) (py (v + e) - 4.0f) 11.0f SKTextAlign.Center
            | None -> ()))
    legend canvas fr (series |> List.map (fun (n, c, _) -> n, c))
    axes canvas fr title "" yLabel
    save path surface

/// A table of coloured cells: `values.[row].[column]` (None: not measured), red below 0, blue above,
/// white at 0 and full colour at +-`scale`; each cell shows `label row column`.
let heatmap (path: string) (title: string) (rows: string list) (columns: string list) (values: float option list list)
            (label: int -> int -> string) (scale: float) =
    let cellW, cellH, top = 200.0f, 56.0f, 100.0f
    let left = 20.0f + 7.5f * float32 (rows |> List.map String.length |> List.fold max 10)
    let width = max 700.0f (left + cellW * float32 columns.Length + 20.0f)
    use surface = SKSurface.Create(SKImageInfo(int width, int (top + cellH * float32 rows.Length) + 30))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    title.Split('\n') |> Array.iteri (fun i line -> text canvas line (width / 2.0f) (30.0f + 22.0f * float32 i) (if i = 0 then 18.0f else 13.0f) SKTextAlign.Center)
    columns |> List.iteri (fun j c -> text canvas c (left + cellW * (float32 j + 0.5f)) (top - 14.0f) 13.0f SKTextAlign.Center)
    let shade (v: float) =
        let t = min 1.0 (abs v / max scale 1e-9)
        let towards (c: byte) = byte (255.0 - t * (255.0 - float c))
        if v < 0.0 then SKColor(towards 214uy, towards 39uy, towards 40uy) else SKColor(towards 31uy, towards 119uy, towards 180uy)
    use border = paint (SKColor(160uy, 160uy, 160uy)) 1.0f
    rows |> List.iteri (fun i r ->
        let y = top + cellH * float32 i
        text canvas r (left - 10.0f) (y + cellH / 2.0f + 5.0f) 13.0f SKTextAlign.Right
        columns |> List.iteri (fun j _ ->
            let x = left + cellW * float32 j
            match values |> List.tryItem i |> Option.bind (List.tryItem j) |> Option.flatten with
            | Some v ->
                use p = fill (shade v)
                canvas.DrawRect(x, y, cellW, cellH, p)
            | None -> ()
            canvas.DrawRect(x, y, cellW, cellH, border)
            text canvas (label i j) (x + cellW / 2.0f) (y + cellH / 2.0f + 5.0f) 12.0f SKTextAlign.Center))
    save path surface

/// Side-by-side scatter panels of 2-D points coloured by class.
let scatter (path: string) (title: string) (classNames: string[]) (panels: (string * (float32 * float32 * int)[]) list) =
    let panelW, panelH = 520, 520
    use surface = SKSurface.Create(SKImageInfo(panelW * panels.Length + 180, panelH + 80))
    let canvas = surface.Canvas
    canvas.Clear SKColors.White
    text canvas title (float32 (panelW * panels.Length) / 2.0f) 28.0f 18.0f SKTextAlign.Center
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
        text canvas name (fr.L + fr.W / 2.0f) (fr.T + fr.H + 24.0f) 15.0f SKTextAlign.Center)
    let lx = float32 (panelW * panels.Length + 10)
    classNames |> Array.iteri (fun c name ->
        use p = fill palette.[c % palette.Length]
        canvas.DrawCircle(lx + 6.0f, 80.0f + float32 c * 22.0f, 6.0f, p)
        text canvas name (lx + 18.0f) (85.0f + float32 c * 22.0f) 13.0f SKTextAlign.Left)
    save path surface
