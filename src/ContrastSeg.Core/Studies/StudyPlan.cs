using System.Text.Json;
using System.Text.Json.Serialization;
using ContrastSeg.Models;
using ContrastSeg.Training;

namespace ContrastSeg.Studies;

/// <summary>The classification pretraining a cell starts from: the encoder it trains, its settings and the weights file it writes.</summary>
/// <param name="Encoder">The encoder it trains.</param>
/// <param name="Options">Its settings (steps, batch, LR, seed).</param>
/// <param name="Weights">The torchvision-style weights file it writes.</param>
/// <param name="ItemsRoot">The Fashion-MNIST folder whose items it classifies (null: the embedded default).</param>
public sealed record ClassificationStep(EncoderOptions Encoder, ClassificationPretrainingOptions Options, string Weights, string? ItemsRoot);

/// <summary>The pseudo-labels a semi-supervised cell's teacher writes for its students: the folder and the thresholds.</summary>
public sealed record PseudoLabelStep(string Folder, PseudoLabelOptions Options);

/// <summary>The report's feature-space plot: the models of the label-efficiency cells at <see cref="Labelled"/> labels, seed 0.</summary>
public sealed record FeatureSpaceRequest(int Labelled, int PointsPerClass);

/// <summary>
/// One cell of a plan: what its row is (study, setting, method, seed) and everything it trains, as complete configs:
/// the classification pretraining it starts from, the teacher stages and pseudo-labels of a semi-supervised cell, and
/// the stages of its final model.
/// </summary>
/// <param name="Request">The cell as the study requested it: its row (study, setting, method, seed), labels and recipe, and what it is planned from.</param>
/// <param name="Classification">The classification pretraining it starts from, or null.</param>
/// <param name="TeacherStages">A semi-supervised cell's teacher stages (empty for the others).</param>
/// <param name="PseudoLabels">The pseudo-labels its teacher writes, or null.</param>
/// <param name="Stages">The stages that train the cell's final model, in order; the last one is scored.</param>
public sealed record PlannedCell(StudyCell Request, ClassificationStep? Classification, IReadOnlyList<TrainConfig> TeacherStages,
    PseudoLabelStep? PseudoLabels, IReadOnlyList<TrainConfig> Stages)
{
    /// <summary>The cell's key (<see cref="StudyCell.Key"/>; written into plan.json for readers, derived when read).</summary>
    public string Key => Request.Key;

    /// <summary>The study of its row.</summary>
    [JsonIgnore]
    public string Study => Request.Study;

    /// <summary>The varied setting of its row.</summary>
    [JsonIgnore]
    public string Setting => Request.Setting;

    /// <summary>The method of its row.</summary>
    [JsonIgnore]
    public string Method => Request.Method;

    /// <summary>The training seed.</summary>
    [JsonIgnore]
    public int Seed => Request.Seed;

    /// <summary>Labelled training images (null: all).</summary>
    [JsonIgnore]
    public int? Labelled => Request.Labelled;

    /// <summary>How it trains its final model.</summary>
    [JsonIgnore]
    public CellRecipe Recipe => Request.Recipe;

    /// <summary>The stage whose model is scored.</summary>
    [JsonIgnore]
    public TrainConfig Final => Stages[^1];

    /// <summary>Every stage the cell trains: teacher stages, then the final model's.</summary>
    [JsonIgnore]
    public IEnumerable<TrainConfig> TrainedStages => TeacherStages.Concat(Stages);

    /// <summary>The run names of the final model's stages: what a row records it was computed from.</summary>
    [JsonIgnore]
    public string FinalStageNames => string.Join(" -> ", Stages.Select(s => s.RunName));

    /// <summary>Every run and pseudo-label folder the cell writes (what <c>--force</c> deletes).</summary>
    [JsonIgnore]
    public IReadOnlyList<string> Folders =>
        TrainedStages.Select(s => s.RunDirectory).Concat(PseudoLabels is null ? [] : [PseudoLabels.Folder]).Distinct().ToList();

    /// <summary>
    /// What training the cell writes besides its row: the classification weights it starts from, its run folders and
    /// pseudo-labels (each named by its settings, so cells that mean the same training share it).
    /// </summary>
    [JsonIgnore]
    public IReadOnlyList<string> Outputs =>
        (Classification is null ? [] : new[] { Classification.Weights }).Concat(Folders).Distinct().ToList();
}

/// <summary>
/// A study written out: every cell with the complete config of every stage, the split scored, and what the report
/// needs. <see cref="StudyPlanner"/> makes it; the grid writes it to <c>results/&lt;profile&gt;/plan.json</c> before anything
/// trains, and workers (<c>--plan plan.json --cell key</c>), cluster tasks, the reuse check and the report read it.
/// </summary>
/// <param name="Format">The plan file's format (<see cref="CurrentFormat"/>).</param>
/// <param name="Profile">The profile (study) name; results go to results/&lt;profile&gt; by default.</param>
/// <param name="Description">What the study trains, in words.</param>
/// <param name="Defaults">What every cell shares, as the study requested it.</param>
/// <param name="EvalSplit">The split the final models are scored on.</param>
/// <param name="ValSplit">The split validated during training (learning curves).</param>
/// <param name="Device">The device every stage, pseudo-labelling, evaluation and the feature space run on.</param>
/// <param name="FeatureSpace">The report's feature-space plot, or null.</param>
/// <param name="Cells">Every cell, once.</param>
public sealed record StudyPlan(int Format, string Profile, string Description, StudyDefaults Defaults, string EvalSplit, string ValSplit, string Device,
    FeatureSpaceRequest? FeatureSpace, IReadOnlyList<PlannedCell> Cells)
{
    /// <summary>
    /// <paramref name="cell"/> as planned under another runs folder. Run names hash the paths stages start from
    /// (pretraining runs, classification weights, pseudo-labels), so a row trained on a machine with another runs
    /// folder names its stages this way.
    /// </summary>
    public PlannedCell Under(PlannedCell cell, string outputRoot) =>
        outputRoot == Defaults.Base.OutputRoot ? cell : StudyPlanner.PlanCell(Defaults.WithBase(Defaults.Base with { OutputRoot = outputRoot }), cell.Request);

    /// <summary>The format this version writes and reads.</summary>
    public const int CurrentFormat = 1;

    /// <summary>The plan's file name in a results folder.</summary>
    public const string FileName = "plan.json";

    private static readonly JsonSerializerOptions Json = new(TrainConfig.Json);

    /// <summary>The cell with <paramref name="key"/>.</summary>
    /// <exception cref="ConfigException">The plan has no such cell (the message names the plan's profile).</exception>
    public PlannedCell Cell(string key) =>
        Cells.FirstOrDefault(c => c.Key == key)
        ?? throw new ConfigException($"no cell '{key}' in the plan of profile {Profile} (see --list-keys)", "--cell");

    /// <summary>Whether a cell's final model is one the report's feature space reads (its checkpoint must be on this machine).</summary>
    public bool NeedsCheckpoint(PlannedCell cell) =>
        FeatureSpace is { } f && cell.Study == "label-efficiency" && cell.Labelled == f.Labelled && cell.Seed == 0;

    /// <summary>The plan as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Writes the plan to <paramref name="path"/> atomically (a task reading it never sees half a file).</summary>
    public void Write(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = $"{full}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temporary, ToJson());
        File.Move(temporary, full, overwrite: true);
    }

    /// <summary>Reads a plan file; a missing, damaged or other-format file is an error naming it.</summary>
    public static StudyPlan Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"plan file {path} does not exist (the grid writes results/<profile>/{FileName}; --list and --list-keys write it too)", path);
        StudyPlan? plan;
        try { plan = JsonSerializer.Deserialize<StudyPlan>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"plan file {path} is not a plan ({e.Message})", e); }
        if (plan is null || plan.Cells is null) throw new InvalidDataException($"plan file {path} is empty");
        if (plan.Format != CurrentFormat)
            throw new InvalidDataException($"plan file {path} has format {plan.Format}; this version reads format {CurrentFormat}: write it again with the command that made it");
        return plan;
    }
}
