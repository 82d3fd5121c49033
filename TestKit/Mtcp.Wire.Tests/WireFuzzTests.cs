using System.Buffers.Binary;
using System.Diagnostics;
using Xunit.Abstractions;

namespace Mtcp.Wire.Tests;

/// <summary>
/// Random and mutated inputs to every decoder: none may throw, and whatever decodes must re-encode to
/// bytes that decode to the same value. One million inputs per decoder by default; MTCP_SOAK=1
/// multiplies that by 20. Failures print the seed and the input.
/// </summary>
[Trait("Category", "Wire")]
public sealed class WireFuzzTests(ITestOutputHelper output)
{
    private const int DefaultInputs = 1_000_000;
    private const int Seed = 20260101;

    private static readonly (IpAddress Source, IpAddress Destination)[] AddressPairs =
    [
        (Golden.V4Client, Golden.V4Server),
        (Golden.V6Client, Golden.V6Server),
    ];

    private static readonly byte[][] GoldenSegments = Golden.Segments().Select(s => s.Bytes).ToArray();

    /// <summary>Valid single options, generated once so that the loops spend their time in the decoders.</summary>
    private static readonly byte[][] OptionPool = BuildOptionPool(new Random(Seed - 1), 8192);

    private static int Inputs =>
        Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? DefaultInputs * 20 : DefaultInputs;

    [Fact]
    public void Segment_decoders_must_never_throw_and_must_round_trip_what_they_accept()
    {
        var random = new Random(Seed);
        var input = new byte[TcpSegment.MaxHeaderLength + 64];
        var emitted = new byte[TcpSegment.MaxHeaderLength + 64];
        var parsed = 0;
        var withMtcp = 0;
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < Inputs; i++)
        {
            var (source, destination) = AddressPairs[random.Next(AddressPairs.Length)];
            var length = NextSegment(random, input, source, destination);
            var bytes = input.AsSpan(0, length);
            try
            {
                if (TcpSegment.TryCreate(bytes, out var view, out _))
                {
                    Assert.True(view.HeaderLength <= length && view.Options.Length + view.Payload.Length + 20 == length);
                }

                var policy = random.Next(4) == 0 ? ChecksumPolicy.Ignore : ChecksumPolicy.Verify;
                if (!TcpSegmentRepr.TryParse(bytes, source, destination, policy, out var repr, out var payloadOffset, out var error))
                {
                    Assert.NotEqual(WireError.None, error);
                    continue;
                }

                parsed++;
                withMtcp += repr.Options.HasMtcp ? 1 : 0;
                var payload = bytes[payloadOffset..];
                Assert.True(repr.TryEmit(emitted, payload, source, destination, out var written, out var emitError), emitError.ToString());
                Assert.True(TcpSegmentRepr.TryParse(emitted.AsSpan(0, written), source, destination, ChecksumPolicy.Verify, out var again, out var againOffset, out var againError), againError.ToString());
                Assert.Equal(repr, again);
                Assert.True(payload.SequenceEqual(emitted.AsSpan(againOffset, written - againOffset)));
            }
            catch (Exception exception)
            {
                output.WriteLine($"seed {Seed}, input {i}: {Convert.ToHexString(bytes)}");
                throw new InvalidOperationException($"seed {Seed}, input {i}: {Convert.ToHexString(bytes)}", exception);
            }
        }

        output.WriteLine($"{Inputs} segments in {stopwatch.Elapsed.TotalSeconds:F2} s: {parsed} decoded, {withMtcp} with MTCP options");
        Assert.True(parsed > Inputs / 10, $"only {parsed} of {Inputs} decoded: the generator no longer reaches the option decoders");
        Assert.True(withMtcp > Inputs / 100, $"only {withMtcp} decoded with MTCP options");
    }

    [Fact]
    public void Option_decoder_must_never_throw_and_must_round_trip_what_it_accepts()
    {
        var random = new Random(Seed + 1);
        var input = new byte[TcpSegment.MaxOptionsLength];
        var emitted = new byte[TcpSegment.MaxOptionsLength];
        var decodedBySubtype = new int[7];
        var parsed = 0;
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < Inputs; i++)
        {
            int length;
            if (random.Next(10) == 0)
            {
                length = random.Next(input.Length + 1);
                random.NextBytes(input.AsSpan(0, length));
            }
            else
            {
                length = NextOptionArea(random, input);
                if (random.Next(3) != 0)
                {
                    length = Mutate(random, input, length, lengthBytesFrom: 0);
                }
            }

            var bytes = input.AsSpan(0, length);
            try
            {
                if (!TcpOptions.TryParse(bytes, out var options, out var error))
                {
                    Assert.NotEqual(WireError.None, error);
                    continue;
                }

                parsed++;
                decodedBySubtype[1] += options.AlternateServers is null ? 0 : 1;
                decodedBySubtype[2] += options.MigratedConnection.HasValue ? 1 : 0;
                decodedBySubtype[3] += options.MigrateTrigger.HasValue ? 1 : 0;
                decodedBySubtype[4] += options.OrigConnectionInfo.HasValue ? 1 : 0;
                decodedBySubtype[5] += options.Beta.HasValue ? 1 : 0;
                decodedBySubtype[6] += options.MigrationSecret.HasValue ? 1 : 0;
                Assert.True(options.BufferLength <= length);
                Assert.True(options.TryWrite(emitted, out var written, out var writeError), writeError.ToString());
                Assert.True(TcpOptions.TryParse(emitted.AsSpan(0, written), out var again, out var againError), againError.ToString());
                Assert.Equal(options, again);
            }
            catch (Exception exception)
            {
                output.WriteLine($"seed {Seed + 1}, input {i}: {Convert.ToHexString(bytes)}");
                throw new InvalidOperationException($"seed {Seed + 1}, input {i}: {Convert.ToHexString(bytes)}", exception);
            }
        }

        output.WriteLine($"{Inputs} option areas in {stopwatch.Elapsed.TotalSeconds:F2} s: {parsed} decoded; MTCP subtypes 1-6 decoded {string.Join(", ", decodedBySubtype.Skip(1))} times");
        Assert.True(parsed > Inputs / 10, $"only {parsed} of {Inputs} decoded");
        Assert.All(decodedBySubtype.Skip(1), count => Assert.True(count > Inputs / 200, $"an MTCP subtype decoded only {count} times"));
    }

    /// <summary>Writes a random, a golden-mutated or a generated-then-mutated segment into <paramref name="buffer"/>.</summary>
    private static int NextSegment(Random random, byte[] buffer, IpAddress source, IpAddress destination)
    {
        var choice = random.Next(10);
        if (choice == 0)
        {
            var length = random.Next(buffer.Length);
            random.NextBytes(buffer.AsSpan(0, length));
            return length;
        }

        int segmentLength;
        if (choice <= 2)
        {
            var golden = GoldenSegments[random.Next(GoldenSegments.Length)];
            golden.CopyTo(buffer, 0);
            segmentLength = golden.Length;
        }
        else
        {
            Span<byte> options = stackalloc byte[TcpSegment.MaxOptionsLength];
            var optionsLength = NextOptionArea(random, options);
            var padded = (optionsLength + 3) & ~3;
            options[optionsLength..padded].Clear();
            random.NextBytes(buffer.AsSpan(0, TcpSegment.MinHeaderLength));
            buffer[TcpSegment.Field.DataOffset] = (byte)(((TcpSegment.MinHeaderLength + padded) / 4) << 4);
            options[..padded].CopyTo(buffer.AsSpan(TcpSegment.MinHeaderLength));
            var payloadLength = random.Next(4) == 0 ? random.Next(1, 5) : 0;
            random.NextBytes(buffer.AsSpan(TcpSegment.MinHeaderLength + padded, payloadLength));
            segmentLength = TcpSegment.MinHeaderLength + padded + payloadLength;
        }

        if (random.Next(4) != 0)
        {
            segmentLength = Mutate(random, buffer, segmentLength, lengthBytesFrom: TcpSegment.Field.Options);
        }

        // Most inputs get a valid checksum so that they reach the option decoders.
        if (segmentLength >= TcpSegment.MinHeaderLength && random.Next(5) != 0)
        {
            var segment = buffer.AsSpan(0, segmentLength);
            BinaryPrimitives.WriteUInt16BigEndian(segment[TcpSegment.Field.Checksum..], 0);
            var sum = InternetChecksum.Accumulate(segment, InternetChecksum.PseudoHeaderSum(source, destination, segmentLength));
            BinaryPrimitives.WriteUInt16BigEndian(segment[TcpSegment.Field.Checksum..], InternetChecksum.Finish(sum));
        }

        return segmentLength;
    }

    /// <summary>Bit flips, byte overwrites, length-byte tweaks and truncations of a valid input.</summary>
    private static int Mutate(Random random, Span<byte> buffer, int length, int lengthBytesFrom)
    {
        var mutations = random.Next(1, 4);
        for (var m = 0; m < mutations && length > 0; m++)
        {
            var at = random.Next(length);
            switch (random.Next(5))
            {
                case 0:
                    buffer[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    buffer[at] = (byte)random.Next(256);
                    break;
                case 2:
                    // An option's length byte: the second byte after a kind, somewhere in the option area.
                    if (length - lengthBytesFrom > 1)
                    {
                        var lengthByte = random.Next(lengthBytesFrom + 1, length);
                        buffer[lengthByte] = (byte)(random.Next(3) switch
                        {
                            0 => random.Next(4),
                            1 => buffer[lengthByte] + 1,
                            _ => buffer[lengthByte] - 1,
                        });
                    }

                    break;
                case 3:
                    length = random.Next(length);
                    break;
                default:
                    buffer[at] = (byte)(buffer[at] + random.Next(-2, 3));
                    break;
            }
        }

        return length;
    }

    /// <summary>A valid option area of random options (standard, unknown, foreign experiments and every MTCP subtype).</summary>
    private static int NextOptionArea(Random random, Span<byte> area)
    {
        var length = 0;
        var count = random.Next(1, 5);
        for (var i = 0; i < count; i++)
        {
            var option = OptionPool[random.Next(OptionPool.Length)];
            if (length + option.Length > area.Length)
            {
                break;
            }

            option.CopyTo(area[length..]);
            length += option.Length;
        }

        return length;
    }

    private static byte[][] BuildOptionPool(Random random, int size)
    {
        var pool = new byte[size][];
        Span<byte> one = stackalloc byte[64];
        for (var i = 0; i < size; i++)
        {
            pool[i] = one[..NextOption(random, one)].ToArray();
        }

        return pool;
    }

    private static int NextOption(Random random, Span<byte> destination)
    {
        TcpOptions options;
        switch (random.Next(15))
        {
            case 0:
                destination[0] = (byte)TcpOptionKind.NoOperation;
                return 1;
            case 1:
                var unknownLength = random.Next(2, 9);
                destination[0] = (byte)random.Next(9, 253);
                destination[1] = (byte)unknownLength;
                random.NextBytes(destination[2..unknownLength]);
                return unknownLength;
            case 2:
                destination[0] = (byte)TcpOptionKind.Experimental2;
                destination[1] = 6;
                BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)random.Next(ushort.MaxValue));
                random.NextBytes(destination[4..6]);
                return 6;
            case 3:
                options = new TcpOptions { MaxSegmentSize = (ushort)random.Next(ushort.MaxValue), WindowScale = (byte)random.Next(16) };
                break;
            case 4:
                options = new TcpOptions { SackPermitted = true, Timestamps = new TcpTimestamps((uint)random.NextInt64(), (uint)random.NextInt64()) };
                break;
            case 5:
                var sack = default(SackBlockList);
                for (var b = random.Next(1, 5); b > 0; b--)
                {
                    sack = sack.Add(new SackBlock(new SeqNumber((uint)random.NextInt64()), new SeqNumber((uint)random.NextInt64())));
                }

                options = new TcpOptions { Sack = sack };
                break;
            case 6:
            case 7:
                var servers = Enumerable.Range(0, random.Next(1, 4)).Select(_ => RandomEndpoint(random, random.Next(3) == 0)).ToArray();
                options = new TcpOptions().WithAlternateServers(servers, out _);
                break;
            case 8:
            case 9:
                options = new TcpOptions
                {
                    MigratedConnection = new MtcpMigratedConnection(
                        RandomEndpoint(random, random.Next(2) == 0),
                        random.Next(2) == 0 ? (ushort)random.Next(ushort.MaxValue) : null,
                        new SeqNumber((uint)random.NextInt64()),
                        (ulong)random.NextInt64()),
                };
                break;
            case 10:
            case 11:
                var ipv6 = random.Next(2) == 0;
                var origin = random.Next(2) == 0 ? RandomEndpoint(random, ipv6) : (ServerEndpoint?)null;
                var destinationServer = origin is null || !ipv6 ? RandomEndpoint(random, ipv6) : (ServerEndpoint?)null;
                var target = random.Next(3) == 0 ? (MtcpTriggerDestination?)null : new MtcpTriggerDestination(destinationServer, (ulong)random.NextInt64());
                options = new TcpOptions { MigrateTrigger = new MtcpMigrateTrigger((ulong)random.NextInt64(), origin, target) };
                break;
            case 12:
                options = new TcpOptions { OrigConnectionInfo = new MtcpOrigConnectionInfo(new SeqNumber((uint)random.NextInt64()), new SeqNumber((uint)random.NextInt64())) };
                break;
            case 13:
                Span<byte> secret = stackalloc byte[MtcpMigrationSecret.SecretLength];
                random.NextBytes(secret);
                options = new TcpOptions { MigrationSecret = MtcpMigrationSecret.FromBytes(secret) };
                break;
            default:
                options = new TcpOptions { Beta = (uint)random.NextInt64() };
                break;
        }

        Assert.True(options.TryWrite(destination, out _, out var error), error.ToString());
        return options.BufferLength;
    }

    private static ServerEndpoint RandomEndpoint(Random random, bool ipv6)
    {
        Span<byte> address = stackalloc byte[IpAddress.V6Length];
        random.NextBytes(address);
        return new ServerEndpoint(ipv6 ? IpAddress.FromIPv6(address) : IpAddress.FromIPv4(address), (ushort)random.Next(ushort.MaxValue));
    }
}
