module ContrastSeg.Lab.Program

[<EntryPoint>]
let main argv = Cli.main argv
