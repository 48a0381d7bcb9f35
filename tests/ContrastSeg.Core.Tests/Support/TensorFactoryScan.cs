using System.Text;
using System.Text.RegularExpressions;

namespace ContrastSeg.Tests.Support;

/// <summary>
/// Reads C# source and finds the calls of TorchSharp tensor factories (<c>zeros</c>, <c>tensor</c>, <c>randperm</c>, ...,
/// and <c>new Generator(...)</c>) that do not name their device (<c>device: ...</c>): a tensor made without one lands on
/// the CPU whatever device the run uses. Comments and string literals are skipped; <c>*_like</c> factories take their
/// input's device and are not factories here; a call through another object (<c>x.full(...)</c>) is not TorchSharp's.
/// </summary>
public static partial class TensorFactoryScan
{
    /// <summary>The factory names looked for (Generator only after <c>new</c>).</summary>
    public static readonly IReadOnlyList<string> Factories =
        ["zeros", "ones", "tensor", "arange", "empty", "full", "randperm", "rand", "randn", "randint", "eye", "linspace", "from_array", "Generator"];

    /// <summary>A factory call without a named device: file, 1-based line, factory, the call's text.</summary>
    public sealed record Call(string File, int Line, string Factory, string Text)
    {
        public override string ToString() => $"{File}:{Line}: {Text}";
    }

    [GeneratedRegex(@"\b(zeros|ones|tensor|arange|empty|full|randperm|rand|randn|randint|eye|linspace|from_array|Generator)\s*\(")]
    private static partial Regex FactoryCall();

    [GeneratedRegex(@"\bdevice\s*:(?!:)")]
    private static partial Regex NamedDevice();

    /// <summary>Every call in <paramref name="source"/> (the text of <paramref name="file"/>) that names no device.</summary>
    public static IEnumerable<Call> CallsWithoutDevice(string file, string source)
    {
        var code = Blank(source);
        foreach (Match m in FactoryCall().Matches(code))
        {
            var name = m.Groups[1].Value;
            var before = code[..m.Index].TrimEnd();
            if (before.EndsWith('.'))
            {
                // Only torch.x(...) / TorchSharp.torch.x(...): x.full(...) on another object is not a factory.
                if (!Regex.IsMatch(before, @"(^|[^\w.])(TorchSharp\.)?torch\.$")) continue;
            }
            if (name == "Generator" && !Regex.IsMatch(before, @"\bnew$")) continue;
            var open = m.Index + m.Length - 1;
            var (arguments, end) = TopLevelArguments(code, open);
            if (NamedDevice().IsMatch(arguments)) continue;
            var line = source[..m.Index].Count(c => c == '\n') + 1;
            var text = Regex.Replace(source[m.Index..Math.Min(end + 1, source.Length)], @"\s+", " ");
            yield return new Call(file, line, name, text);
        }
    }

    /// <summary>The text of a call's arguments at its own nesting level (inner calls blanked), and the index of its closing parenthesis.</summary>
    private static (string Arguments, int End) TopLevelArguments(string code, int open)
    {
        var top = new StringBuilder();
        var depth = 0;
        for (var i = open; i < code.Length; i++)
        {
            var c = code[i];
            if (c is '(' or '[' or '{') depth++;
            else if (c is ')' or ']' or '}')
            {
                depth--;
                if (depth == 0) return (top.ToString(), i);
            }
            else if (depth == 1) top.Append(c);
        }
        return (top.ToString(), code.Length - 1);
    }

    /// <summary><paramref name="source"/> with comments and string and character literals replaced by blanks (line breaks kept).</summary>
    public static string Blank(string source)
    {
        var s = source.ToCharArray();
        var i = 0;
        void BlankTo(int end)
        {
            for (; i < end && i < s.Length; i++) if (s[i] != '\n') s[i] = ' ';
        }
        while (i < s.Length)
        {
            if (s[i] == '/' && i + 1 < s.Length && s[i + 1] == '/') BlankTo(IndexOrEnd(source, "\n", i));
            else if (s[i] == '/' && i + 1 < s.Length && s[i + 1] == '*') BlankTo(IndexOrEnd(source, "*/", i + 2) + 2);
            else if (source.AsSpan(i).StartsWith("\"\"\"")) BlankTo(IndexOrEnd(source, "\"\"\"", i + 3) + 3);
            else if (s[i] == '"')
            {
                BlankTo(StringEnd(source, i) + 1);
            }
            else if (s[i] == '\'')
            {
                var j = i + 1;
                while (j < s.Length && source[j] != '\'') j += source[j] == '\\' ? 2 : 1;
                BlankTo(j + 1);
            }
            else i++;
        }
        return new string(s);
    }

    /// <summary>The index of the closing quote of the string literal whose opening quote is at <paramref name="open"/>.</summary>
    private static int StringEnd(string source, int open)
    {
        var prefix = source[Math.Max(0, open - 2)..open];
        var verbatim = prefix.EndsWith('@') || prefix == "@$";
        var interpolated = prefix.EndsWith('$') || prefix == "$@";
        var j = open + 1;
        while (j < source.Length)
        {
            var c = source[j];
            if (verbatim && c == '"' && j + 1 < source.Length && source[j + 1] == '"') j += 2; // "" inside @"..."
            else if (!verbatim && c == '\\') j += 2;
            else if (interpolated && c == '{' && j + 1 < source.Length && source[j + 1] == '{') j += 2;
            else if (interpolated && c == '{')
            {
                // A hole: code up to its closing brace, which may hold strings of its own.
                var depth = 0;
                for (; j < source.Length; j++)
                {
                    if (source[j] == '"') j = StringEnd(source, j);
                    else if (source[j] == '{') depth++;
                    else if (source[j] == '}' && --depth == 0) break;
                }
                j++;
            }
            else if (c == '"' || !verbatim && c == '\n') return j;
            else j++;
        }
        return source.Length - 1;
    }

    private static int IndexOrEnd(string source, string what, int from)
    {
        var k = source.IndexOf(what, Math.Min(from, source.Length), StringComparison.Ordinal);
        return k < 0 ? source.Length : k;
    }
}
