using System.Globalization;

namespace ContrastSeg.Data;

/// <summary>
/// A folder dataset's <c>classes.txt</c>: one class per line, index = line order, as "name" or "name R G B" (the
/// name may contain spaces, and may end in one number: "lane 1"); blank lines and '#' comments are skipped. Classes
/// without a colour get the VOC palette colour of their index; a colour the file gives is also the one a palette mask
/// must show the class in (<see cref="MaskPalettes"/>). Refused, each with its line: a line ending in two
/// numbers or in a colour value outside the integers 0..255 (a mistyped colour, not a name), a colour without a
/// name, a colour written with commas, a name or colour given twice, fewer than 2 classes (nothing to tell apart:
/// the loss would be 0 and the mIoU 100 %) and more than 255 (255 is the ignore label).
/// </summary>
internal static class ClassTable
{
    /// <summary>
    /// Reads the table at <paramref name="path"/>: the classes, and the colours the file declares (null where a line gives
    /// none); reports every problem to <paramref name="issues"/> and returns null when there is one.
    /// </summary>
    public static (DatasetInfo Info, DeclaredColours Declared)? Read(string path, string datasetName, IssueList issues)
    {
        if (!File.Exists(path))
        {
            issues.Add(path, DatasetProblem.BadClassTable, "classes.txt not found (one class name per line, optionally 'name R G B')");
            return null;
        }
        var before = issues.Items.Count;
        var names = new List<string>();
        var colours = new List<Rgb>();
        var declared = new List<Rgb?>();
        var classLines = new List<int>();
        var nameLine = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var colourLine = new Dictionary<Rgb, (int Line, string Name)>();
        var lines = File.ReadAllLines(path);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var at = i + 1;
            void Bad(string message) => issues.Add(path, DatasetProblem.BadClassTable, $"line {at}: {message}");

            var tokens = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var numbers = Enumerable.Reverse(tokens).TakeWhile(IsNumber).Count();
            var name = line;
            Rgb? colour = null;
            if (numbers == 2)
            {
                Bad($"'{line}' ends in two numbers ({string.Join(' ', tokens[^2..])}): a colour is three integers 0..255 (name R G B)");
                continue;
            }
            if (numbers >= 3)
            {
                var values = tokens[^3..];
                name = string.Join(' ', tokens[..^3]);
                if (name.Length == 0)
                {
                    Bad($"'{line}' is a colour without a class name (name R G B)");
                    continue;
                }
                if (values.Select(ColourValue).ToArray() is not [{ } r, { } g, { } b])
                {
                    Bad($"colour '{string.Join(' ', values)}' of '{name}': colour values must be integers 0..255");
                    continue;
                }
                colour = new Rgb(r, g, b);
            }
            else if (tokens[^1].Contains(',') && tokens[^1].Split(',').All(IsNumber))
            {
                Bad($"colour '{tokens[^1]}' of '{string.Join(' ', tokens[..^1])}': separate the values by spaces (name R G B)");
                continue;
            }

            var key = UnicodeNames.Nfc(string.Join(' ', name.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)));
            if (nameLine.TryGetValue(key, out var first))
            {
                Bad($"class '{name}' is also on line {first}: each class is listed once (a mask value is a line's position)");
                continue;
            }
            nameLine[key] = at;
            if (colour is { } c)
            {
                if (colourLine.TryGetValue(c, out var same))
                {
                    Bad($"colour {c.R} {c.G} {c.B} of '{name}' is also that of '{same.Name}' on line {same.Line}: give each class its own colour");
                    continue;
                }
                colourLine[c] = (at, name);
            }
            colours.Add(colour ?? Palettes.VocColor(Math.Min(names.Count, 255)));
            declared.Add(colour);
            names.Add(name);
            classLines.Add(at);
        }
        if (issues.Items.Count > before) return null;
        if (names.Count < 2)
        {
            var listed = names.Count == 0 ? "no classes" : $"1 class ('{names[0]}', line {classLines[0]})";
            issues.Add(path, DatasetProblem.BadClassTable,
                $"classes.txt lists {listed}; segmentation needs at least 2 (e.g. 'background' and the object): with one class every pixel is right, " +
                "the loss is 0 and the mIoU 100 %");
            return null;
        }
        if (names.Count > 255)
        {
            issues.Add(path, DatasetProblem.BadClassTable, $"{names.Count} classes; at most 255 fit an 8-bit mask with 255 as the ignore label");
            return null;
        }
        return (new DatasetInfo(datasetName, names, colours), new DeclaredColours(path, declared));
    }

    private static bool IsNumber(string token) => double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    private static byte? ColourValue(string token) =>
        int.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v is >= 0 and <= 255 ? (byte)v : null;
}
