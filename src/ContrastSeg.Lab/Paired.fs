/// Paired comparisons of two methods over seeds: the per-seed difference, its mean, a 95 % t-interval and a verdict
/// that says "ahead" or "behind" only when the interval excludes 0. Pairs share seed, labelled subset and data order
/// (the grid's cells of one setting and seed do), so the seed-to-seed spread common to both methods cancels.
/// Notebook-safe: FSharp.Core and the BCL only.
module ContrastSeg.Lab.Paired

open System
open System.Globalization
open ContrastSeg.Lab.Results

/// Regularised incomplete beta function I_x(a, b) (continued fraction, Lentz's method).
let private incompleteBeta (a: float) (b: float) (x: float) =
    if x <= 0.0 then 0.0
    elif x >= 1.0 then 1.0
    else
        let logGamma (z: float) =
            // Lanczos approximation (g = 7, n = 9): 15 correct digits for z > 0.
            let c = [| 0.99999999999980993; 676.5203681218851; -1259.1392167224028; 771.32342877765313; -176.61502916214059
                       12.507343278686905; -0.13857109526572012; 9.9843695780195716e-6; 1.5056327351493116e-7 |]
            let z = z - 1.0
            let mutable s = c.[0]
            for i in 1 .. 8 do s <- s + c.[i] / (z + float i)
            let t = z + 7.5
            0.5 * log (2.0 * Math.PI) + (z + 0.5) * log t - t + log s
        let front = exp (logGamma (a + b) - logGamma a - logGamma b + a * log x + b * log (1.0 - x))
        let fraction (a: float) (b: float) (x: float) =
            let tiny = 1e-300
            let mutable c = 1.0
            let mutable d = 1.0 - (a + b) * x / (a + 1.0)
            if abs d < tiny then d <- tiny
            d <- 1.0 / d
            let mutable h = d
            let mutable m = 1
            let mutable fin = false
            while not fin && m < 300 do
                let m2 = float (2 * m)
                let aa = float m * (b - float m) * x / ((a + m2 - 1.0) * (a + m2))
                d <- 1.0 + aa * d; (if abs d < tiny then d <- tiny); c <- 1.0 + aa / c; (if abs c < tiny then c <- tiny)
                d <- 1.0 / d; h <- h * d * c
                let aa = -(a + float m) * (a + b + float m) * x / ((a + m2) * (a + m2 + 1.0))
                d <- 1.0 + aa * d; (if abs d < tiny then d <- tiny); c <- 1.0 + aa / c; (if abs c < tiny then c <- tiny)
                d <- 1.0 / d
                let delta = d * c
                h <- h * delta
                if abs (delta - 1.0) < 1e-15 then fin <- true
                m <- m + 1
            h
        if x < (a + 1.0) / (a + b + 2.0) then front * fraction a b x / a
        else 1.0 - front * fraction b a (1.0 - x) / b

/// P(T <= t) for Student's t with `df` degrees of freedom.
let studentCdf (df: float) (t: float) =
    let tail = 0.5 * incompleteBeta (df / 2.0) 0.5 (df / (df + t * t))
    if t >= 0.0 then 1.0 - tail else tail

/// The two-sided 97.5 % quantile of Student's t (the factor of a 95 % interval), by bisection on the CDF.
let tQuantile975 (df: int) =
    if df < 1 then invalidArg "df" (sprintf "degrees of freedom = %d must be at least 1" df)
    let mutable lo, hi = 0.0, 1000.0
    for _ in 1 .. 200 do
        let mid = 0.5 * (lo + hi)
        if studentCdf (float df) mid < 0.975 then lo <- mid else hi <- mid
    0.5 * (lo + hi)

/// A paired difference over n seeds, in mIoU points (method minus baseline).
type Interval =
    { N: int
      Mean: float
      /// Sample standard deviation of the differences (0 with one pair).
      Std: float
      /// Half-width of the 95 % t-interval (NaN with one pair: no interval).
      HalfWidth: float }
    member i.Lo = i.Mean - i.HalfWidth
    member i.Hi = i.Mean + i.HalfWidth

/// The 95 % t-interval of the mean of `diffs`.
let interval (diffs: float list) =
    match diffs with
    | [] -> invalidArg "diffs" "no pairs"
    | [ d ] -> { N = 1; Mean = d; Std = 0.0; HalfWidth = nan }
    | _ ->
        let n = List.length diffs
        let mean = List.average diffs
        let std = sqrt (List.sumBy (fun d -> (d - mean) ** 2.0) diffs / float (n - 1))
        { N = n; Mean = mean; Std = std; HalfWidth = tQuantile975 (n - 1) * std / sqrt (float n) }

/// "ahead" / "behind" when the interval excludes 0, else "tie"; with one pair no verdict can be drawn.
let verdictWord (i: Interval) =
    if i.N < 2 then "n = 1: no interval"
    elif i.Lo > 0.0 then "ahead"
    elif i.Hi < 0.0 then "behind"
    else "tie"

/// The verdict with its interval: "ahead [lo, hi]", "behind [lo, hi]", "tie [lo, hi]".
let verdict (i: Interval) =
    let f (x: float) = x.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture)
    if i.N < 2 then verdictWord i else sprintf "%s [%s, %s]" (verdictWord i) (f i.Lo) (f i.Hi)

/// The seeds needed for a 95 % half-width of `target` points when the paired differences spread by `std`:
/// the smallest n >= 2 with t(n-1) * std / sqrt n <= target (capped at `most`).
let seedsFor (std: float) (target: float) (most: int) =
    let rec go n = if n >= most || tQuantile975 (n - 1) * std / sqrt (float n) <= target then n else go (n + 1)
    go 2

/// One paired comparison: a method against the baseline at one setting of one study, under one numerics class.
type Comparison =
    { Study: string
      Setting: string
      Method: string
      Baseline: string
      Numerics: string
      /// (seed, method minus baseline in mIoU points), by seed.
      Diffs: (int * float) list
      Interval: Interval }

/// Pairs every method's row with the baseline's row of the same study, setting, seed and numerics class (rows of
/// different classes are never paired: their difference would hold the machines' difference too).
let compare (baseline: string) (rows: ResultRow list) : Comparison list =
    let key (r: ResultRow) = r.Study, r.Setting, numericsOf r
    rows
    |> List.groupBy key
    |> List.collect (fun ((study, setting, numerics), group) ->
        let baseBySeed = group |> List.filter (fun r -> r.Method = baseline) |> List.map (fun r -> r.Seed, r) |> dict
        group
        |> List.filter (fun r -> r.Method <> baseline)
        |> List.groupBy (fun r -> r.Method)
        |> List.choose (fun (meth, rs) ->
            let diffs =
                rs |> List.choose (fun r -> match baseBySeed.TryGetValue r.Seed with
                                            | true, b -> Some(r.Seed, 100.0 * (r.MeanIoU - b.MeanIoU))
                                            | _ -> None)
                   |> List.sortBy fst
            if diffs.IsEmpty then None
            else Some { Study = study; Setting = setting; Method = meth; Baseline = baseline; Numerics = numerics
                        Diffs = diffs; Interval = interval (List.map snd diffs) }))
    |> List.sortBy (fun c -> c.Study, c.Numerics, settingOrder c.Setting, c.Method)

/// A Markdown table of comparisons: per-seed differences, mean, 95 % interval, n and the verdict.
let markdown (comparisons: Comparison list) =
    let sb = Text.StringBuilder()
    let f (x: float) = x.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture)
    for (study, numerics), cs in comparisons |> List.groupBy (fun c -> c.Study, c.Numerics) do
        sb.AppendLine(sprintf "#### %s: paired differences (numerics: %s)\n" study numerics)
          .AppendLine("| setting | method − baseline | n | per seed (mIoU points) | mean | 95 % interval | verdict |")
          .AppendLine("|---|---|---:|---|---:|---:|---|") |> ignore
        for c in cs do
            let seeds = String.Join(", ", c.Diffs |> List.map (fun (s, d) -> sprintf "s%d %s" s (f d)))
            let range = if c.Interval.N < 2 then "-" else sprintf "± %.1f" c.Interval.HalfWidth
            sb.AppendLine(sprintf "| %s | %s − %s | %d | %s | %s | %s | %s |" c.Setting c.Method c.Baseline c.Interval.N seeds
                              (f c.Interval.Mean) range (verdict c.Interval)) |> ignore
        sb.AppendLine() |> ignore
    sb.ToString()
