namespace ContrastSeg.Data;

/// <summary>
/// Derives independent seeds from tuples of integers (SplitMix64 finalizer over the parts), so that
/// every scene, sample and view gets its own <see cref="Random"/> without shared state: the value
/// depends only on the parts, never on the thread or the call order.
/// </summary>
internal static class SeedHash
{
    /// <summary>Mixes the parts into a 64-bit value.</summary>
    public static ulong Mix(long a, long b = 0, long c = 0, long d = 0, long e = 0)
    {
        var h = 0x9E3779B97F4A7C15UL;
        h = Step(h ^ (ulong)a);
        h = Step(h ^ (ulong)b);
        h = Step(h ^ (ulong)c);
        h = Step(h ^ (ulong)d);
        h = Step(h ^ (ulong)e);
        return h;
    }

    /// <summary>A non-negative 31-bit seed for <see cref="System.Random"/>.</summary>
    public static int Seed(long a, long b = 0, long c = 0, long d = 0, long e = 0) => (int)(Mix(a, b, c, d, e) >> 33);

    /// <summary>A fresh generator for the given parts.</summary>
    public static Random Random(long a, long b = 0, long c = 0, long d = 0, long e = 0) => new(Seed(a, b, c, d, e));

    /// <summary>SplitMix64's finaliser (Steele, Lea, Flood 2014).</summary>
    public static ulong Step(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
