/// POSIX signals between a grid and its worker processes: a grid stops on SIGTERM, SIGINT or SIGHUP by passing
/// SIGTERM on to its workers, and a worker stops when its grid is gone, however it went (SIGKILL, a crash).
module ContrastSeg.Lab.Signals

open System
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Threading

module private Native =
    [<DllImport("libc", SetLastError = true)>]
    extern int kill(int pid, int signal)

    [<DllImport("libc")>]
    extern int getppid()

/// The signals that stop a grid, with their numbers (the same on Linux and macOS): a stopped grid exits with 128 + it.
/// One table with the trainer's (ContrastSeg.Training.StopSignals).
let stopping = [ for struct (signal, n) in ContrastSeg.Training.StopSignals.All -> signal, n ]

/// The number of a signal in `stopping`.
let number (signal: PosixSignal) = ContrastSeg.Training.StopSignals.Number signal

/// Sends signal `number` to process `pid` (kill(2)); false when there is no such process.
let send (pid: int) (number: int) = Native.kill(pid, number) = 0

/// Asks a worker to stop with SIGTERM, not SIGKILL (Process.Kill): whatever a worker does on SIGTERM it does here
/// too. (Windows has no signals: there the worker is killed.)
let terminate (p: Process) =
    if OperatingSystem.IsWindows() then p.Kill true
    elif not p.HasExited then send p.Id 15 |> ignore

/// Calls `handler` on SIGTERM, SIGINT or SIGHUP instead of the runtime's default (ending the process at once), until disposed.
let onStop (handler: PosixSignal -> unit) : IDisposable =
    let registrations =
        [ for signal, _ in stopping ->
            PosixSignalRegistration.Create(signal, fun context ->
                context.Cancel <- true
                handler context.Signal) ]
    { new IDisposable with member _.Dispose() = for r in registrations do r.Dispose() }

/// The environment variable through which a grid gives its worker processes its process id.
let gridVariable = "CONTRASTSEG_GRID_PID"

/// In a worker process (started with `gridVariable` set): stops this process, as SIGTERM does, within a second of its
/// grid's end. The grid is gone when this process's parent id is no longer the grid's (the kernel gives an orphan to
/// init or a subreaper). Polling getppid, rather than prctl(PR_SET_PDEATHSIG): PDEATHSIG fires when the *thread* that
/// started the worker ends (in .NET any thread may call Process.Start), must be set in the child before exec (which
/// Process.Start cannot do: set later, a grid that dies first is missed) and exists on Linux only.
let followGrid (log: TextWriter) =
    match Int32.TryParse(Environment.GetEnvironmentVariable gridVariable) with
    | true, grid when not (OperatingSystem.IsWindows()) ->
        let watch () =
            while Native.getppid () = grid do
                Thread.Sleep 1000
            try log.WriteLine(sprintf "[ablations] the grid (process %d) is gone: this worker stops; its cell resumes from its last checkpoint when the grid runs again" grid)
            with :? IOException -> () // the grid read our output
            send Environment.ProcessId 15 |> ignore
        Thread(watch, IsBackground = true, Name = "grid watch").Start()
    | _ -> ()
