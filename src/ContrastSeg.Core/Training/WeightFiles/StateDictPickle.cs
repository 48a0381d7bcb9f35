using System.Buffers.Binary;
using System.Text;

namespace ContrastSeg.Training;

/// <summary>
/// A pickle reader for PyTorch state dicts that runs nothing: it knows the opcodes <c>torch.save</c> and
/// TorchSharp.PyBridge write for containers, numbers and strings, and the few names a state dict refers to
/// (<c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c>,
/// <c>torch.*Storage</c>). Any other name (<c>os.system</c>, <c>builtins.eval</c>, a model class) is refused
/// where the pickle names it, before anything could call it: the same rule as PyTorch's <c>weights_only</c> loading.
/// Tensors come out as <see cref="PickledTensor"/> descriptions; their bytes stay in the file until asked for.
/// Every length is checked against the bytes left and the number of values is bounded, so the index of a
/// crafted file costs at most a few times its own size in memory.
/// </summary>
internal static class StateDictPickle
{
    /// <summary>Values a pickle may create (a ResNet-101 state dict makes ~20,000).</summary>
    public const int MaxValues = 500_000;

    /// <summary>A storage a tensor views: its element type, the archive record that holds its bytes, its length.</summary>
    public sealed record Storage(PickleStorageType Type, string Key, long Elements);

    /// <summary>The element type of a <c>torch.*Storage</c> name.</summary>
    public sealed record PickleStorageType(string Name, TorchSharp.torch.ScalarType ScalarType, int ElementSize);

    /// <summary>A tensor as <c>_rebuild_tensor_v2</c> describes it: a view (offset, shape, stride, in elements) of a storage.</summary>
    public sealed record PickledTensor(Storage Storage, long Offset, long[] Shape, long[] Stride);

    private sealed record Global(string Module, string Name);

    private sealed class Mark
    {
        public static readonly Mark Instance = new();
    }

    private static readonly Dictionary<string, PickleStorageType> StorageTypes = new PickleStorageType[]
    {
        new("DoubleStorage", TorchSharp.torch.ScalarType.Float64, 8), new("FloatStorage", TorchSharp.torch.ScalarType.Float32, 4),
        new("HalfStorage", TorchSharp.torch.ScalarType.Float16, 2), new("BFloat16Storage", TorchSharp.torch.ScalarType.BFloat16, 2),
        new("LongStorage", TorchSharp.torch.ScalarType.Int64, 8), new("IntStorage", TorchSharp.torch.ScalarType.Int32, 4),
        new("ShortStorage", TorchSharp.torch.ScalarType.Int16, 2), new("CharStorage", TorchSharp.torch.ScalarType.Int8, 1),
        new("ByteStorage", TorchSharp.torch.ScalarType.Byte, 1), new("BoolStorage", TorchSharp.torch.ScalarType.Bool, 1),
    }.ToDictionary(t => t.Name);

    /// <summary>
    /// Reads the pickle in <paramref name="data"/>. Dicts come out as <c>Dictionary&lt;object, object?&gt;</c>,
    /// tuples as <c>object?[]</c>, lists as <c>List&lt;object?&gt;</c>, integers as <c>long</c>.
    /// Throws <see cref="InvalidDataException"/> (without the file's name: the caller adds it).
    /// </summary>
    public static object? Load(byte[] data)
    {
        var stack = new List<object?>();
        var memo = new Dictionary<long, object?>();
        var pos = 0;
        var values = 0;

        InvalidDataException Bad(string what) => new($"{what} (pickle byte {pos})");
        void Need(long n)
        {
            if (n < 0 || n > data.Length - pos) throw Bad($"a value of {n} bytes runs past the end of the pickle");
        }
        ReadOnlySpan<byte> Take(long n)
        {
            Need(n);
            var span = data.AsSpan(pos, (int)n);
            pos += (int)n;
            return span;
        }
        void Push(object? value)
        {
            if (++values > MaxValues) throw Bad($"more than {MaxValues:N0} values: not a state dict");
            stack.Add(value);
        }
        object? Pop()
        {
            if (stack.Count == 0 || stack[^1] is Mark) throw Bad("the pickle pops from an empty stack");
            var v = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return v;
        }
        object? Peek() => stack.Count == 0 || stack[^1] is Mark ? throw Bad("the pickle reads an empty stack") : stack[^1];
        List<object?> PopToMark()
        {
            var mark = stack.FindLastIndex(v => v is Mark);
            if (mark < 0) throw Bad("the pickle closes a group it never opened");
            var items = stack.GetRange(mark + 1, stack.Count - mark - 1);
            stack.RemoveRange(mark, stack.Count - mark);
            return items;
        }
        string Line()
        {
            var end = Array.IndexOf(data, (byte)'\n', pos);
            if (end < 0 || end - pos > 200) throw Bad("a name runs past the end of the pickle");
            var s = Encoding.ASCII.GetString(data, pos, end - pos);
            pos = end + 1;
            return s;
        }
        Dictionary<object, object?> DictAt(object? target) =>
            target as Dictionary<object, object?> ?? throw Bad($"the pickle sets items on a {Describe(target)}");
        void SetItems(Dictionary<object, object?> dict, List<object?> items)
        {
            if (items.Count % 2 != 0) throw Bad("the pickle sets a key without a value");
            for (var i = 0; i < items.Count; i += 2) dict[Key(items[i])] = items[i + 1];
        }
        object Key(object? key) => key ?? throw Bad("a dict key is None");
        void Memoise(long index)
        {
            if (memo.Count >= MaxValues) throw Bad("too many memo entries");
            memo[index] = Peek();
        }

        while (true)
        {
            if (pos >= data.Length) throw Bad("the pickle ends without STOP (truncated?)");
            var op = data[pos++];
            switch (op)
            {
                case 0x80: Take(1); break;                                        // PROTO
                case 0x95: Take(8); break;                                        // FRAME (protocol 4 framing: no meaning here)
                case (byte)'.': return stack.Count == 1 ? Pop() : throw Bad("the pickle stops with a malformed stack"); // STOP
                case (byte)'(': stack.Add(Mark.Instance); break;                  // MARK
                case (byte)'}': Push(new Dictionary<object, object?>()); break;   // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break;                 // EMPTY_LIST
                case (byte)')': Push(Array.Empty<object?>()); break;              // EMPTY_TUPLE
                case (byte)'t': Push(PopToMark().ToArray()); break;               // TUPLE
                case 0x85: Push(new[] { Pop() }); break;                          // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'l': Push(PopToMark()); break;                         // LIST
                case (byte)'d': { var d = new Dictionary<object, object?>(); SetItems(d, PopToMark()); Push(d); break; } // DICT
                case (byte)'a': { var v = Pop(); (Peek() as List<object?> ?? throw Bad("APPEND to a non-list")).Add(v); break; }
                case (byte)'e': { var items = PopToMark(); (Peek() as List<object?> ?? throw Bad("APPENDS to a non-list")).AddRange(items); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); DictAt(Peek())[Key(k)] = v; break; } // SETITEM
                case (byte)'u': { var items = PopToMark(); SetItems(DictAt(Peek()), items); break; } // SETITEMS
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)Take(1)[0]); break;                    // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a:                                                        // LONG1
                {
                    var n = Take(1)[0];
                    if (n > 8) throw Bad($"an integer of {n} bytes");
                    var bytes = Take(n);
                    long v = 0;
                    for (var i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
                    if (n is > 0 and < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // two's complement
                    Push(v);
                    break;
                }
                case (byte)'N': Push(null); break;                                // NONE
                case 0x88: Push(true); break;                                     // NEWTRUE
                case 0x89: Push(false); break;                                    // NEWFALSE
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'X': Push(Encoding.UTF8.GetString(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))); break; // BINUNICODE
                case 0x8c: Push(Encoding.UTF8.GetString(Take(Take(1)[0]))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Encoding.UTF8.GetString(Take(Length8(Take(8))))); break; // BINUNICODE8
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Take(1)[0]))); break; // SHORT_BINSTRING
                case (byte)'B': Push(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break;          // SHORT_BINBYTES
                case 0x8e: Push(Take(Length8(Take(8))).ToArray()); break;         // BINBYTES8
                case (byte)'q': Memoise(Take(1)[0]); break;                       // BINPUT
                case (byte)'r': Memoise(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break; // LONG_BINPUT
                case 0x94: Memoise(memo.Count); break;                            // MEMOIZE
                case (byte)'h': Push(Recall(Take(1)[0])); break;                  // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'c': { var module = Line(); Push(Resolve(module, Line())); break; } // GLOBAL
                case 0x93:                                                        // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Bad("STACK_GLOBAL without a name");
                    var module = Pop() as string ?? throw Bad("STACK_GLOBAL without a module");
                    Push(Resolve(module, name));
                    break;
                }
                case (byte)'R': { var args = Pop() as object?[] ?? throw Bad("REDUCE without an argument tuple"); Push(Call(Pop(), args)); break; }
                case (byte)'b':                                                   // BUILD: an OrderedDict's attributes (_metadata)
                {
                    Pop();
                    if (Peek() is not Dictionary<object, object?>) throw Bad($"the pickle sets the state of a {Describe(Peek())}");
                    break;
                }
                case (byte)'Q': Push(PersistentLoad(Pop())); break;               // BINPERSID: a tensor storage
                case (byte)'0': if (stack.Count > 0 && stack[^1] is Mark) stack.RemoveAt(stack.Count - 1); else Pop(); break; // POP
                case (byte)'1': PopToMark(); break;                               // POP_MARK
                case (byte)'2': Push(Peek()); break;                              // DUP
                default:
                    throw Bad($"opcode 0x{op:x2} is not one a state dict uses (only containers, numbers, strings and tensors are read)");
            }
        }

        object? Recall(long index) => memo.TryGetValue(index, out var v) ? v : throw Bad($"memo entry {index} was never stored");

        long Length8(ReadOnlySpan<byte> bytes)
        {
            var n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
            return n > int.MaxValue ? throw Bad($"a value of {n} bytes") : (long)n;
        }

        object Resolve(string module, string name)
        {
            if ((module, name) is ("collections", "OrderedDict") or ("torch._utils", "_rebuild_tensor_v2") or ("torch._utils", "_rebuild_parameter"))
                return new Global(module, name);
            if (module == "torch" && StorageTypes.TryGetValue(name, out var storage)) return storage;
            throw Bad($"the pickle refers to {module}.{name}; a state dict holds only tensors, numbers, strings and dicts, " +
                      "so the file was refused and nothing in it was run");
        }

        object Call(object? callable, object?[] args)
        {
            switch (callable)
            {
                case Global { Name: "OrderedDict" }:
                {
                    var dict = new Dictionary<object, object?>();
                    if (args is [List<object?> pairs])
                        foreach (var pair in pairs)
                            if (pair is object?[] { Length: 2 } kv) dict[Key(kv[0])] = kv[1];
                            else throw Bad("OrderedDict built from something other than key-value pairs");
                    return dict;
                }
                case Global { Name: "_rebuild_tensor_v2" }:
                    if (args.Length is < 6 or > 7 || args[0] is not Storage storage || args[1] is not long offset
                        || args[2] is not object?[] shape || args[3] is not object?[] stride || shape.Length != stride.Length)
                        throw Bad("_rebuild_tensor_v2 with arguments other than (storage, offset, shape, stride, requires_grad, hooks)");
                    return new PickledTensor(storage, offset, Longs(shape), Longs(stride));
                case Global { Name: "_rebuild_parameter" }:
                    return args is [PickledTensor t, ..] ? t : throw Bad("_rebuild_parameter without a tensor");
                default:
                    throw Bad($"the pickle calls a {Describe(callable)}, which a state dict never does");
            }
        }

        long[] Longs(object?[] items) => items.Select(v => v as long? ?? throw Bad("a tensor size that is not an integer")).ToArray();

        // torch.save's persistent id: ("storage", storage type, key in the archive, location, number of elements).
        object PersistentLoad(object? pid)
        {
            if (pid is not object?[] { Length: 5 } id || id[0] is not "storage" || id[1] is not PickleStorageType type
                || id[2] is not string key || id[4] is not long elements)
                throw Bad("a persistent id that is not a tensor storage");
            if (elements < 0) throw Bad($"storage {key} has {elements} elements");
            return new Storage(type, key, elements);
        }
    }

    private static string Describe(object? value) => value switch
    {
        null => "None",
        Global g => $"{g.Module}.{g.Name}",
        PickleStorageType s => $"torch.{s.Name}",
        _ => value.GetType().Name,
    };
}
