/// Cluster job arrays (issue 13): the keys a job array's tasks run, and the waves that keep cells which share a
/// stage from training it at the same time.
module ContrastSeg.Lab.Tests.ClusterTests

open System
open System.IO
open Expecto
open ContrastSeg.Lab
open ContrastSeg.Lab.Grid

let private runs = Path.Combine(Path.GetTempPath(), "contrastseg-cluster-tests")

let tests =
    testList "cluster job arrays" [
        test "waves: no wave trains an output twice, and every other cell using it comes in a later wave" {
            for p in [ quick runs; defaultProfile runs; ablationsProfile runs ] do
                let waves = Runner.waves p
                Expect.equal (waves |> List.map (fun (c, _) -> c.Key)) (p.Cells |> List.map (fun c -> c.Key) |> List.distinct) (p.Name + ": every cell once, in grid order")
                for out in waves |> List.collect (fun (c, _) -> Runner.cellOutputs p c) |> List.distinct do
                    let users = waves |> List.filter (fun (c, _) -> List.contains out (Runner.cellOutputs p c))
                    let first = users |> List.map snd |> List.min
                    Expect.equal (users |> List.filter (fun (_, w) -> w = first) |> List.length) 1 (sprintf "%s: one cell trains %s" p.Name out)
                    Expect.equal (snd users.Head) first (sprintf "%s: the first cell using %s trains it" p.Name out)
            Expect.equal (Runner.waves (defaultProfile runs) |> List.map snd |> List.distinct) [ 1 ] "the default study shares no stage: one wave"
            Expect.equal (Runner.waves (quick runs) |> List.map snd |> List.distinct) [ 1; 2 ] "quick: its ablations reuse stages of wave 1"
        }

        test "--list-keys prints what --run takes, --wave the keys of one wave, --cells restricts the grid; bad values are named" {
            let keys argv =
                let code, out, err = CliTests.run Cli.ablations ([ "--profile"; "quick" ] @ argv)
                Expect.equal code 0 (sprintf "%A: %s" argv err)
                out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray
            let all = (quick runs).Cells |> List.map (fun c -> c.Key) |> List.distinct
            Expect.equal (keys [ "--list-keys" ]) all "every key, in grid order"
            Expect.equal (keys [ "--list-keys"; "--wave"; "1" ] @ keys [ "--list-keys"; "--wave"; "2" ] |> List.sort) (List.sort all) "two waves hold every cell"
            Expect.isEmpty (keys [ "--list-keys"; "--wave"; "3" ]) "none past the last wave: a script's loop ends there"
            let two = [ all.[3]; all.[0] ]
            Expect.equal (keys ([ "--list-keys"; "--cells" ] @ two)) [ all.[0]; all.[3] ] "--cells: those cells, in grid order"
            Expect.equal (keys ([ "--list"; "--cells" ] @ two)) [ for k in [ all.[0]; all.[3] ] -> sprintf "dotnet fsi scripts/ablations.fsx -- --profile quick --cells %s %s --run %s" all.[3] all.[0] k ] "--list forwards --cells"
            let refused argv mention =
                let code, _, err = CliTests.run Cli.ablations ([ "--profile"; "quick" ] @ argv)
                Expect.equal code 2 (sprintf "%A: exit code 2" argv)
                Expect.stringContains err mention (sprintf "%A names the value" argv)
            refused [ "--list-keys"; "--wave"; "0" ] "got 0"
            refused [ "--wave"; "1"; "--run"; all.[0] ] "--wave selects what --list or --list-keys prints"
            refused [ "--list-keys"; "--cells"; "no-such-cell" ] "'no-such-cell'"
        }
    ]
