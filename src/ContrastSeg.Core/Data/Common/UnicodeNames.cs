using System.Text;

namespace ContrastSeg.Data;

/// <summary>
/// Ids and file names compared in one Unicode form (NFC). macOS writes file names decomposed (NFD: "e" + U+0301),
/// editors and most other systems composed (NFC: "é"); both look identical, so a list typed on one machine must
/// still find files copied from another.
/// </summary>
internal static class UnicodeNames
{
    /// <summary><paramref name="name"/> in NFC.</summary>
    public static string Nfc(string name) => name.IsNormalized(NormalizationForm.FormC) ? name : name.Normalize(NormalizationForm.FormC);

    /// <summary>
    /// The file <paramref name="fileName"/> in <paramref name="folder"/> as stored: spelled as given, in NFC or in NFD
    /// (the two forms file systems use); null when none exists.
    /// </summary>
    public static string? Existing(string folder, string fileName)
    {
        foreach (var spelling in new[] { fileName, Nfc(fileName), fileName.Normalize(NormalizationForm.FormD) }.Distinct(StringComparer.Ordinal))
        {
            var path = Path.Combine(folder, spelling);
            if (File.Exists(path)) return path;
        }
        return null;
    }
}
