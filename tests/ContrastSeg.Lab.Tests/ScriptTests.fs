/// Every script in scripts/ answers `-- --help` with its usage and exit code 0 (issue 31, item 8), and an F# script run
/// outside the repository with `#r "nuget: TorchSharp-cpu"` loads libtorch from the NuGet cache (item 2).
module ContrastSeg.Lab.Tests.ScriptTests

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open Expecto

let private repo = Repository.root

let private scripts () = Directory.GetFiles(Path.Combine(repo.Value, "scripts"), "*.fsx") |> Array.sort |> List.ofArray

/// The Lab command a script forwards its arguments to (`exit (ContrastSeg.Lab.Cli.<name> fsi.CommandLineArgs.[1..])`).
let private forwardedCommand (text: string) =
    let m = Regex.Match(text, @"ContrastSeg\.Lab\.Cli\.(\w+) fsi\.CommandLineArgs")
    if m.Success then Some m.Groups.[1].Value else None

/// The scripts that parse their own arguments (they use only the core); each is run under `dotnet fsi` below.
let private selfParsing = set [ "make-fashion-mnist-subset.fsx"; "show-scenes.fsx" ]

let private command (name: string) : string[] -> int =
    let cli = typeof<ContrastSeg.Lab.Results.ResultRow>.Assembly.GetType("ContrastSeg.Lab.Cli", true)
    match cli.GetMethod(name, [| typeof<string[]> |]) with
    | null -> failwithf "ContrastSeg.Lab.Cli has no command %s(string[])" name
    | m -> fun argv -> m.Invoke(null, [| box argv |]) :?> int

/// Runs a copy of a core-only script, in a temporary folder outside the repository, with `dotnet fsi`; its `#r` of the
/// Release build is pointed at a copy of this test's ContrastSeg.Core.dll beside it (no Release build needed, and, as in
/// the core's own bin/, no natives beside it). (exit code, stdout, stderr, the folder)
let private fsiCopy (script: string) (args: string list) =
    let folder = Directory.CreateTempSubdirectory("contrastseg-script-").FullName
    try
        let text = File.ReadAllText(Path.Combine(repo.Value, "scripts", script))
        let release = "#r \"../src/ContrastSeg.Core/bin/Release/net10.0/ContrastSeg.Core.dll\""
        if not (text.Contains release) then failwithf "%s no longer has the line %s" script release
        let copy = Path.Combine(folder, script)
        File.Copy(Path.Combine(AppContext.BaseDirectory, "ContrastSeg.Core.dll"), Path.Combine(folder, "ContrastSeg.Core.dll"))
        File.WriteAllText(copy, text.Replace(release, "#r \"ContrastSeg.Core.dll\""))
        let psi = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = folder)
        for a in [ "fsi"; copy ] @ args do psi.ArgumentList.Add a
        // The repository's subset, whatever the machine has installed (a user's checkout finds it by walking up).
        psi.Environment.["CONTRASTSEG_FASHION_MNIST"] <- Path.Combine(repo.Value, "data", "fashion-mnist-subset")
        use p = Process.Start psi
        let out = p.StandardOutput.ReadToEndAsync()
        let err = p.StandardError.ReadToEndAsync()
        if not (p.WaitForExit 300_000) then (p.Kill true; failwithf "dotnet fsi %s did not finish in 5 minutes" script)
        p.ExitCode, out.Result, err.Result, folder
    with e ->
        Directory.Delete(folder, true)
        raise e

let private expectUsage script (code, (out: string), (err: string)) =
    Expect.equal code 0 (sprintf "%s -- --help: exit code 0 (stderr: %s)" script err)
    Expect.stringContains out "USAGE" (sprintf "%s -- --help prints its usage" script)
    Expect.isFalse (err.Contains "Exception") (sprintf "%s -- --help: no stack trace: %s" script err)

let tests =
    testList "scripts" [
        test "every script forwards to a Lab command that answers --help, or is checked under dotnet fsi here" {
            let all = scripts ()
            Expect.isGreaterThan all.Length 5 "the scripts are found"
            for path in all do
                let name = Path.GetFileName path
                match forwardedCommand (File.ReadAllText path) with
                | Some cmd ->
                    // Exactly what `dotnet fsi scripts/<name> -- --help` passes on.
                    let code, out, err = CliTests.run (command cmd) [ "--"; "--help" ]
                    expectUsage name (code, out, err)
                    let code, _, err = CliTests.run (command cmd) [ "--"; "--no-such-option" ]
                    Expect.equal code 2 (sprintf "%s (%s) refuses an unknown option with exit code 2 (stderr: %s)" name cmd err)
                | None -> Expect.isTrue (selfParsing.Contains name) (sprintf "%s neither forwards to ContrastSeg.Lab.Cli nor is run under dotnet fsi in these tests" name)
        }

        test "docs/reference (settings, command line) is what the code generates now" {
            for name, text in ContrastSeg.Lab.Cli.references () do
                let committed = Path.Combine(repo.Value, "docs", "reference", name)
                Expect.isTrue (File.Exists committed) (sprintf "docs/reference/%s is committed" name)
                Expect.equal (File.ReadAllText committed) text (sprintf "docs/reference/%s is current: run `dotnet fsi scripts/reference.fsx` after changing a setting, its doc comment or an option" name)
        }

        test "the results tables of README.md and docs/results.md are what the stored rows generate now" {
            for page, text in ContrastSeg.Lab.ResultsPage.generated repo.Value do
                Expect.stringContains text "<!-- BEGIN results" (sprintf "%s holds a generated results block" page)
                Expect.equal (File.ReadAllText(Path.Combine(repo.Value, page))) text (sprintf "%s is current: run `dotnet fsi scripts/results-page.fsx` after the rows in docs/results change (the text outside the BEGIN/END comments is yours)" page)
        }

        test "make-fashion-mnist-subset.fsx -- --help prints its usage (it read --help as a folder and threw)" {
            let code, out, err, folder = fsiCopy "make-fashion-mnist-subset.fsx" [ "--"; "--help" ]
            try expectUsage "make-fashion-mnist-subset.fsx" (code, out, err)
            finally Directory.Delete(folder, true)
        }

        test "show-scenes.fsx answers --help, and outside the repository renders a scene with libtorch from the NuGet cache" {
            let code, out, err, folder = fsiCopy "show-scenes.fsx" [ "--"; "--help" ]
            try expectUsage "show-scenes.fsx" (code, out, err)
            finally Directory.Delete(folder, true)
            let output = Directory.CreateTempSubdirectory("contrastseg-scenes-").FullName
            try
                let code, out, err, folder = fsiCopy "show-scenes.fsx" [ "--"; "1"; output; "val" ]
                Directory.Delete(folder, true)
                Expect.equal code 0 (sprintf "show-scenes.fsx exit code (stdout: %s, stderr: %s)" out err)
                // `#r "nuget: TorchSharp-cpu"` puts TorchSharp and libtorch in separate package folders: the kit loads libtorch
                // from there itself (TorchSharp's own fallback would copy 478 MB into its package folder).
                Expect.stringContains out "natives: preloaded from the NuGet packages folder" "libtorch came from the NuGet cache"
                Expect.equal (Directory.GetFiles(output, "*.png").Length) 1 "one PNG"
            finally Directory.Delete(output, true)
        }
    ]
