/// The regime map: where contrastive pretraining + fine-tuning beats cross-entropy, by label count x
/// capacity x step budget, from the rows of the grid's "regime" cells (or any rows whose setting names
/// labelled, stem, width and steps). Notebook-safe (FSharp.Core 10.0 API).
module ContrastSeg.Lab.Regime

open System
open System.Globalization
open ContrastSeg.Lab.Results

/// One point of the map: both methods' summaries over seeds (None: not measured yet).
type MapCell =
    { /// "stem=small,width=0.25"
      Capacity: string
      Steps: int
      Labelled: int
      CrossEntropy: Summary option
      Contrastive: Summary option }

    /// Contrastive minus cross-entropy, mean mIoU in points (None until both are measured).
    member c.Gain =
        match c.CrossEntropy, c.Contrastive with
        | Some ce, Some con -> Some(100.0 * (con.MeanIoU - ce.MeanIoU))
        | _ -> None

let private pairs (setting: string) =
    setting.Split(',', StringSplitOptions.RemoveEmptyEntries)
    |> Array.choose (fun kv -> match kv.Split('=', 2) with [| k; v |] -> Some(k.Trim(), v.Trim()) | _ -> None)
    |> Map.ofArray

/// The map cells of the summaries whose settings name labelled, stem, width and steps, sorted by
/// capacity, steps and label count.
let cells (summaries: Summary list) : MapCell list =
    let keyed =
        summaries
        |> List.choose (fun s ->
            let kv = pairs s.Setting
            match kv.TryFind "labelled", kv.TryFind "stem", kv.TryFind "width", kv.TryFind "steps" with
            | Some n, Some stem, Some width, Some steps ->
                Some((sprintf "stem=%s,width=%s" stem width, int steps, int n), s)
            | _ -> None)
    keyed
    |> List.groupBy fst
    |> List.map (fun ((capacity, steps, n), group) ->
        let find (pred: string -> bool) = group |> List.map snd |> List.tryFind (fun s -> pred s.Method)
        { Capacity = capacity; Steps = steps; Labelled = n
          CrossEntropy = find (fun m -> m = "cross-entropy")
          Contrastive = find (fun m -> m.StartsWith("contrastive", StringComparison.Ordinal)) })
    |> List.sortBy (fun c -> c.Capacity, c.Steps, c.Labelled)

let private pct (s: Summary) =
    let m = (100.0 * s.MeanIoU).ToString("F1", CultureInfo.InvariantCulture)
    if s.N > 1 then sprintf "%s ± %s" m ((100.0 * s.Std).ToString("F1", CultureInfo.InvariantCulture)) else m

/// The rows (capacity, steps), the columns (label counts) of the map, in order.
let axes (map: MapCell list) =
    let rows = map |> List.map (fun c -> c.Capacity, c.Steps) |> List.distinct
    let columns = map |> List.map (fun c -> c.Labelled) |> List.distinct |> List.sort
    rows, columns

/// Which side wins a cell: a gain within the larger of the two seed spreads (or 0.5 points) is a tie.
let verdict (c: MapCell) =
    match c.CrossEntropy, c.Contrastive, c.Gain with
    | Some ce, Some con, Some g ->
        let noise = 100.0 * max ce.Std con.Std
        if abs g <= max noise 0.5 then "tie" elif g > 0.0 then "contrastive" else "cross-entropy"
    | _ -> "-"

/// A Markdown table: rows = capacity and budget, columns = label counts, each cell
/// "CE a / con b (gain, n)". Equal budgets: CE steps = pretraining + fine-tuning steps.
let markdown (split: string) (map: MapCell list) =
    let rows, columns = axes map
    let sb = Text.StringBuilder()
    sb.AppendLine(sprintf "%s mIoU (%%), cross-entropy / contrastive + fine-tuning (gain in points; n = seeds; a gain within the larger std or 0.5 counts as a tie)\n" split)
      .AppendLine("| capacity | steps | " + String.Join(" | ", columns |> List.map (sprintf "labelled=%d")) + " |")
      .AppendLine("|---|---:|" + String.Join("|", columns |> List.map (fun _ -> "---")) + "|") |> ignore
    for capacity, steps in rows do
        let cell n =
            match map |> List.tryFind (fun c -> c.Capacity = capacity && c.Steps = steps && c.Labelled = n) with
            | Some c ->
                let side = function Some s -> pct s | None -> "-"
                let n = [ c.CrossEntropy; c.Contrastive ] |> List.choose id |> List.map (fun s -> s.N) |> List.min
                match c.Gain with
                | Some g -> sprintf "%s / %s (%+.1f, %s, n=%d)" (side c.CrossEntropy) (side c.Contrastive) g (verdict c) n
                | None -> sprintf "%s / %s" (side c.CrossEntropy) (side c.Contrastive)
            | None -> "-"
        sb.AppendLine(sprintf "| %s | %d | %s |" capacity steps (String.Join(" | ", columns |> List.map cell))) |> ignore
    sb.ToString()
