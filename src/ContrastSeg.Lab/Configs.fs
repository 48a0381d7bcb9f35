/// Copy-and-update for the C# config records from F#, which has no `with` for them.
/// `config |> update <@ fun c -> c.Seed @> 3` copies the record and sets one init-only property;
/// the quotation keeps the property name checked by the compiler.
module ContrastSeg.Lab.Configs

open System.Reflection
open Microsoft.FSharp.Quotations
open Microsoft.FSharp.Quotations.Patterns

let private memberwiseClone = typeof<obj>.GetMethod("MemberwiseClone", BindingFlags.Instance ||| BindingFlags.NonPublic)

/// A copy of `x` with the property named by `property` set to `value`.
let update (property: Expr<'T -> 'V>) (value: 'V) (x: 'T) : 'T =
    match property with
    | Lambda(_, PropertyGet(Some _, info, [])) ->
        let copy = memberwiseClone.Invoke(x, [||]) :?> 'T
        info.SetValue(copy, box value)
        copy
    | _ -> invalidArg "property" (sprintf "expected a property access like <@ fun c -> c.Seed @>, got %A" property)
