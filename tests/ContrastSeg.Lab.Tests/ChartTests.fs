/// The charts: one description rendered as HTML and PNG must agree (colours, sign convention, centred scale), say what
/// they show (colour-bar title, numbers and n in cells, what the whiskers are), and keep their text readable (category
/// labels apart at any number of settings, the tallest bar's value inside the frame).
module ContrastSeg.Lab.Tests.ChartTests

open System
open System.IO
open System.Text.Json
open Expecto
open SkiaSharp
open ContrastSeg.Lab
open ContrastSeg.Lab.ChartSpec
open ContrastSeg.Lab.Results

let private summary = RegimeTests.summary

/// `var data = ...;` and `var layout = ...;` of a Plotly.NET page, parsed.
let private plotly (html: string) (name: string) =
    let line = html.Split('\n') |> Array.map (fun l -> l.Trim()) |> Array.find (fun l -> l.StartsWith("var " + name + " = "))
    JsonDocument.Parse(line.Substring(("var " + name + " = ").Length).TrimEnd(';')).RootElement

/// The colour plotly.js gives `z` from a trace's colorscale, zmin and zmax: linear in RGB between stops. Written
/// here from the HTML alone, not with ChartSpec's function.
let private plotlyColour (trace: JsonElement) (z: float) =
    let zmin, zmax = trace.GetProperty("zmin").GetDouble(), trace.GetProperty("zmax").GetDouble()
    let stops =
        [ for s in trace.GetProperty("colorscale").EnumerateArray() ->
            let parts = s.[1].GetString().Replace("rgba(", "").Replace(")", "").Split(',') |> Array.map (fun p -> float (p.Trim()))
            s.[0].GetDouble(), (parts.[0], parts.[1], parts.[2]) ]
    let f = max 0.0 (min 1.0 ((z - zmin) / (zmax - zmin)))
    let (f0, (r0, g0, b0)), (f1, (r1, g1, b1)) = stops |> List.pairwise |> List.find (fun ((a, _), (b, _)) -> f >= a && f <= b)
    let t = (f - f0) / (f1 - f0)
    r0 + t * (r1 - r0), g0 + t * (g1 - g0), b0 + t * (b1 - b0)

let private near (r: float, g: float, b: float) (c: SKColor) =
    abs (r - float c.Red) <= 2.0 && abs (g - float c.Green) <= 2.0 && abs (b - float c.Blue) <= 2.0

/// Two convex polygons share area (separating axis test; touching within half a pixel does not count).
let private overlap (a: SKPoint[]) (b: SKPoint[]) =
    let axes (p: SKPoint[]) = [ for i in 0 .. p.Length - 1 -> let q, r = p.[i], p.[(i + 1) % p.Length] in SKPoint(-(r.Y - q.Y), r.X - q.X) ]
    let project (axis: SKPoint) (p: SKPoint[]) =
        let len = sqrt (axis.X * axis.X + axis.Y * axis.Y)
        let d = p |> Array.map (fun q -> (q.X * axis.X + q.Y * axis.Y) / len)
        Array.min d, Array.max d
    axes a @ axes b
    |> List.filter (fun ax -> ax.X <> 0.0f || ax.Y <> 0.0f)
    |> List.forall (fun ax ->
        let (a0, a1), (b0, b1) = project ax a, project ax b
        min a1 b1 - max a0 b0 > 0.5f)

let private ys (p: Png.Placed) = p.Corners |> Array.map (fun q -> q.Y)
let private xs (p: Png.Placed) = p.Corners |> Array.map (fun q -> q.X)

/// A bar chart of `n` settings named like the ablations' (long, with commas), two methods, some whiskers.
let private barSpec (n: int) =
    let cats = [ for i in 0 .. n - 1 -> sprintf "labelled=%d,temperature=0.%02d" (if i % 2 = 0 then 10 else 100) i ]
    let bar i k = if (i + k) % 5 = 4 then None else Some { Value = 10.0 + float ((7 * i + 3 * k) % 30); Error = float (i % 3) * 0.8; Label = sprintf "%.1f" (10.0 + float ((7 * i + 3 * k) % 30)) }
    { Title = sprintf "temperature (%d settings)" n; Notes = []; XTitle = "setting"; YTitle = "test mIoU (%)"; Categories = cats
      Whiskers = "whiskers: mean ± 1 sample std over seeds"
      Series = [ for k in 0 .. 1 -> { Name = sprintf "method %d" k; Color = palette.[k]; Bars = [ for i in 0 .. n - 1 -> bar i k ] } ] }

let tests =
    testList "charts" [
        test "a diverging scale is centred at 0: neutral there, blue above, red below, the ends beyond the limit" {
            let s = Diverging.redBlue 4.0
            let neutral = Diverging.colour s 0.0
            Expect.equal neutral (rgb 247 247 247) "neutral at 0"
            for v in [ 0.1; 0.5; 1.0; 2.0; 4.0 ] do
                let up, down = Diverging.colour s v, Diverging.colour s -v
                let margin = if v >= 1.0 then 20 else 0
                Expect.isGreaterThan (int up.B) (int up.R + margin) (sprintf "+%g is blue" v)
                Expect.isGreaterThan (int down.R) (int down.B + margin) (sprintf "-%g is red" v)
            Expect.equal (Diverging.colour s 9.0) (Diverging.colour s 4.0) "clamped above"
            Expect.equal (Diverging.colour s -9.0) (Diverging.colour s -4.0) "clamped below"
            Expect.equal (Diverging.plotlyStops s |> List.find (fun (f, _) -> f = 0.5) |> snd) neutral "Plotly's middle stop is the neutral colour"
            Expect.throwsT<ArgumentException> (fun () -> Diverging.redBlue 0.0 |> ignore) "a scale needs a positive limit"
        }

        test "the regime map's HTML and PNG agree: same colour per cell, blue = contrastive ahead, 0 neutral, titled colour bar, numbers and n in cells" {
            let point n = sprintf "labelled=%d,stem=small,width=0.25,steps=600" n
            let map =
                Regime.cells [ summary (point 10) "cross-entropy" [ 0.10; 0.11; 0.12 ]; summary (point 10) "contrastive+finetune" [ 0.17; 0.18; 0.16 ]
                               summary (point 100) "cross-entropy" [ 0.20; 0.22; 0.18 ]; summary (point 100) "contrastive+finetune" [ 0.17; 0.15; 0.16 ]
                               summary (point 1000) "cross-entropy" [ 0.30 ]; summary (point 1000) "contrastive+finetune" [ 0.30 ]
                               summary (point 2000) "cross-entropy" [ 0.40 ] ]
            let spec = Charts.regimeSpec "test" map
            let folder = Directory.CreateTempSubdirectory("contrastseg-charts-").FullName
            Charts.heatmap folder "map" spec
            let html = File.ReadAllText(Path.Combine(folder, "map.html"))
            let trace = (plotly html "data").[0]
            use png = SKBitmap.Decode(Path.Combine(folder, "map.png"))
            let layout = Png.heatmapLayout spec
            Expect.equal (trace.GetProperty("zmin").GetDouble()) (-(trace.GetProperty("zmax").GetDouble())) "the HTML's scale is centred at 0"
            let gains = [ 6.0; -4.0; 0.0 ]
            for j, gain in List.indexed gains do
                let _, _, rect = layout.Cells |> List.find (fun (i, c, _) -> i = 0 && c = j)
                let pixel = png.GetPixel(int rect.Left + 4, int rect.Top + 4)
                let html = plotlyColour trace gain
                Expect.isTrue (near html pixel) (sprintf "gain %+g: HTML %A, PNG %O" gain html pixel)
                let r, _, b = html
                match sign gain with
                | 1 -> Expect.isGreaterThan b (r + 50.0) "contrastive ahead is blue"
                | -1 -> Expect.isGreaterThan r (b + 50.0) "cross-entropy ahead is red"
                | _ -> Expect.isTrue (near (247.0, 247.0, 247.0) pixel) "0 is the neutral colour"
            // The PNG's colour bar is the HTML's scale, -limit at its bottom to +limit at its top.
            let bar = layout.ColorBar
            let zmax = trace.GetProperty("zmax").GetDouble()
            for y in int bar.Top + 3 .. 7 .. int bar.Bottom - 3 do
                let v = zmax * (2.0 * float ((bar.Bottom - (float32 y + 0.5f)) / bar.Height) - 1.0)
                Expect.isTrue (near (plotlyColour trace v) (png.GetPixel(int bar.MidX, y))) (sprintf "colour bar at %+.2f" v)
            // What the HTML says.
            let colorbar = trace.GetProperty("colorbar")
            Expect.stringContains (colorbar.GetProperty("title").GetProperty("text").GetString()) "mIoU points" "colour bar title"
            let tickText = [ for t in colorbar.GetProperty("ticktext").EnumerateArray() -> t.GetString() ]
            Expect.exists tickText (fun t -> t.Contains "contrastive ahead") "the blue end is named"
            Expect.exists tickText (fun t -> t.Contains "cross-entropy ahead") "the red end is named"
            Expect.equal (trace.GetProperty("texttemplate").GetString()) "%{text}" "cells show their text"
            let texts = [ for row in trace.GetProperty("text").EnumerateArray() do for t in row.EnumerateArray() -> t.GetString() ]
            Expect.contains texts "11.0 / 17.0<br>+6.0, contrastive, n=3" "both means, the gain, the verdict and n"
            Expect.contains texts "30.0 / 30.0<br>0.0, tie, n=1" "a tie at 0"
            Expect.contains texts "40.0 / -<br>n=1" "one side measured"
            let z = trace.GetProperty("z").[0]
            Expect.equal (z.[3].ValueKind) JsonValueKind.Null "a cell without both sides has no colour"
        }

        test "bar charts keep category labels apart and every value inside the frame, at any number of settings" {
            for n in [ 1; 3; 8; 10; 30; 80 ] do
                let spec = barSpec n
                let lay = Png.barsLayout spec
                let fr = lay.Frame
                for a, b in List.allPairs (List.indexed lay.XLabels) (List.indexed lay.XLabels) do
                    if fst a < fst b then
                        Expect.isFalse (overlap (snd a).Corners (snd b).Corners) (sprintf "%d settings: labels %d and %d overlap (angle %g)" n (fst a) (fst b) (snd a).Angle)
                for l in lay.XLabels do
                    Expect.isGreaterThanOrEqual (Array.min (ys l)) fr.Bottom (sprintf "%d settings: label below the frame" n)
                    Expect.isTrue (Array.min (xs l) >= 0.0f && Array.max (xs l) <= float32 lay.Width && Array.max (ys l) <= float32 lay.Height) (sprintf "%d settings: label on the canvas" n)
                let values = lay.Bars |> List.map (fun (_, _, _, label) -> label)
                for v in values do
                    Expect.isGreaterThanOrEqual (Array.min (ys v)) fr.T (sprintf "%d settings: value %A inside the frame's top" n v.Lines)
                    Expect.isTrue (Array.min (xs v) >= fr.L && Array.max (xs v) <= fr.Right) (sprintf "%d settings: value inside the frame's sides" n)
                for a, b in List.allPairs (List.indexed values) (List.indexed values) do
                    if fst a < fst b then
                        Expect.isFalse (overlap (snd a).Corners (snd b).Corners) (sprintf "%d settings: values %A and %A overlap" n (snd a).Lines (snd b).Lines)
                Expect.equal lay.Bars.Length (spec.Series |> List.sumBy (fun s -> s.Bars |> List.choose id |> List.length)) "every bar drawn"
            Expect.isTrue ((Png.barsLayout (barSpec 3)).XLabels |> List.forall (fun l -> l.Angle = 0.0f && l.Lines.Length = 2)) "few settings: upright, wrapped at the comma"
            Expect.isTrue ((Png.barsLayout (barSpec 30)).XLabels |> List.forall (fun l -> l.Angle <> 0.0f)) "many settings: turned"
        }

        test "the tallest bar's value stays inside the frame" {
            for top, err in [ 24.7, 0.0; 99.0, 0.9; 100.0, 0.0; 3.0, 2.9; 0.04, 0.0 ] do
                let spec =
                    { barSpec 2 with
                        Series = [ { Name = "m"; Color = palette.[0]; Bars = [ Some { Value = top; Error = err; Label = sprintf "%.1f" top }; Some { Value = top / 2.0; Error = 0.0; Label = "x" } ] } ] }
                let lay = Png.barsLayout spec
                let _, rect, _, label = lay.Bars |> List.maxBy (fun (_, _, b, _) -> b.Value)
                Expect.isGreaterThanOrEqual (Array.min (ys label)) lay.Frame.T (sprintf "%g ± %g: the value's text is inside" top err)
                Expect.isLessThanOrEqual (Array.max (ys label)) rect.Top (sprintf "%g ± %g: above its bar" top err)
                Expect.isGreaterThanOrEqual lay.Top (top + err) "the axis reaches the whisker"
        }

        test "a bar chart names its whiskers in both files and refuses whiskers it does not explain" {
            let spec = barSpec 4
            let folder = Directory.CreateTempSubdirectory("contrastseg-charts-").FullName
            Charts.bars folder "bars" spec
            let html = File.ReadAllText(Path.Combine(folder, "bars.html"))
            let layout = plotly html "layout"
            Expect.stringContains (layout.GetProperty("title").GetProperty("text").GetString()) spec.Whiskers "the HTML title says what the whiskers are"
            Expect.exists (Png.barsLayout spec).Titles (fun t -> t.Lines = [ spec.Whiskers ]) "so does the PNG"
            let annotations = [ for a in layout.GetProperty("annotations").EnumerateArray() -> a.GetProperty("text").GetString() ]
            let labels = spec.Series |> List.collect (fun s -> s.Bars |> List.choose id |> List.map (fun b -> b.Label))
            Expect.equal (List.sort annotations) (List.sort labels) "the HTML writes the PNG's value over every bar"
            Expect.equal (layout.GetProperty("yaxis").GetProperty("range").[0].GetDouble()) 0.0 "bars start at 0"
            Expect.isTrue (File.Exists(Path.Combine(folder, "bars.png"))) "PNG written"
            Expect.throwsT<ArgumentException> (fun () -> Charts.bars folder "unexplained" { spec with Whiskers = "" }) "whiskers without a meaning"
        }

        test "the ablation charts come from the summaries: one colour per method in every chart, n in the legend, whiskers named" {
            let row study setting meth seed v =
                { Study = study; Setting = setting; Method = meth; Seed = seed; CellKey = sprintf "%s.%s.%s.%d" study setting meth seed; Stages = [||]
                  MeanIoU = v; PixelAccuracy = 0.0; Extras = Collections.Generic.Dictionary(); Settings = Collections.Generic.Dictionary()
                  WallSeconds = 0.0; Machine = ""; Numerics = null; Provenance = null; Finished = DateTimeOffset.UnixEpoch
                  ValidationCurve = None; FeatureSpace = None }
            let rows =
                [ for seed in 0 .. 2 do
                    yield row "temperature" "labelled=10,temperature=0.1" "contrastive+finetune" seed (0.11 + 0.01 * float seed)
                    yield row "temperature" "labelled=10,reference" "cross-entropy" seed 0.10
                    yield row "finetune-lr" "labelled=10,reference" "cross-entropy" seed 0.10
                    yield row "finetune-lr" "labelled=10,finetune-lr=0.1" "contrastive+finetune" seed 0.12 ]
            let specs = Charts.ablationSpecs "test" (summarise rows)
            Expect.equal (specs |> List.map fst |> List.sort) [ "finetune-lr"; "temperature" ] "one chart per study"
            for _, spec in specs do
                Expect.equal (spec.Series |> List.map (fun s -> s.Name, s.Color)) [ "cross-entropy (n=3 seeds)", palette.[0]; "contrastive+finetune (n=3 seeds)", palette.[1] ] "same colour per method"
                Expect.stringContains spec.Whiskers "std" "whiskers named"
            let temperature = specs |> List.find (fun (s, _) -> s = "temperature") |> snd
            let bar = temperature.Series.[1].Bars |> List.choose id |> List.exactlyOne
            Expect.floatClose Accuracy.medium bar.Error 1.0 "whisker = std in points"
            Expect.equal bar.Label "12.0" "the mean written over the bar"
        }
    ]
