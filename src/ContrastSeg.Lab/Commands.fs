/// The command lines the ablations command derives from its own: one per cell for `--list` (a cluster job
/// array), and the arguments of a `--jobs` worker process.
module ContrastSeg.Lab.Commands

open System

/// The options that shape a grid's cells, forwarded with their values to every cell's command.
let private shaping =
    set [ "--profile"; "--dataset"; "--data-root"; "--labelled"; "--set"; "-s"; "--variant"; "--steps"; "--output"; "--runs"
          "--fractions"; "--crop"; "--resize"; "--eval-split"; "--val-split"; "--seeds"; "--device"; "--cells" ]

/// One `dotnet fsi scripts/ablations.fsx` command per cell key: the options of `argv` that shape the cells, then `--cell <key>`.
let forCells (argv: string[]) (keys: string list) =
    let kept =
        argv
        |> Array.fold (fun (keep, acc) (a: string) ->
            if a.StartsWith "-" then
                let k = shaping.Contains(a.Split('=').[0])
                k, (if k then a :: acc else acc)
            else keep, (if keep then a :: acc else acc)) (false, [])
        |> snd |> List.rev
    let quote (a: string) = if a.Contains ' ' then "\"" + a + "\"" else a
    let shared = String.Join(" ", kept |> List.map quote)
    keys |> List.map (sprintf "dotnet fsi scripts/ablations.fsx -- %s --cell %s" shared)

/// The arguments of a `--jobs` worker: the command's own, without the options the parent alone acts on.
let workerArguments (argv: string[]) =
    let dropWithValue = set [ "--jobs"; "--cell"; "--run" ]
    let drop = set [ "--force" ]
    argv
    |> Array.fold (fun (skip, acc) (a: string) ->
        if skip then false, acc
        elif dropWithValue.Contains(a.Split('=').[0]) then not (a.Contains '='), acc
        elif drop.Contains a then false, acc
        else false, a :: acc) (false, [])
    |> snd |> List.rev
