namespace ContrastSeg.Training;

/// <summary>Linear warm-up from 0, then cosine decay to 0 over the remaining steps (the paper's schedule).</summary>
public static class LearningRateSchedule
{
    /// <summary>Learning rate at optimiser step <paramref name="step"/> (0-based) of <paramref name="steps"/>.</summary>
    public static double At(int step, int steps, double baseRate, int warmupSteps = 0)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps));
        if (step < warmupSteps) return baseRate * (step + 1) / warmupSteps;
        var progress = (double)(step - warmupSteps) / Math.Max(1, steps - warmupSteps);
        return baseRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp(progress, 0, 1)));
    }
}
