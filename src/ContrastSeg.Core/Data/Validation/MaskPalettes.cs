namespace ContrastSeg.Data;

/// <summary>The class colours a class table declares: per class index, its colour, or null where the table gives none.</summary>
/// <param name="Table">The class table file (classes.txt), as messages name it.</param>
/// <param name="Colours">Per class index, the declared colour or null.</param>
internal sealed record DeclaredColours(string Table, IReadOnlyList<Rgb?> Colours);

/// <summary>
/// Checks the palette of a palette mask against the class colours a class table declares. The kit reads a mask's
/// palette index as its class and never its colour, so a mask whose palette shows class i in a colour other than
/// class i's was saved with its palette in another order than classes.txt (as a drawing tool's own label order),
/// and every such pixel would train as the wrong class: such a mask is refused. Only the indices the mask uses and
/// only colours the table declares are compared (a class without a colour in classes.txt has none to compare).
/// </summary>
internal static class MaskPalettes
{
    /// <summary>
    /// Throws a <see cref="DatasetException"/> of kind <see cref="DatasetProblem.PaletteMismatch"/> naming
    /// <paramref name="maskPath"/>, the first palette index used whose colour is not its class's declared colour, both
    /// colours and the class; nothing for a grayscale mask.
    /// </summary>
    /// <param name="png">The mask as stored.</param>
    /// <param name="colours">The colours the class table declares.</param>
    /// <param name="info">The class names.</param>
    /// <param name="maskPath">The mask file.</param>
    public static void Check(PngIndexImage png, DeclaredColours colours, DatasetInfo info, string maskPath)
    {
        if (png.Palette is not { } palette) return;
        var (table, declared) = (colours.Table, colours.Colours);
        var used = new long[256];
        foreach (var v in png.Indices) used[v]++;
        var wrong = Enumerable.Range(0, Math.Min(Math.Min(declared.Count, palette.Length), 256))
            .Where(i => used[i] > 0 && i != info.IgnoreLabel && declared[i] is { } colour && palette[i] != colour)
            .ToArray();
        if (wrong.Length == 0) return;

        var first = wrong[0];
        var message = $"palette index {first} ({used[first]} pixel{(used[first] == 1 ? "" : "s")}) has colour {Text(palette[first])}, but {table} declares " +
                      $"class {first} '{info.ClassNames[first]}' as {Text(declared[first]!.Value)}: the kit reads a mask's palette index as its class, " +
                      $"never its colour, so these pixels would train as '{info.ClassNames[first]}'";
        var sameColour = Enumerable.Range(0, declared.Count).FirstOrDefault(j => declared[j] == palette[first], -1);
        if (sameColour >= 0) message += $", although they show the colour of class {sameColour} '{info.ClassNames[sameColour]}'";
        if (wrong.Length > 1)
            message += $" ({wrong.Length - 1} more used ind{(wrong.Length == 2 ? "ex differs" : "ices differ")}: {string.Join(", ", wrong.Skip(1).Take(10))}{(wrong.Length > 11 ? ", ..." : "")})";
        message += sameColour >= 0
            ? $". The palette is in another order than {table}: re-save the mask with index i for class i, or list the classes in the palette's order"
            : $". Re-save the mask with class i's colour at index i, or declare the palette's colours in {table} (a class without a colour is not compared)";
        throw Problems.Fail(DatasetProblem.PaletteMismatch, message, maskPath);
    }

    private static string Text(Rgb c) => $"{c.R} {c.G} {c.B}";
}
