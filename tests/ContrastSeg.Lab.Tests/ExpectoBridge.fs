/// Runs the Expecto tests under `dotnet test`: one xunit case per Expecto test, so VSTest counts and
/// reports each of them and a failing property fails the solution's test run.
/// (YoloDev.Expecto.TestSdk, the usual adapter, is not available from this package feed.)
namespace ContrastSeg.Lab.Tests

open System.Threading
open Expecto
open Xunit

module AllTests =
    let root = testList "ContrastSeg.Lab" [ LossProperties.tests; ResultsTests.tests; NumericsTests.tests; GridTests.tests; StudyTests.tests; StudyTests.exportTests; DamagedResultsTests.tests; RegimeTests.tests; ChartTests.tests; KillResumeTests.tests; GridSignalTests.tests; CliTests.tests; ScriptTests.tests; ClusterTests.tests; PlanTests.tests; PeersTests.tests; ReportRebuildTests.tests; DocsSiteTests.tests ]

    let flat =
        Test.toTestCodeList root
        |> List.map (fun t -> String.concat "/" t.name, t.test)
        |> dict

type ExpectoBridge() =
    do ContrastSeg.Runtime.TorchRuntime.EnsureInitialized() |> ignore

    static member Names: TheoryData<string> =
        let data = TheoryData<string>()
        for name in AllTests.flat.Keys do data.Add name
        data

    [<Theory>]
    [<MemberData(nameof ExpectoBridge.Names)>]
    member _.Expecto(name: string) =
        match AllTests.flat.[name] with
        | Sync run -> run ()
        | SyncWithCancel run -> run CancellationToken.None
        | Async run -> Async.RunSynchronously run
        | AsyncFsCheck (config, _, run) -> run (defaultArg config FsCheckConfig.defaultConfig) |> Async.RunSynchronously
