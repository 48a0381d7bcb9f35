/// Portable numerics (applied before libtorch loads, read back in a child process, governing training), provenance in
/// rows, and the paired statistics the report's claims rest on.
module ContrastSeg.Lab.Tests.NumericsTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open ContrastSeg.Lab
open ContrastSeg.Lab.Results
open ContrastSeg.Lab.Paired

let private labDll = Path.Combine(AppContext.BaseDirectory, "ContrastSeg.Lab.dll")

/// Runs the Lab executable with `env` added to (or, with null, removed from) the environment; (exit code, stdout, stderr).
let private lab (env: (string * string) list) (args: string list) =
    let psi = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    psi.ArgumentList.Add labDll
    for a in args do psi.ArgumentList.Add a
    for name in [ "CONTRASTSEG_NUMERICS"; "CONTRASTSEG_THREADS"; "ATEN_CPU_CAPABILITY"; "ONEDNN_MAX_CPU_ISA"; "MKL_ENABLE_INSTRUCTIONS"; "MKL_CBWR" ] do
        psi.Environment.Remove name |> ignore
    for name, value in env do psi.Environment.[name] <- value
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 600_000) then (p.Kill true; failwith "the Lab process did not finish in 10 minutes")
    p.ExitCode, out.Result, err.Result

let private provenanceOf (stdout: string) =
    let line = stdout.Split('\n') |> Array.find (fun l -> l.StartsWith "{")
    JsonDocument.Parse(line).RootElement.GetProperty("provenance")

let private cpu = ContrastSeg.Runtime.CpuInfo.Machine

let private tiny (root: string) (name: string) =
    [ yield! [ "train"; "--preset"; "cpu"; "--stage"; "CrossEntropy"; "--labelled"; "8" ]
      for s in [ "OutputRoot=" + root; "Name=" + name; "Optimizer.Steps=6"; "Optimizer.WarmupSteps=1"; "Optimizer.BatchSize=4"; "LogEvery=1"
                 "EvalEvery=6"; "Data.Scenes.Size=32"; "Data.Crop=32"; "Data.Scenes.Train=16"; "Data.Scenes.Val=4"; "Data.Workers=1"
                 "Model.WidthMultiplier=0.125"; "Model.AsppChannels=16"; "Model.DecoderChannels=16"; "Model.LowLevelChannels=8"; "Model.ProjectionChannels=16" ] do
          yield "--set"
          yield s ]

/// The per-step losses of a run, as the exact text metrics.jsonl holds them.
let private losses (root: string) (name: string) =
    File.ReadLines(Path.Combine(root, name, "metrics.jsonl"))
    |> Seq.filter (fun l -> l.Contains "\"kind\":\"train\"")
    |> Seq.map (fun l -> let e = JsonDocument.Parse(l).RootElement in e.GetProperty("step").GetInt32(), e.GetProperty("cross_entropy").GetRawText())
    |> List.ofSeq

let private tQuantiles = [ 1, 12.7062; 2, 4.3027; 3, 3.1824; 5, 2.5706; 10, 2.2281; 20, 2.0860; 30, 2.0423; 100, 1.9840 ]

let private statsConfig = { FsCheckConfig.defaultConfig with maxTest = 200 }

let private row study setting meth seed (miou: float) numerics : ResultRow =
    { ResultsTests.row study setting meth seed miou with Numerics = numerics }

let tests =
    testList "numerics" [
        test "portable mode pins ATen and oneDNN to AVX2, MKL to its compatible branch and one thread before libtorch loads, over the user's own variables" {
            if not cpu.Avx2 then skiptest "this CPU has no AVX2: portable mode refuses it (tested below)"
            let code, out, err = lab [ "CONTRASTSEG_NUMERICS", "portable"; "ATEN_CPU_CAPABILITY", "default"; "MKL_ENABLE_INSTRUCTIONS", "SSE4_2" ] [ "numerics" ]
            Expect.equal code 0 err
            let p = provenanceOf out
            Expect.equal (p.GetProperty("AtenCapability").GetString()) "AVX2" "read back from libtorch in the child"
            Expect.equal (p.GetProperty("MklBranch").GetString()) "COMPATIBLE" "read back from MKL in the child"
            Expect.equal (p.GetProperty("OneDnn").GetString()) "on (AVX2)" "oneDNN on, capped"
            Expect.equal (p.GetProperty("Threads").GetInt32()) 1 "one thread unless CONTRASTSEG_THREADS says otherwise"
            Expect.stringContains err "numerics: portable" "said in words"
        }

        test "native mode leaves libtorch to the CPU and the environment (what the child reads is what was set)" {
            let code, out, err = lab [ "CONTRASTSEG_NUMERICS", "native"; "ATEN_CPU_CAPABILITY", "default" ] [ "numerics" ]
            Expect.equal code 0 err
            Expect.equal ((provenanceOf out).GetProperty("AtenCapability").GetString()) "DEFAULT" "the user's variable reached libtorch"
            Expect.equal ((provenanceOf out).GetProperty("MklBranch").GetString()) "OFF (dispatch by CPU)" "MKL unpinned"
        }

        test "an unknown mode is refused with the variable and the value" {
            let code, _, err = lab [ "CONTRASTSEG_NUMERICS", "fast" ] [ "numerics" ]
            Expect.equal code 4 "runtime error exit code"
            Expect.stringContains err "CONTRASTSEG_NUMERICS='fast'" "names the variable and value"
        }

        test "a portable training is the same bit for bit whatever instruction-level variables the user has set" {
            if not cpu.Avx2 then skiptest "no AVX2"
            let root = Directory.CreateTempSubdirectory("contrastseg-numerics-").FullName
            try
                let run name env =
                    let code, out, err = lab env (tiny root name)
                    Expect.equal code 0 (out + err)
                    losses root name
                let plain = run "plain" [ "CONTRASTSEG_NUMERICS", "portable" ]
                let userSet = run "user-avx512" [ "CONTRASTSEG_NUMERICS", "portable"; "ATEN_CPU_CAPABILITY", "avx512"; "ONEDNN_MAX_CPU_ISA", "AVX512_CORE"; "MKL_CBWR", "AUTO" ]
                Expect.equal plain.Length 6 "every step logged"
                Expect.equal userSet plain "portable mode overrides the user's variables: same losses to the last digit"
                let firstLine = File.ReadLines(Path.Combine(root, "plain", "provenance.jsonl")) |> Seq.head
                Expect.stringContains firstLine "\"Numerics\":\"portable\"" "the run folder records its numerics"
                if cpu.Avx512 then
                    // On an AVX-512 CPU native mode runs other kernels: the pinning is what made the two runs above agree.
                    let native = run "native" [ "CONTRASTSEG_NUMERICS", "native"; "CONTRASTSEG_THREADS", "1" ]
                    Expect.notEqual native plain "native AVX-512 kernels give other float sums than portable AVX2 ones"
            finally Directory.Delete(root, true)
        }

        test "Student's t quantiles match the table" {
            for df, expected in tQuantiles do
                Expect.floatClose { absolute = 5e-4; relative = 0.0 } (tQuantile975 df) expected (sprintf "t(0.975, %d)" df)
        }

        testPropertyWithConfig statsConfig "the interval is centred on the mean, contains it, and ignores the order of the pairs" <| fun (xs: NormalFloat list) ->
            let diffs = xs |> List.map (fun x -> float x % 50.0)
            diffs.Length < 2 || (
                let i = interval diffs
                let j = interval (List.rev diffs)
                abs (i.Mean - List.average diffs) < 1e-9 && i.Lo <= i.Mean && i.Mean <= i.Hi
                && abs (i.HalfWidth - j.HalfWidth) < 1e-9 && abs ((i.Hi - i.Mean) - (i.Mean - i.Lo)) < 1e-9)

        testPropertyWithConfig statsConfig "a verdict says ahead or behind only when the interval excludes 0" <| fun (xs: NormalFloat list) (shift: NormalFloat) ->
            let diffs = xs |> List.map (fun x -> float x % 10.0 + float shift % 10.0)
            diffs.Length < 2 || (
                let i = interval diffs
                let v = verdict i
                (v.StartsWith "ahead" = (i.Lo > 0.0)) && (v.StartsWith "behind" = (i.Hi < 0.0)) && (v.StartsWith "tie" = (i.Lo <= 0.0 && i.Hi >= 0.0)))

        test "one pair gives no interval and no verdict" {
            let i = interval [ 2.5 ]
            Expect.isTrue (Double.IsNaN i.HalfWidth) "no half-width"
            Expect.equal (verdict i) "n = 1: no interval" "no verdict"
        }

        test "seeds needed: more spread or a tighter target needs more seeds" {
            Expect.equal (seedsFor 0.7 1.5 40) 4 "t(3)*0.7/2 = 1.11 <= 1.5, t(2)*0.7/sqrt 3 = 1.74 > 1.5"
            Expect.isGreaterThan (seedsFor 2.6 1.5 40) (seedsFor 1.0 1.5 40) "more spread, more seeds"
            Expect.equal (seedsFor 100.0 1.5 12) 12 "capped"
        }

        test "pairs share seed and numerics class; unpaired seeds and other classes are left out" {
            let portable = "portable: ATen AVX2, oneDNN on (AVX2), MKL COMPATIBLE, 1 thread, TorchSharp 0.107.0"
            let other = "native: ATen AVX512, oneDNN on (best of the CPU), MKL OFF (dispatch by CPU), 1 thread, TorchSharp 0.107.0 on some CPU"
            let rows =
                [ row "label-efficiency" "labelled=10" "cross-entropy" 0 0.10 portable
                  row "label-efficiency" "labelled=10" "contrastive" 0 0.12 portable
                  row "label-efficiency" "labelled=10" "cross-entropy" 1 0.11 portable
                  row "label-efficiency" "labelled=10" "contrastive" 1 0.12 portable
                  row "label-efficiency" "labelled=10" "contrastive" 2 0.50 portable // no CE twin
                  row "label-efficiency" "labelled=10" "cross-entropy" 3 0.10 other
                  row "label-efficiency" "labelled=10" "contrastive" 3 0.90 other ]
            let cs = compare "cross-entropy" rows
            let c = cs |> List.find (fun c -> c.Numerics = portable)
            Expect.equal (c.Diffs |> List.map fst) [ 0; 1 ] "seeds 0 and 1 paired; seed 2 has no twin"
            Expect.floatClose Accuracy.high c.Interval.Mean 1.5 "mean of +2 and +1 points"
            Expect.equal ((cs |> List.find (fun c -> c.Numerics = other)).Diffs |> List.map fst) [ 3 ] "the other class is its own comparison"
            Expect.stringContains (Paired.markdown cs) "n = 1: no interval" "the single native pair draws no verdict"
        }

        test "a study's rows of two numerics classes are never averaged together, and the minority is flagged" {
            let a = "portable: ATen AVX2, oneDNN on (AVX2), MKL COMPATIBLE, 1 thread, TorchSharp 0.107.0"
            let rows =
                [ row "label-efficiency" "labelled=10" "cross-entropy" 0 0.10 a
                  row "label-efficiency" "labelled=10" "cross-entropy" 1 0.12 a
                  row "label-efficiency" "labelled=10" "cross-entropy" 2 0.50 null ]
            let s = summarise rows
            Expect.equal (s |> List.map (fun s -> s.N) |> List.sort) [ 1; 2 ] "two summaries, not one of three"
            let md = Results.markdown s
            Expect.stringContains md "flagged" "the minority class is flagged"
            Expect.stringContains md "unrecorded" "rows without provenance say so"
        }
    ]
