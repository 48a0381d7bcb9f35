namespace ContrastSeg.Training;

/// <summary>An invalid setting; <see cref="Field"/> names it.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ConfigException(string message, string field) : base(message) => Field = field;

    /// <summary>The offending field (dotted path).</summary>
    public string Field { get; }
}
