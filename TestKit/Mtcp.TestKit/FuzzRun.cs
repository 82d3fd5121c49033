using System.Diagnostics;
using System.Globalization;

namespace Mtcp.TestKit;

/// <summary>Decodes one fuzz input: true when it was accepted; a rejection must carry its typed error (checked by the caller).</summary>
public delegate bool FuzzDecoder(ReadOnlySpan<byte> input);

/// <summary>What one fuzz run did: inputs tried, inputs accepted, and how long it took.</summary>
public sealed record FuzzOutcome(int Seed, int Inputs, int Accepted, TimeSpan Elapsed)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"seed {Seed} (set MTCP_SEED to replay): {Inputs} inputs in {Elapsed.TotalSeconds:F2} s, {Accepted} accepted");
}

/// <summary>
/// The decoder fuzz harness of the wire tests (WireFuzzTests, ControlFuzzTests, ControlEnvelopeFuzzTests) for decoders
/// outside Mtcp.Wire: one million inputs by default, MTCP_SOAK=1 multiplies that by 20, MTCP_SEED replays a seed.
/// Inputs are random bytes, valid base vectors unchanged (which must be accepted) and base vectors with bit flips,
/// truncations, insertions and deletions, overwritten bytes and 16-bit length fields set off by a little or to
/// anything. Any exception fails the run with the seed, the input's index, its mutation and its bytes.
/// </summary>
public static class FuzzRun
{
    public const int DefaultInputs = 1_000_000;
    public const int SoakFactor = 20;

    public static int InputCount =>
        Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? DefaultInputs * SoakFactor : DefaultInputs;

    public static int SeedOr(int defaultSeed) =>
        int.TryParse(Environment.GetEnvironmentVariable("MTCP_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed) ? seed : defaultSeed;

    /// <param name="bases">valid encodings; each with the offsets of its 16-bit big-endian length or count fields.</param>
    public static FuzzOutcome Run(int defaultSeed, IReadOnlyList<(byte[] Bytes, int[] LengthFields)> bases, FuzzDecoder decode)
    {
        ArgumentNullException.ThrowIfNull(bases);
        ArgumentNullException.ThrowIfNull(decode);
        var seed = SeedOr(defaultSeed);
        var count = InputCount;
        var random = new Random(seed);
        var buffer = new byte[bases.Max(b => b.Bytes.Length) + 64];
        var accepted = 0;
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var length = Mutate(random, bases, buffer, out var mutation);
            var input = buffer.AsSpan(0, length);
            try
            {
                var wasAccepted = decode(input);
                if (mutation == Mutation.Unchanged && !wasAccepted)
                {
                    throw new InvalidOperationException("a valid base vector was rejected");
                }

                accepted += wasAccepted ? 1 : 0;
            }
            catch (Exception e)
            {
                throw new InvalidOperationException($"seed {seed}, input {i}, mutation {mutation}: {e.Message}\n{Convert.ToHexString(input)}", e);
            }
        }

        return new FuzzOutcome(seed, count, accepted, stopwatch.Elapsed);
    }

    /// <summary>Throws <see cref="InvalidOperationException"/> with <paramref name="what"/> when <paramref name="condition"/> is false.</summary>
    public static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException(what);
        }
    }

    /// <summary>
    /// Deletes 1-8 bytes at a random place of the first <paramref name="size"/> bytes of <paramref name="buffer"/>, or
    /// inserts 1-8 random ones (the buffer needs 8 bytes of room); returns the new size.
    /// </summary>
    public static int InsertOrDelete(Random random, byte[] buffer, int size)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(buffer);
        var at = random.Next(size + 1);
        if (random.Next(2) == 0 && at < size)
        {
            var cut = random.Next(1, Math.Min(8, size - at) + 1);
            buffer.AsSpan(at + cut, size - at - cut).CopyTo(buffer.AsSpan(at));
            return size - cut;
        }

        var insert = random.Next(1, 9);
        buffer.AsSpan(at, size - at).CopyTo(buffer.AsSpan(at + insert));
        random.NextBytes(buffer.AsSpan(at, insert));
        return size + insert;
    }

    private enum Mutation
    {
        RandomBytes,
        BitFlips,
        Truncated,
        LengthField,
        InsertedOrDeleted,
        Unchanged,
        ByteOverwritten,
    }

    private static int Mutate(Random random, IReadOnlyList<(byte[] Bytes, int[] LengthFields)> bases, byte[] buffer, out Mutation mutation)
    {
        mutation = (Mutation)random.Next(7);
        if (mutation == Mutation.RandomBytes)
        {
            var length = random.Next(buffer.Length - 64);
            random.NextBytes(buffer.AsSpan(0, length));
            return length;
        }

        var (bytes, lengthFields) = bases[random.Next(bases.Count)];
        bytes.CopyTo(buffer, 0);
        var size = bytes.Length;
        switch (mutation)
        {
            case Mutation.BitFlips:
                for (var flips = random.Next(1, 4); flips > 0; flips--)
                {
                    var bit = random.Next(size * 8);
                    buffer[bit >> 3] ^= (byte)(1 << (bit & 7));
                }

                return size;
            case Mutation.Truncated:
                return random.Next(size);
            case Mutation.LengthField when lengthFields.Length > 0:
                var field = buffer.AsSpan(lengthFields[random.Next(lengthFields.Length)], 2);
                var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(field);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(field, random.Next(3) switch
                {
                    0 => (ushort)(value + random.Next(-2, 3)),
                    1 => (ushort)random.Next(4),
                    _ => (ushort)random.Next(ushort.MaxValue + 1),
                });
                return size;
            case Mutation.InsertedOrDeleted:
                return InsertOrDelete(random, buffer, size);
            case Mutation.Unchanged:
                return size;
            default:
                mutation = Mutation.ByteOverwritten;
                buffer[random.Next(size)] = (byte)random.Next(256);
                return size;
        }
    }
}
