using System.Globalization;
using ContrastSeg.Models;

namespace ContrastSeg.Training;

/// <summary>Run names that encode the settings, so a results table maps to runs (as mmsegmentation's config names do).</summary>
public static class RunNames
{
    /// <summary>
    /// e.g. <c>contrastive-within-t0.07_r18w0.25-os8_fmscenes-n20_crop64_b8_1500st_lr0.1_s0_1a2b3c</c>: the main
    /// settings readably, then a hash of every weights-defining setting (<see cref="SettingsHash"/>), so two
    /// runs that differ in a setting the readable part leaves out (augmentation, temperature, schedule details)
    /// never share a folder and a changed profile never finds a stale run.
    /// </summary>
    public static string Derive(TrainConfig c) => Readable(c) + "_" + SettingsHash(c);

    /// <summary>
    /// Six hex digits of the SHA-256 of <see cref="TrainConfig.WeightsDefiningJson"/> without the output
    /// location and explicit name (which say where a run goes, not what it is).
    /// </summary>
    public static string SettingsHash(TrainConfig c) =>
        // Name = "" (not null): the JSON includes RunName, which must not call back into Derive.
        Hash((c with { OutputRoot = "", Name = "" }).WeightsDefiningJson())[..6];

    /// <summary>A number as names write it: invariant, up to five decimals, no trailing zeros (0.25, 1e-3 as 0.001).</summary>
    public static string Number(double v) => v.ToString("0.#####", CultureInfo.InvariantCulture);

    /// <summary>The first <paramref name="bytes"/> bytes of the SHA-256 of <paramref name="text"/> (UTF-8) in lower-case hex: the short hashes names end with.</summary>
    public static string Digest(string text, int bytes) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)), 0, bytes).ToLowerInvariant();

    private static string Readable(TrainConfig c)
    {
        var stage = c.Stage switch
        {
            TrainingStage.Contrastive => $"contrastive-{c.Contrastive.Variant.ToString().ToLowerInvariant().Replace("image", "")}-t{Number(c.Contrastive.Temperature)}"
                                         + (c.Data.ContrastiveDistortion ? "" : "-nodistort") + PeerTag(c.Contrastive),
            TrainingStage.FineTune => "finetune",
            TrainingStage.Joint => $"joint-{c.Contrastive.Variant.ToString().ToLowerInvariant().Replace("image", "")}-t{Number(c.Contrastive.Temperature)}-w{Number(c.Contrastive.JointWeight)}"
                                   + PeerTag(c.Contrastive),
            _ => "ce",
        };
        var depth = (int)c.Model.Depth;
        var data = DatasetRegistry.Find(c.Data.Dataset)?.RunNameTag ?? c.Data.Dataset; // an unknown name fails Validate
        var labelled = (c.Data.Labelled is { } n ? $"n{n}" : "all") + (c.Data.PseudoLabels is { } pseudo ? "+pseudo-" + Hash(pseudo) : "");
        var batch = c.Optimizer.Accumulation > 1 ? $"b{c.Optimizer.BatchSize}x{c.Optimizer.Accumulation}" : $"b{c.Optimizer.BatchSize}";
        var init = c.InitFrom is null ? "" : "_init-" + InitTag(c.InitFrom);
        return $"{stage}_r{depth}w{Number(c.Model.WidthMultiplier)}-os{c.Model.OutputStride}{(c.Model.Stem == EncoderStem.Small ? "-small" : "")}_{data}-{labelled}_crop{c.Data.Crop}_{batch}_{c.Optimizer.Steps}st_lr{Number(c.Optimizer.LearningRate)}{init}_s{c.Seed}";
    }

    /// <summary>
    /// The peers' options a run sets, readably (empty without any, so names without them stay as they were): <c>-reco</c>
    /// (regional form), <c>-a16</c> (anchors per class), <c>-h0.5</c> (hard anchors), <c>-m256+64</c> (memory pixels + regions).
    /// </summary>
    private static string PeerTag(ContrastiveSettings s) =>
        (s.Form == ContrastSeg.Losses.ContrastiveForm.Regional ? "-reco" : "")
        + (s.AnchorsPerClass > 0 ? $"-a{s.AnchorsPerClass}" : "")
        + (s.HardAnchorFraction > 0 ? $"-h{Number(s.HardAnchorFraction)}" : "")
        + (s.MemoryPixels > 0 || s.MemoryRegions > 0 ? $"-m{s.MemoryPixels}+{s.MemoryRegions}" : "");

    /// <summary>A short readable prefix of the initial weights' name plus a hash of the full path, so names stay unique.</summary>
    private static string InitTag(string initFrom)
    {
        var name = Path.GetFileName(initFrom.TrimEnd('/', '\\'));
        var clean = new string(name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '.' ? ch : '-').ToArray());
        return (clean.Length > 20 ? clean[..20] : clean) + "-" + Hash(initFrom);
    }

    // Separators as '/': a path typed on Windows names the same run.
    private static string Hash(string path) => Digest(path.Replace('\\', '/'), 4);
}
