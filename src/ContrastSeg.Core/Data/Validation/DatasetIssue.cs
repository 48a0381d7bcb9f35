namespace ContrastSeg.Data;

/// <summary>Kinds of dataset problems found by the readers and the validator.</summary>
public enum DatasetProblem
{
    /// <summary>Something else (see the message).</summary>
    Other,
    /// <summary>The dataset root folder (or a required sub-folder) does not exist.</summary>
    MissingRoot,
    /// <summary>A split/id-list file does not exist.</summary>
    MissingSplitFile,
    /// <summary>A split lists no ids.</summary>
    EmptySplit,
    /// <summary>An id occurs more than once in a split.</summary>
    DuplicateId,
    /// <summary>A listed id has no image or mask file.</summary>
    MissingFile,
    /// <summary>A file cannot be decoded (truncated, corrupt, not an image).</summary>
    CorruptFile,
    /// <summary>A mask is not an 8-bit palette or grayscale index PNG (e.g. an RGB rendering).</summary>
    NotIndexMask,
    /// <summary>Mask and image differ in size.</summary>
    SizeMismatch,
    /// <summary>A mask holds a label that is neither a class index nor the ignore label.</summary>
    LabelOutOfRange,
    /// <summary>A class table (e.g. classes.txt) is missing or malformed.</summary>
    BadClassTable,
    /// <summary>An image is, as loaded (after Data.Resize), smaller than the model reads (see <see cref="MinimumImageSize"/>).</summary>
    ImageTooSmall,
    /// <summary>An image or mask has more pixels than <see cref="PixelLimit"/> allows (its header says so; it is not decoded).</summary>
    TooManyPixels,
    /// <summary>A palette mask shows a class in a colour other than the one the class table declares for it (<see cref="MaskPalettes"/>).</summary>
    PaletteMismatch,
}

/// <summary>One problem of a dataset: the file (or folder/list) at fault, the kind, and a readable message.</summary>
/// <param name="File">The file, folder or list the problem is about.</param>
/// <param name="Problem">The kind of problem.</param>
/// <param name="Message">What is wrong, in words (without the file name).</param>
public sealed record DatasetIssue(string File, DatasetProblem Problem, string Message)
{
    /// <summary>"file: message [Problem]".</summary>
    public override string ToString() => $"{File}: {Message} [{Problem}]";
}
