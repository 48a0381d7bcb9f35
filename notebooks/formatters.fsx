// Notebook display of F# values: lists, arrays and sequences of records (result rows, summaries, anonymous records)
// as HTML tables, one column per field, instead of the kernel's HeadOrDefault/Tail view of an F# list.
// `#load "formatters.fsx"` in a notebook's first cell; it needs a .NET Interactive kernel (Polyglot, dotnet-repl).
open System
open System.Collections
open System.Globalization
open System.Net
open Microsoft.FSharp.Reflection
open Microsoft.DotNet.Interactive.Formatting

/// The columns of a table of `t`: record fields in order, else public properties (anonymous records list theirs).
let private columns (t: Type) : (string * (obj -> obj)) list =
    if FSharpType.IsRecord(t, true) then
        [ for p in FSharpType.GetRecordFields(t, true) -> p.Name, (fun (o: obj) -> p.GetValue o) ]
    elif t.IsPrimitive || t = typeof<string> || t = typeof<decimal> then [ "value", id ]
    else
        [ for p in t.GetProperties() do
            if p.GetIndexParameters().Length = 0 then yield p.Name, (fun (o: obj) -> p.GetValue o) ]

/// A cell's text: numbers to 4 significant digits, Some x as x, None empty, a short collection inline, a long one by its size.
let rec private cellText (v: obj) =
    match v with
    | null -> ""
    | :? string as s -> s
    | :? float as f -> f.ToString("G4", CultureInfo.InvariantCulture)
    | :? float32 as f -> f.ToString("G4", CultureInfo.InvariantCulture)
    | _ when v.GetType().IsGenericType && v.GetType().GetGenericTypeDefinition() = typedefof<option<_>> ->
        cellText (v.GetType().GetProperty("Value").GetValue v)
    | :? IEnumerable as xs ->
        let items = [ for x in xs -> x ]
        if items.Length <= 6 then "[" + String.Join("; ", items |> List.map cellText) + "]" else sprintf "[%d items]" items.Length
    | _ -> string v

/// An HTML table of `items` (the columns of the first item's type).
let htmlTable (items: obj list) =
    match items with
    | [] -> "<i>(empty)</i>"
    | first :: _ ->
        let cols = columns (first.GetType())
        let cell (tag: string) (text: string) = sprintf "<%s>%s</%s>" tag (WebUtility.HtmlEncode text) tag
        let header = String.Join("", cols |> List.map (fst >> cell "th"))
        let body = String.Join("\n", [ for item in items -> "<tr>" + String.Join("", cols |> List.map (fun (_, get) -> cell "td" (cellText (get item)))) + "</tr>" ])
        sprintf "<table>\n<thead><tr>%s</tr></thead>\n<tbody>\n%s\n</tbody>\n</table>" header body

let private register (t: Type) =
    Formatter.Register(t, Action<obj, IO.TextWriter>(fun o w -> w.Write(htmlTable [ for x in (o :?> IEnumerable) -> x ])), "text/html")

register typedefof<list<_>>
