/// The results tables of the published pages (README.md, docs/results.md), generated from the stored rows of
/// docs/results/<profile> and its plan.json, between marker comments; the hand-written interpretation stays outside
/// them. `dotnet fsi scripts/results-page.fsx` rewrites the blocks; a test fails when a block is stale.
module ContrastSeg.Lab.ResultsPage

open System
open System.Globalization
open System.IO
open System.Text.RegularExpressions
open ContrastSeg.Studies
open ContrastSeg.Training
open ContrastSeg.Lab.Results

/// The pages that hold generated blocks, relative to the repository root.
let pages = [ "README.md"; Path.Combine("docs", "results.md") ]

/// The published results folders, relative to the repository root.
let resultsFolder (profile: string) = Path.Combine("docs", "results", profile)

/// A block: `<!-- BEGIN <kind>:<profile> ... -->` up to `<!-- END <kind>:<profile> -->`. Kinds: `results` (per label count:
/// both methods, per-seed paired differences, mean and 95 % interval, verdict, n, provenance), `results-summary`
/// (the README's short table) and `results-methods` (one line per method, for the peers' studies).
let private block =
    Regex(@"<!-- BEGIN (?<kind>[a-z-]+):(?<profile>[A-Za-z0-9_.-]+)[^\n]*?-->\n(?<body>.*?)<!-- END \k<kind>:\k<profile> -->", RegexOptions.Singleline)

/// Signed, one decimal, with a typographic minus (as the hand-written pages print it).
let private signed (x: float) = x.ToString("+0.0;\u22120.0;0.0", CultureInfo.InvariantCulture)
let private pct (x: float) = (100.0 * x).ToString("F1", CultureInfo.InvariantCulture)

/// The compared rows of a published folder: every cell of its plan has its current row, and no row is of a
/// cell the plan does not name (else ConfigException naming them: a published page never stands on part of a study).
let private studyRows (root: string) (profile: string) =
    let folder = Path.Combine(root, resultsFolder profile)
    let planFile = Path.Combine(folder, StudyPlan.FileName)
    if not (File.Exists planFile) then
        raise (ConfigException(sprintf "%s does not exist: a results block reads the plan and rows of a folder written with a plan" planFile, "profile"))
    let plan = StudyPlan.Read planFile
    let store = ResultStore(folder)
    let rows = Runner.currentRows plan store
    match Report.lacking plan store rows, outsidePlan (plan.Cells |> Seq.map (fun c -> c.Key)) (store.All()) with
    | [], [] -> plan, rows |> List.filter (fun r -> ReportInputs.comparedStudies.Contains r.Study)
    | missing, outside ->
        let names = (missing |> List.map (fun (k, why) -> sprintf "%s (%s)" k why)) @ (outside |> List.map (fun r -> r.CellKey + " (not in the plan)"))
        raise (ConfigException(sprintf "%s: rows and plan disagree: %s" folder (String.Join(", ", names)), "rows"))

/// A setting as its tables print it: the label count of "labelled=<n>", else the setting itself.
let private labelledOf (setting: string) =
    if setting.StartsWith("labelled=", StringComparison.Ordinal) then setting.Substring "labelled=".Length else setting

/// One comparison's line parts: the label count, both summaries, the paired differences.
let private lines (rows: ResultRow list) =
    let summaries = summarise rows
    [ for c in Paired.compare "cross-entropy" rows do
        let find m = summaries |> List.find (fun s -> s.Setting = c.Setting && s.Method = m && s.Numerics = c.Numerics)
        yield c, labelledOf c.Setting, find c.Baseline, find c.Method ]

let private meanSd (s: Summary) = if s.N > 1 then sprintf "%s ± %s" (pct s.MeanIoU) (pct s.Std) else pct s.MeanIoU

let private intervalText (i: Paired.Interval) =
    if i.N < 2 then signed i.Mean else sprintf "%s [%s, %s]" (signed i.Mean) (signed i.Lo) (signed i.Hi)

let private numericsClasses (rows: ResultRow list) = rows |> List.map numericsOf |> List.distinct

/// The CPUs the rows were computed on (their provenance), or the machines they name when none was recorded.
let private cpus (rows: ResultRow list) =
    rows
    |> List.collect (fun r ->
        match r.Provenance with
        | null -> [ r.Machine ]
        | p -> match p.TryGetValue "cpu" with | true, v -> provenanceValues v | _ -> [ r.Machine ])
    |> List.distinct

let private capitalised (s: string) = if s = "" then s else string (Char.ToUpperInvariant s.[0]) + s.Substring 1

/// The `results` block: per label count both methods, the per-seed differences, mean and 95 % interval, verdict and n,
/// then where and how the rows were computed.
let detailed (plan: StudyPlan) (rows: ResultRow list) =
    let sb = Text.StringBuilder()
    for (meth, numerics), group in lines rows |> List.groupBy (fun (c, _, _, _) -> c.Method, c.Numerics) do
        if (numericsClasses rows).Length > 1 then sb.AppendLine(sprintf "Numerics: %s\n" numerics) |> ignore
        sb.AppendLine(sprintf "| labelled | cross-entropy | %s | paired difference per seed (%s − cross-entropy) | mean, 95 %% interval | verdict | n |" meth meth)
          .AppendLine("|---:|---:|---:|---|---|---|---:|") |> ignore
        for c, labelled, ce, other in group do
            let perSeed = String.Join(", ", c.Diffs |> List.map (fun (_, d) -> signed d))
            sb.AppendLine(sprintf "| %s | %s | %s | %s | %s | %s | %d |" labelled (meanSd ce) (meanSd other) perSeed (intervalText c.Interval) (Paired.verdictWord c.Interval) c.Interval.N) |> ignore
        sb.AppendLine() |> ignore
    sb.AppendLine(sprintf "%s mIoU (%%), mean ± sample std over seeds; pairs share seed, labelled subset and data order. Computed on:\n" (capitalised plan.EvalSplit))
      .Append(Report.provenance rows) |> ignore
    sb.ToString()

/// The `results-summary` block (README): per label count both methods, the paired difference with its interval and the verdict.
let summary (plan: StudyPlan) (rows: ResultRow list) =
    let sb = Text.StringBuilder()
    let classes = numericsClasses rows
    sb.AppendLine(sprintf "%s mIoU (%%) of `--profile %s`, mean ± std over n seeds; paired difference = method − cross-entropy on the same seed, subset and data order, with its 95 %% t-interval. Numerics: %s; CPU: %s.\n"
                    (capitalised plan.EvalSplit) plan.Profile (String.Join("; ", classes)) (String.Join("; ", cpus rows))) |> ignore
    for meth, group in lines rows |> List.groupBy (fun (c, _, _, _) -> c.Method) do
        sb.AppendLine(sprintf "| labelled | cross-entropy | %s | paired difference | verdict | n |" meth)
          .AppendLine("|---:|---:|---:|---|---|---:|") |> ignore
        for c, labelled, ce, other in group do
            sb.AppendLine(sprintf "| %s | %s | %s | %s | %s | %d |" labelled (meanSd ce) (meanSd other) (intervalText c.Interval) (Paired.verdictWord c.Interval) c.Interval.N) |> ignore
    sb.ToString()

/// The method the peers' options are also compared with: the paper's loss (two stages), which they extend.
let private paperMethod = "contrastive+finetune"

/// The `results-methods` block, for a study of many methods at few settings (the peers' options): per setting one line per
/// method, in the plan's order, with its mean ± std, against cross-entropy the per-seed differences, mean and 95 %
/// interval and verdict, against the paper's loss (`contrastive+finetune`) the mean, interval and verdict, and n; then
/// where and how the rows were computed.
let methods (plan: StudyPlan) (rows: ResultRow list) =
    let sb = Text.StringBuilder()
    let order = plan.Cells |> Seq.map (fun c -> c.Method) |> Seq.distinct |> List.ofSeq
    let rank (m: string) = match List.tryFindIndex ((=) m) order with Some i -> i | None -> order.Length
    let against baseline = Paired.compare baseline rows
    let ce, paper = against "cross-entropy", against paperMethod
    let find (comparisons: Paired.Comparison list) setting numerics meth =
        comparisons |> List.tryFind (fun c -> c.Setting = setting && c.Numerics = numerics && c.Method = meth)
    for (setting, numerics), group in summarise rows |> List.groupBy (fun s -> s.Setting, s.Numerics) do
        if (numericsClasses rows).Length > 1 then sb.AppendLine(sprintf "Numerics: %s\n" numerics) |> ignore
        sb.AppendLine(sprintf "| labelled | method | mIoU | − cross-entropy, per seed | mean, 95 %% interval | verdict | − %s: mean, 95 %% interval | verdict | n |" paperMethod)
          .AppendLine("|---:|---|---:|---|---|---|---|---|---:|") |> ignore
        for s in group |> List.sortBy (fun s -> rank s.Method) do
            let versus (c: Paired.Comparison option) =
                match c with
                | Some c -> intervalText c.Interval, Paired.verdictWord c.Interval
                | None -> "(baseline)", ""
            let againstCe = find ce setting numerics s.Method
            let perSeed = againstCe |> Option.map (fun c -> String.Join(", ", c.Diffs |> List.map (fun (_, d) -> signed d))) |> Option.defaultValue ""
            let ceMean, ceVerdict = versus againstCe
            let paperMean, paperVerdict =
                if s.Method = "cross-entropy" then "", "" else versus (find paper setting numerics s.Method)
            sb.AppendLine(sprintf "| %s | %s | %s | %s | %s | %s | %s | %s | %d |" (labelledOf setting) s.Method (meanSd s) perSeed ceMean ceVerdict paperMean paperVerdict s.N) |> ignore
        sb.AppendLine() |> ignore
    sb.AppendLine(sprintf "%s mIoU (%%), mean ± sample std over seeds; pairs share seed, labelled subset and data order (differences in mIoU points, 95 %% t-intervals). Computed on:\n" (capitalised plan.EvalSplit))
      .Append(Report.provenance rows) |> ignore
    sb.ToString()

/// `page` with every generated block rewritten from the rows under `root` (the repository).
let render (root: string) (page: string) =
    block.Replace(page, MatchEvaluator(fun m ->
        let kind, profile = m.Groups.["kind"].Value, m.Groups.["profile"].Value
        let plan, rows = studyRows root profile
        let body =
            match kind with
            | "results" -> detailed plan rows
            | "results-summary" -> summary plan rows
            | "results-methods" -> methods plan rows
            | other -> raise (ConfigException(sprintf "unknown results block '%s:%s' (use results, results-summary or results-methods)" other profile, "block"))
        sprintf "<!-- BEGIN %s:%s (generated from %s/rows by `dotnet fsi scripts/results-page.fsx`; do not edit) -->\n%s<!-- END %s:%s -->"
            kind profile (resultsFolder profile |> fun p -> p.Replace('\\', '/')) body kind profile))

/// Every page's text as generated now: (path relative to `root`, text).
let generated (root: string) =
    [ for page in pages -> page, render root (File.ReadAllText(Path.Combine(root, page))) ]
