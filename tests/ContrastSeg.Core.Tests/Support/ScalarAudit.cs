using System.Reflection;
using System.Reflection.Emit;
using TorchSharp;

namespace ContrastSeg.Tests.Support;

/// <summary>
/// Reads compiled IL to find where TorchSharp <see cref="Scalar"/>s are made: directly (an implicit conversion
/// <c>double -> Scalar</c>, <c>ToScalar()</c>) or inside a TorchSharp method that a method calls (e.g.
/// <c>Tensor.add(Tensor)</c> makes its alpha 1, <c>softplus()</c> its beta and threshold). Calls inside TorchSharp are
/// followed transitively; a virtual call counts every TorchSharp override, except <c>Module.forward</c>, whose
/// overrides are checked per module type (<see cref="ModuleForwardMakesScalars"/>).
/// </summary>
public sealed class ScalarAudit
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    private readonly Assembly _torchSharp = typeof(Scalar).Assembly;
    private readonly Dictionary<MethodBase, bool> _makes = new();
    private readonly Dictionary<MethodBase, List<MethodInfo>> _overrides = new();
    private Type[]? _torchSharpTypes;

    /// <summary>One place that makes Scalars: the method, and the call that makes them.</summary>
    public sealed record Finding(string Method, string Call)
    {
        public override string ToString() => $"{Method} -> {Call}";
    }

    /// <summary>Every method of <paramref name="assembly"/> that makes a Scalar, except in the types <paramref name="allowed"/> accepts.</summary>
    public IReadOnlyList<Finding> Scan(Assembly assembly, Func<Type, bool> allowed)
    {
        var findings = new List<Finding>();
        foreach (var type in TypesOf(assembly).Where(t => !allowed(OutermostType(t))))
            foreach (var method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
                foreach (var callee in Calls(method).Distinct())
                    if (MakesScalarItself(callee) || IsTorchSharp(callee) && (Makes(callee) || AnyOverrideMakes(callee)))
                        findings.Add(new Finding($"{type.FullName}::{method.Name}", Describe(callee)));
        return findings;
    }

    /// <summary>Does the <c>forward</c> of this (TorchSharp) module type make Scalars?</summary>
    public bool ModuleForwardMakesScalars(Type moduleType) =>
        moduleType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
            .Where(m => m.Name == "forward" && m.GetMethodBody() is not null).Any(Makes);

    private static Type OutermostType(Type t) => t.DeclaringType is { } outer ? OutermostType(outer) : t;

    private bool IsTorchSharp(MethodBase m) => m.Module.Assembly == _torchSharp;

    private static string Describe(MethodBase m) =>
        $"{m.DeclaringType?.Name}.{m.Name}({string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name))})";

    private static bool MakesScalarItself(MethodBase m) =>
        m.DeclaringType == typeof(Scalar) && (m.Name == "op_Implicit" || m.IsConstructor) ||
        m.DeclaringType == typeof(ScalarExtensionMethods) && m.Name.StartsWith("To", StringComparison.Ordinal) && m.Name.EndsWith("Scalar", StringComparison.Ordinal);

    private bool Makes(MethodBase m)
    {
        if (_makes.TryGetValue(m, out var known)) return known;
        _makes[m] = false; // cycles: assume not while the method is being read
        foreach (var callee in Calls(m))
            if (MakesScalarItself(callee) || IsTorchSharp(callee) && (Makes(callee) || AnyOverrideMakes(callee)))
                return _makes[m] = true;
        return false;
    }

    private bool AnyOverrideMakes(MethodBase m) => m.Name != "forward" && Overrides(m).Any(Makes);

    private IEnumerable<MethodInfo> Overrides(MethodBase m)
    {
        if (m is not MethodInfo { IsVirtual: true, IsFinal: false, DeclaringType: { } declaring } virtualMethod) return Array.Empty<MethodInfo>();
        if (_overrides.TryGetValue(m, out var known)) return known;
        var found = new List<MethodInfo>();
        var root = virtualMethod.GetBaseDefinition();
        foreach (var type in _torchSharpTypes ??= TypesOf(_torchSharp))
        {
            if (type.IsInterface) continue;
            try
            {
                if (declaring.IsInterface ? !type.GetInterfaces().Contains(declaring) : !type.IsSubclassOf(declaring)) continue;
                found.AddRange(type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                    .Where(o => o.Name == m.Name && o.GetBaseDefinition() == root));
            }
            catch (Exception e) when (e is TypeLoadException or FileNotFoundException) { } // types that need an assembly TorchSharp does not ship
        }
        return _overrides[m] = found;
    }

    private static Type[] TypesOf(Assembly assembly)
    {
        try { return assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e) { return e.Types.Where(t => t is not null).ToArray()!; }
    }

    /// <summary>The methods <paramref name="method"/> calls (call, callvirt, newobj, ldftn), from its IL.</summary>
    private static IEnumerable<MethodBase> Calls(MethodBase method)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or FileNotFoundException or TypeLoadException) { yield break; }
        if (il is null) yield break;
        var typeArguments = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var i = 0; i < il.Length;)
        {
            var op = il[i] == 0xFE ? OpCodesByValue[unchecked((short)(0xFE00 | il[i + 1]))] : OpCodesByValue[il[i]];
            i += op.Size;
            var operand = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            if (op.OperandType == OperandType.InlineMethod)
            {
                MethodBase? callee = null;
                try { callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArguments, methodArguments); }
                catch (Exception e) when (e is ArgumentException or TypeLoadException or FileNotFoundException or MissingMethodException) { }
                if (callee is not null) yield return callee;
            }
            i += operand;
        }
    }
}
