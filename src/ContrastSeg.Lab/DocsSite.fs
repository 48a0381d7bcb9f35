/// The documentation site (eng/site.sh builds it with fsdocs): its input staged from docs/, the README as the home page
/// and the notebooks as pages with their outputs; and the check that every relative link of the built site leads to a
/// file. Notebook-independent: System.Text.Json and the BCL only.
module ContrastSeg.Lab.DocsSite

open System
open System.IO
open System.Text
open System.Text.Json
open System.Text.RegularExpressions

/// A Markdown link or image target: `](target)` (the target without a title).
let private markdownLink = Regex(@"\]\((?<target>[^)\s#]*)(?<rest>[^)]*)\)")

let private isExternal (target: string) =
    target = "" || Regex.IsMatch(target, @"^[a-zA-Z][a-zA-Z0-9+.-]*:") || target.StartsWith("#", StringComparison.Ordinal) || target.StartsWith("//", StringComparison.Ordinal)

/// Where a repository file outside docs/ that a page links to goes in the staged input.
let private repositoryFolder = "repository"

/// `page` (Markdown at `pageFolder`, relative to the repository root) with its links rewritten for the staged input,
/// where docs/ is the root: links into docs/ stay relative, README.md becomes the home page (index.md), other
/// repository files are copied under `repository/` (returned, relative to the repository root, for the caller to copy).
let private restage (pageFolder: string) (stagedFolder: string) (page: string) =
    let copied = Collections.Generic.List<string>()
    let text =
        markdownLink.Replace(page, MatchEvaluator(fun m ->
            let target = m.Groups.["target"].Value
            if isExternal target then m.Value
            else
                // The target relative to the repository root, with / separators.
                let inRepo = Path.GetRelativePath(".", Path.Combine(pageFolder, target)).Replace('\\', '/')
                let staged =
                    if inRepo = "README.md" || inRepo = "docs" then "index.md"
                    elif inRepo.StartsWith("docs/", StringComparison.Ordinal) then inRepo.Substring 5
                    else
                        copied.Add inRepo
                        repositoryFolder + "/" + inRepo
                let from = if String.IsNullOrEmpty stagedFolder then "." else stagedFolder
                sprintf "](%s%s)" (Path.GetRelativePath(from, staged).Replace('\\', '/')) m.Groups.["rest"].Value))
    text, List.ofSeq copied

/// One output of an executed notebook cell as Markdown: HTML as it is (its blank lines removed, which would end the
/// HTML block), a PNG as an image, text in a fence.
let private outputMarkdown (output: JsonElement) =
    let fence (text: string) = sprintf "```text\n%s\n```\n" (text.TrimEnd())
    let joined (e: JsonElement) =
        if e.ValueKind = JsonValueKind.Array then String.Join("", [ for s in e.EnumerateArray() -> s.GetString() ]) else e.GetString()
    match output.GetProperty("output_type").GetString() with
    | "stream" -> fence (joined (output.GetProperty "text"))
    | "error" -> fence (sprintf "%s: %s" (output.GetProperty("ename").GetString()) (output.GetProperty("evalue").GetString()))
    | _ ->
        match output.TryGetProperty "data" with
        | true, data ->
            match data.TryGetProperty "text/html", data.TryGetProperty "image/png", data.TryGetProperty "text/plain" with
            | (true, html), _, _ ->
                let lines = (joined html).Split('\n') |> Array.filter (fun l -> not (String.IsNullOrWhiteSpace l))
                sprintf "<div class=\"notebook-output\">\n%s\n</div>\n" (String.Join("\n", lines))
            | _, (true, png), _ -> sprintf "<img src=\"data:image/png;base64,%s\"/>\n" ((joined png).Trim())
            | _, _, (true, text) -> fence (joined text)
            | _ -> ""
        | _ -> ""

/// A notebook (.ipynb JSON) as a Markdown page: its Markdown cells, its code cells as F# blocks, each followed by its
/// outputs when the notebook was executed.
let notebookPage (ipynb: string) =
    use doc = JsonDocument.Parse ipynb
    let sb = StringBuilder()
    let source (cell: JsonElement) =
        let s = cell.GetProperty "source"
        if s.ValueKind = JsonValueKind.Array then String.Join("", [ for l in s.EnumerateArray() -> l.GetString() ]) else s.GetString()
    for cell in doc.RootElement.GetProperty("cells").EnumerateArray() do
        match cell.GetProperty("cell_type").GetString() with
        | "markdown" -> sb.AppendLine(source cell).AppendLine() |> ignore
        | "code" ->
            // As HTML, not a fenced F# block: fsdocs type-checks fenced F#, and a notebook's #r and #load paths are
            // relative to notebooks/, not to the site. Empty lines carry a space that Markdown does not read as blank.
            let lines = (source cell).TrimEnd().Split('\n') |> Array.map (fun l -> if String.IsNullOrWhiteSpace l then "&nbsp;" else Net.WebUtility.HtmlEncode l)
            sb.AppendLine("<pre class=\"notebook-code\"><code class=\"language-fsharp\">" + String.Join("\n", lines) + "</code></pre>").AppendLine() |> ignore
            match cell.TryGetProperty "outputs" with
            | true, outputs -> for o in outputs.EnumerateArray() do sb.AppendLine(outputMarkdown o) |> ignore
            | _ -> ()
        | _ -> ()
    sb.ToString()

/// Stages the site's input under `staging` from the repository at `root`: docs/ as it is, README.md as the home page
/// (index.md) with its links made relative to docs/, repository files outside docs/ that pages link to under
/// `repository/`, and each notebook as notebooks/<name>.md, from its executed copy in `executed` when given (else the
/// committed one, without outputs).
let stage (root: string) (staging: string) (executed: string option) =
    if Directory.Exists staging then Directory.Delete(staging, true)
    let docs = Path.Combine(root, "docs")
    let links = Collections.Generic.List<string>()
    for file in Directory.GetFiles(docs, "*", SearchOption.AllDirectories) do
        let relative = Path.GetRelativePath(docs, file)
        let target = Path.Combine(staging, relative)
        Directory.CreateDirectory(Path.GetDirectoryName target) |> ignore
        if file.EndsWith(".md", StringComparison.Ordinal) then
            let folder = Path.GetDirectoryName(Path.Combine("docs", relative))
            let text, copied = restage folder (Path.GetDirectoryName relative) (File.ReadAllText file)
            links.AddRange copied
            File.WriteAllText(target, text)
        else File.Copy(file, target)
    let home, copied = restage "." "." (File.ReadAllText(Path.Combine(root, "README.md")))
    links.AddRange copied
    File.WriteAllText(Path.Combine(staging, "index.md"), home)
    for inRepo in Seq.distinct links do
        let source = Path.Combine(root, inRepo)
        if File.Exists source then
            let target = Path.Combine(staging, repositoryFolder, inRepo)
            Directory.CreateDirectory(Path.GetDirectoryName target) |> ignore
            File.Copy(source, target, true)
    let notebooks = Path.Combine(staging, "notebooks")
    Directory.CreateDirectory notebooks |> ignore
    for committed in Directory.GetFiles(Path.Combine(root, "notebooks"), "*.ipynb") |> Array.sort do
        let name = Path.GetFileName committed
        let source =
            match executed with
            | Some folder when File.Exists(Path.Combine(folder, name)) -> Path.Combine(folder, name)
            | Some folder -> raise (FileNotFoundException(sprintf "no executed copy of notebooks/%s in %s" name folder, Path.Combine(folder, name)))
            | None -> committed
        File.WriteAllText(Path.Combine(notebooks, Path.ChangeExtension(name, ".md")), notebookPage (File.ReadAllText source))

/// `href` and `src` targets of an HTML page.
let private htmlLink = Regex("(?:href|src)\\s*=\\s*\"(?<target>[^\"]*)\"", RegexOptions.IgnoreCase)

/// The relative links of the built site under `site` that lead to no file: (page, link), pages relative to `site`.
/// Links with a scheme, fragments within a page and `root`-prefixed template links are resolved as the site serves them.
let brokenLinks (site: string) (root: string) =
    [ for page in Directory.GetFiles(site, "*.html", SearchOption.AllDirectories) |> Array.sort do
        let folder = Path.GetDirectoryName page
        for m in htmlLink.Matches(File.ReadAllText page) do
            let link = Net.WebUtility.HtmlDecode(m.Groups.["target"].Value)
            let path = link.Split('#').[0].Split('?').[0]
            if not (isExternal link) && path <> "" then
                let file =
                    if path.StartsWith(root, StringComparison.Ordinal) then Path.Combine(site, Uri.UnescapeDataString(path.Substring root.Length))
                    elif path.StartsWith("/", StringComparison.Ordinal) then Path.Combine(site, Uri.UnescapeDataString(path.TrimStart '/'))
                    else Path.Combine(folder, Uri.UnescapeDataString path)
                if not (File.Exists file || File.Exists(Path.Combine(file, "index.html"))) then
                    yield Path.GetRelativePath(site, page), link ]
