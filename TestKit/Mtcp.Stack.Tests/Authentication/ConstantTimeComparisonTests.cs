using System.Buffers.Binary;
using System.Reflection;
using System.Security.Cryptography;
using Mtcp.Stack.Migration.Authentication;

namespace Mtcp.Stack.Tests.Authentication;

/// <summary>
/// A timing test of a comparison would be flaky on a shared machine; instead the IL of each verifier is
/// inspected for a call to the fixed-time comparison, so replacing it with <c>==</c> fails here.
/// </summary>
[Trait("Category", "Migration")]
public sealed class ConstantTimeComparisonTests
{
    private const byte CallOpcode = 0x28;

    private static readonly MethodInfo FixedTimeEqualsOfSpans =
        typeof(CryptographicOperations).GetMethod(nameof(CryptographicOperations.FixedTimeEquals), [typeof(ReadOnlySpan<byte>), typeof(ReadOnlySpan<byte>)])!;

    private static readonly MethodInfo TagComparer =
        typeof(TagComparison).GetMethod(nameof(TagComparison.FixedTimeEquals), BindingFlags.Public | BindingFlags.Static)!;

    /// <summary>Methods called with a <c>call</c> instruction in <paramref name="method"/>'s body.</summary>
    private static IEnumerable<MethodBase> Callees(MethodBase method)
    {
        var il = method.GetMethodBody()!.GetILAsByteArray()!;
        for (var at = 0; at + 5 <= il.Length; at++)
        {
            if (il[at] != CallOpcode)
            {
                continue;
            }

            MethodBase? callee = null;
            try
            {
                callee = method.Module.ResolveMethod(ReadToken(il, at + 1));
            }
            catch (ArgumentException)
            {
                // An operand byte that happens to equal the opcode: not a call site.
            }

            if (callee is not null)
            {
                yield return callee;
            }
        }
    }

    /// <summary>Metadata tokens in IL are little-endian.</summary>
    private static int ReadToken(byte[] il, int at) =>
        BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(at));

    private static MethodInfo Method(Type type, string name) =>
        type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static).Single(m => m.Name == name);

    [Fact]
    public void Tag_comparison_must_use_the_fixed_time_comparison_of_the_runtime()
    {
        Assert.Contains(FixedTimeEqualsOfSpans, Callees(TagComparer));
        Assert.True(TagComparison.FixedTimeEquals(0x0102_0304_0506_0708, 0x0102_0304_0506_0708));
        Assert.False(TagComparison.FixedTimeEquals(0x0102_0304_0506_0708, 0x0102_0304_0506_0709));
        Assert.False(TagComparison.FixedTimeEquals(0x8102_0304_0506_0708, 0x0102_0304_0506_0708));
    }

    [Theory]
    [InlineData(typeof(ConnectionAuthenticator), nameof(ConnectionAuthenticator.VerifyMigratedConnection))]
    [InlineData(typeof(ConnectionAuthenticator), nameof(ConnectionAuthenticator.VerifyAuthDest))]
    [InlineData(typeof(ConnectionAuthenticator), nameof(ConnectionAuthenticator.VerifyTrigger))]
    public void Tag_verifiers_must_compare_through_the_fixed_time_comparison(Type type, string name)
    {
        Assert.Contains(TagComparer, Callees(Method(type, name)));
    }

    [Fact]
    public void Control_message_verifier_must_compare_in_fixed_time()
    {
        Assert.Contains(FixedTimeEqualsOfSpans, Callees(Method(typeof(MigrationAuthenticator), nameof(MigrationAuthenticator.VerifyControlMessage))));
    }
}
