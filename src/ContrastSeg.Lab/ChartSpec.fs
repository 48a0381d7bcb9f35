/// Chart descriptions that both renderers read: Plotly HTML (Charts.fs) and PNG (Png.fs). Colours, scales, titles,
/// labels and what the whiskers mean are decided here once, so the two files of a chart cannot tell different stories.
/// Plain F# (no Plotly, no SkiaSharp).
module ContrastSeg.Lab.ChartSpec

open System

/// An sRGB colour.
[<Struct>]
type Rgb =
    { R: byte; G: byte; B: byte }
    /// Relative luminance in [0, 1] (sRGB primaries, no gamma): picks black or white text on a cell.
    member c.Luminance = (0.299 * float c.R + 0.587 * float c.G + 0.114 * float c.B) / 255.0

let rgb (r: int) (g: int) (b: int) = { R = byte r; G = byte g; B = byte b }

/// Series colours, in order (Plotly's and matplotlib's default qualitative palette).
let palette =
    [| rgb 31 119 180; rgb 255 127 14; rgb 44 160 44; rgb 214 39 40; rgb 148 103 189; rgb 140 86 75
       rgb 227 119 194; rgb 127 127 127; rgb 188 189 34; rgb 23 190 207; rgb 0 0 0 |]

/// A colour scale for signed values centred at 0: the neutral colour at 0, the end colours at -Limit and +Limit
/// (values beyond take the end colours), linear in RGB between stops (as Plotly interpolates a colour scale).
type Diverging =
    { Limit: float
      /// Stops at fractions of Limit, ascending from -1 to 1; the one at 0 is the neutral colour.
      Stops: (float * Rgb) list }

module Diverging =
    /// Red below 0, blue above, near-white at 0 (ColorBrewer RdBu, 5 classes), full colour at +-`limit`.
    let redBlue (limit: float) =
        if not (Double.IsFinite limit && limit > 0.0) then invalidArg "limit" (sprintf "a colour scale needs a positive finite limit, not %g" limit)
        { Limit = limit
          Stops = [ -1.0, rgb 202 0 32; -0.5, rgb 244 165 130; 0.0, rgb 247 247 247; 0.5, rgb 146 197 222; 1.0, rgb 5 113 176 ] }

    /// The colour of `v`.
    let colour (s: Diverging) (v: float) : Rgb =
        if Double.IsNaN v then invalidArg "v" "NaN has no colour (a cell that was not measured has no value)"
        let f = max -1.0 (min 1.0 (v / s.Limit))
        let (f0, c0), (f1, c1) = s.Stops |> List.pairwise |> List.find (fun ((a, _), (b, _)) -> f >= a && f <= b)
        let t = if f1 = f0 then 0.0 else (f - f0) / (f1 - f0)
        let mix (a: byte) (b: byte) = byte (Math.Round(float a + t * (float b - float a)))
        { R = mix c0.R c1.R; G = mix c0.G c1.G; B = mix c0.B c1.B }

    /// The stops as Plotly takes them with zmin = -Limit, zmax = +Limit: positions in [0, 1], 0 at 0.5.
    let plotlyStops (s: Diverging) = s.Stops |> List.map (fun (f, c) -> (f + 1.0) / 2.0, c)

/// The smallest of 1, 2, 2.5, 5 x 10^k that is >= `x`.
let niceCeiling (x: float) =
    if not (Double.IsFinite x && x > 0.0) then invalidArg "x" (sprintf "not a positive finite number: %g" x)
    let mag = 10.0 ** floor (log10 x)
    [ 1.0; 2.0; 2.5; 5.0; 10.0 ] |> List.map (fun m -> m * mag) |> List.find (fun c -> c >= x * (1.0 - 1e-12))

/// Round tick values covering [lo, hi], about five of them.
let ticks (lo: float) (hi: float) =
    let span = max (hi - lo) 1e-9
    let step = niceCeiling (span / 5.0)
    [ for k in ceil (lo / step - 1e-9) .. floor (hi / step + 1e-9) -> k * step ]

/// The tick step of `ticks lo hi`.
let tickStep (lo: float) (hi: float) = niceCeiling (max (hi - lo) 1e-9 / 5.0)

/// A table of coloured cells on a diverging scale.
type Heatmap =
    { Title: string
      /// Lines under the title: what the cells and the colours mean.
      Notes: string list
      XTitle: string
      YTitle: string
      Columns: string list
      /// Top to bottom.
      Rows: string list
      /// Values.[row].[column]; None: not measured (no colour).
      Values: float option list list
      /// The lines each cell shows (numbers and n), [row][column].
      CellText: string list list list
      Scale: Diverging
      /// The colour bar's title, in lines.
      ColorBarTitle: string list
      /// The colour bar's ticks: value and label.
      ColorBarTicks: (float * string) list }

/// One bar: its height, the half-length of its whisker (0: none) and the text shown above it.
type Bar = { Value: float; Error: float; Label: string }

/// One series of a bar chart: a bar (or none) per category.
type BarSeries = { Name: string; Color: Rgb; Bars: Bar option list }

/// Grouped bars: one group per category, one bar per series that has one there.
type Bars =
    { Title: string
      Notes: string list
      XTitle: string
      YTitle: string
      Categories: string list
      Series: BarSeries list
      /// What the whiskers are ("whiskers: +-1 sample std over seeds"): required when any bar has one.
      Whiskers: string }

/// Where a bar sits along the category axis, in category widths: its centre from the category's centre, its width.
type BarPlace = { Category: int; Series: int; Centre: float; Width: float }

/// Both renderers' bar positions: the bars a category has side by side and centred on it, each in a slot of
/// 0.8 / (the most bars any category has) and 90 % of its slot wide (a category without a series leaves no gap).
let barPlacement (b: Bars) =
    let present = b.Categories |> List.mapi (fun i _ -> b.Series |> List.indexed |> List.filter (fun (_, s) -> (List.item i s.Bars).IsSome) |> List.map fst)
    let most = present |> List.map List.length |> List.fold max 1
    let slot = 0.8 / float most
    [ for ci, group in List.indexed present do
        for k, si in List.indexed group ->
            { Category = ci; Series = si; Centre = slot * (float k + 0.5 - float group.Length / 2.0); Width = slot * 0.9 } ]

/// One line: points (x, y, whisker half-length).
type LineSeries = { Name: string; Color: Rgb; Points: (float * float * float) list }

/// Lines with markers and whiskers.
type Lines =
    { Title: string
      Notes: string list
      XTitle: string
      YTitle: string
      LogX: bool
      Series: LineSeries list
      /// What the whiskers are: required when any point has one.
      Whiskers: string }

/// The lines under a chart's title: its notes, then what the whiskers are.
let notesOf (notes: string list) (whiskers: string) = notes @ (if String.IsNullOrWhiteSpace whiskers then [] else [ whiskers ])

/// Checks a heatmap's shape and values: every row a value and a text per column, finite values.
let checkHeatmap (h: Heatmap) =
    let rows, cols = h.Rows.Length, h.Columns.Length
    if h.Values.Length <> rows || h.Values |> List.exists (fun r -> r.Length <> cols) then
        invalidArg "h" (sprintf "heatmap '%s': values must be %d rows x %d columns" h.Title rows cols)
    if h.CellText.Length <> rows || h.CellText |> List.exists (fun r -> r.Length <> cols) then
        invalidArg "h" (sprintf "heatmap '%s': cell texts must be %d rows x %d columns" h.Title rows cols)
    if h.Values |> List.concat |> List.exists (function Some v -> not (Double.IsFinite v) | None -> false) then
        invalidArg "h" (sprintf "heatmap '%s': a measured value is not finite (use None for a cell that was not measured)" h.Title)
    h

/// Checks a bar chart: a bar slot per category in every series, finite non-negative bars, whiskers named when drawn.
let checkBars (b: Bars) =
    for s in b.Series do
        if s.Bars.Length <> b.Categories.Length then
            invalidArg "b" (sprintf "bar chart '%s': series '%s' has %d bar slots for %d categories" b.Title s.Name s.Bars.Length b.Categories.Length)
        for bar in s.Bars |> List.choose id do
            if not (Double.IsFinite bar.Value && Double.IsFinite bar.Error && bar.Value >= 0.0 && bar.Error >= 0.0) then
                invalidArg "b" (sprintf "bar chart '%s': series '%s' has a bar %g +- %g (bars here are finite and >= 0)" b.Title s.Name bar.Value bar.Error)
    if String.IsNullOrWhiteSpace b.Whiskers && b.Series |> List.exists (fun s -> s.Bars |> List.exists (function Some bar -> bar.Error > 0.0 | None -> false)) then
        invalidArg "b" (sprintf "bar chart '%s' draws whiskers but does not say what they are" b.Title)
    b

/// Checks a line chart: finite points, positive x on a log axis, whiskers named when drawn.
let checkLines (l: Lines) =
    for s in l.Series do
        for x, y, e in s.Points do
            if not (Double.IsFinite x && Double.IsFinite y && Double.IsFinite e && e >= 0.0) || (l.LogX && x <= 0.0) then
                invalidArg "l" (sprintf "line chart '%s': series '%s' has a point (%g, %g +- %g) it cannot draw" l.Title s.Name x y e)
    if String.IsNullOrWhiteSpace l.Whiskers && l.Series |> List.exists (fun s -> s.Points |> List.exists (fun (_, _, e) -> e > 0.0)) then
        invalidArg "l" (sprintf "line chart '%s' draws whiskers but does not say what they are" l.Title)
    l

/// The top of a bar chart's value axis: above the tallest whisker by `headroom` (a fraction of the axis, for the
/// text over that bar), rounded up to a tick. The axis starts at 0.
let barAxisTop (b: Bars) (headroom: float) =
    if not (headroom >= 0.0 && headroom < 0.9) then invalidArg "headroom" (sprintf "headroom %g is not in [0, 0.9)" headroom)
    let top = b.Series |> List.collect (fun s -> s.Bars |> List.choose id |> List.map (fun bar -> bar.Value + bar.Error)) |> List.fold max 0.0
    let needed = if top <= 0.0 then 1.0 else top / (1.0 - headroom)
    let step = tickStep 0.0 needed
    ceil (needed / step - 1e-9) * step
