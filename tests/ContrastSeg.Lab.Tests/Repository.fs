/// The repository the tests run from: the folder above the test binaries that holds ContrastSeg.sln.
module ContrastSeg.Lab.Tests.Repository

open System
open System.IO

let root =
    lazy (
        let rec up (dir: DirectoryInfo) =
            if isNull dir then failwithf "no ContrastSeg.sln above %s" AppContext.BaseDirectory
            elif File.Exists(Path.Combine(dir.FullName, "ContrastSeg.sln")) then dir.FullName
            else up dir.Parent
        up (DirectoryInfo AppContext.BaseDirectory))
