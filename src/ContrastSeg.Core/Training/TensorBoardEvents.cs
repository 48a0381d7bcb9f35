using System.Buffers.Binary;
using System.Text;

namespace ContrastSeg.Training;

/// <summary>
/// Writes a TensorBoard event file: TFRecord-framed <c>tensorflow.Event</c> protos with scalar summaries, wall times in
/// Unix seconds (what TensorBoard's relative and wall-time axes read) and a file name
/// <c>events.out.tfevents.&lt;unix seconds&gt;.&lt;host&gt;.&lt;pid&gt;.&lt;n&gt;</c>, as TensorFlow and PyTorch name theirs.
/// </summary>
/// <remarks>
/// Not TorchSharp's SummaryWriter: in 0.107 it stamps the file name and the file_version event with .NET ticks
/// (6.4e17 where TensorBoard expects ~1.8e9) and takes a scalar's wall time only as whole seconds.
/// The file is flushed after every event, so TensorBoard shows a run while it trains and a crash loses nothing written.
/// </remarks>
public sealed class TensorBoardEventWriter : IDisposable
{
    private static int _uid;
    private readonly FileStream _file;

    /// <summary>Creates a new event file in <paramref name="logDirectory"/>, starting with the file_version event.</summary>
    public TensorBoardEventWriter(string logDirectory)
    {
        Directory.CreateDirectory(logDirectory);
        var now = DateTimeOffset.UtcNow;
        var name = FormattableString.Invariant(
            $"events.out.tfevents.{now.ToUnixTimeSeconds():D10}.{Environment.MachineName}.{Environment.ProcessId}.{Interlocked.Increment(ref _uid)}");
        FilePath = Path.Combine(logDirectory, name);
        // CreateNew: another writer's file is never appended to or replaced.
        _file = new FileStream(FilePath, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        Write(Event(now, step: null, fileVersion: "brain.Event:2", scalars: null));
    }

    /// <summary>Path of the event file.</summary>
    public string FilePath { get; }

    /// <summary>Seconds since 1970-01-01 UTC, with the clock's sub-second part: an event's <c>wall_time</c>.</summary>
    public static double UnixSeconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / (double)TimeSpan.TicksPerSecond;

    /// <summary>One event at <paramref name="time"/> holding the scalars (tag, value) of <paramref name="step"/>.</summary>
    public void AddScalars(long step, IReadOnlyList<(string Tag, float Value)> scalars, DateTimeOffset time)
    {
        if (scalars.Count == 0) return;
        Write(Event(time, step, fileVersion: null, scalars));
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file.Dispose();

    private void Write(byte[] data)
    {
        // TFRecord: uint64 length, masked CRC32C of the length, data, masked CRC32C of the data (all little-endian).
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc(data));
        _file.Write(header);
        _file.Write(data);
        _file.Write(footer);
        _file.Flush();
    }

    // tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5 (Summary);
    // Summary: value = 1 (repeated Value); Value: tag = 1 (string), simple_value = 2 (float).
    private static byte[] Event(DateTimeOffset time, long? step, string? fileVersion, IReadOnlyList<(string Tag, float Value)>? scalars)
    {
        var e = new MemoryStream();
        e.WriteByte(1 << 3 | 1);
        Span<byte> b8 = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(b8, UnixSeconds(time));
        e.Write(b8);
        if (step is long s) { e.WriteByte(2 << 3 | 0); Varint(e, (ulong)s); }
        if (fileVersion is not null) Bytes(e, 3, Encoding.UTF8.GetBytes(fileVersion));
        if (scalars is not null)
        {
            var summary = new MemoryStream();
            Span<byte> b4 = stackalloc byte[4];
            foreach (var (tag, value) in scalars)
            {
                var v = new MemoryStream();
                Bytes(v, 1, Encoding.UTF8.GetBytes(tag));
                v.WriteByte(2 << 3 | 5);
                BinaryPrimitives.WriteSingleLittleEndian(b4, value);
                v.Write(b4);
                Bytes(summary, 1, v.ToArray());
            }
            Bytes(e, 5, summary.ToArray());
        }
        return e.ToArray();
    }

    private static void Bytes(Stream s, int field, byte[] payload)
    {
        s.WriteByte((byte)(field << 3 | 2));
        Varint(s, (ulong)payload.Length);
        s.Write(payload);
    }

    private static void Varint(Stream s, ulong v)
    {
        for (; v >= 0x80; v >>= 7) s.WriteByte((byte)(v | 0x80));
        s.WriteByte((byte)v);
    }

    private static readonly uint[] CrcTable = BuildCrcTable();

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1; // CRC-32C (Castagnoli), reflected
            table[i] = c;
        }
        return table;
    }

    /// <summary>CRC-32C of <paramref name="data"/>, rotated and offset as TFRecord stores it.</summary>
    internal static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        crc ^= 0xFFFFFFFFu;
        return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
    }
}
