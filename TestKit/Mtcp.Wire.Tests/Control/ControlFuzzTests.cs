using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Wire.Tests.Control;

/// <summary>
/// Feeds random and mutated frames to every control decoder: none may throw, a rejection must carry a
/// typed error, and whatever decodes must re-encode to the very same bytes and decode to an equal message.
/// </summary>
[Trait("Category", "Wire")]
public sealed class ControlFuzzTests(ITestOutputHelper output)
{
    private const int DefaultInputs = 1_000_000;
    private const int SoakFactor = 20;
    private const int DefaultSeed = 0x4D544350;
    private const int BaseVectorCount = 256;
    private const int MaxBasePayload = 48;

    /// <summary>Where the count of state replies with a migration credential goes, after the message types' counts.</summary>
    private const int WithCredential = 9;

    private static readonly uint[] InterestingLengths = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF];

    private static int InputCount =>
        Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? DefaultInputs * SoakFactor : DefaultInputs;

    private static int Seed =>
        int.TryParse(Environment.GetEnvironmentVariable("MTCP_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed) ? seed : DefaultSeed;

    [Fact]
    public void Decoders_must_survive_random_and_mutated_frames_and_be_stable_on_what_they_accept()
    {
        var seed = Seed;
        var count = InputCount;
        output.WriteLine($"seed {seed} (set MTCP_SEED to replay), inputs {count}");
        var random = new Random(seed);
        var bases = BuildBaseVectors(random);
        var buffer = new byte[4096];
        var accepted = new int[WithCredential + 1];
        var stopwatch = Stopwatch.StartNew();

        for (var i = 0; i < count; i++)
        {
            var length = Mutate(random, bases, buffer, out var mutation);
            var input = buffer.AsSpan(0, length);
            try
            {
                CheckAllDecoders(input, accepted);
            }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"seed {seed}, input {i}, mutation {mutation}: {e.Message}\n{Convert.ToHexString(input)}", e);
            }
        }

        stopwatch.Stop();
        output.WriteLine($"{count} inputs in {stopwatch.Elapsed.TotalSeconds:F2} s; accepted: any {accepted[0]}, request {accepted[1]}, reply {accepted[2]}, ack {accepted[3]}, reject {accepted[4]}, replica messages {accepted[5] + accepted[6] + accepted[7] + accepted[8]}, reply with a credential {accepted[WithCredential]}");
        for (var kind = 1; kind <= 4; kind++)
        {
            Assert.True(accepted[kind] > 0, $"seed {seed}: no input of type {(ControlMessageType)kind} decoded; the fuzzer is not reaching the body decoders");
        }

        Assert.True(accepted[WithCredential] > 0, $"seed {seed}: no reply with a migration credential decoded");
    }

    private static void CheckAllDecoders(ReadOnlySpan<byte> input, int[] accepted)
    {
        var headerOk = ControlFrameHeader.TryRead(input, out var header, out var headerError);
        Require(headerOk == (headerError == ControlWireError.None), "header result and error disagree");

        var dispatched = ControlMessageCodec.TryDecode(input, out var message, out var error);
        Require(dispatched == (error == ControlWireError.None) && dispatched == (message is not null), "dispatcher result, error and message disagree");
        Require(!dispatched || headerOk, "a frame with a bad header decoded");

        var typed = new bool[(int)ControlMessageType.ConnectionTakenOver + 1];
        typed[1] = Typed<StateRequest>(StateRequest.TryDecode(input, out var request, out var e1), request, e1);
        typed[2] = Typed<StateReply>(StateReply.TryDecode(input, out var reply, out var e2), reply, e2);
        typed[3] = Typed<StateAck>(StateAck.TryDecode(input, out var ack, out var e3), ack, e3);
        typed[4] = Typed<StateReject>(StateReject.TryDecode(input, out var reject, out var e4), reject, e4);
        typed[5] = Typed<ReplicaState>(ReplicaState.TryDecode(input, out var state, out var e5), state, e5);
        typed[6] = Typed<ReplicaReadLog>(ReplicaReadLog.TryDecode(input, out var readLog, out var e6), readLog, e6);
        typed[7] = Typed<ReplicaAck>(ReplicaAck.TryDecode(input, out var replicaAck, out var e7), replicaAck, e7);
        typed[8] = Typed<ReplicaRelease>(ReplicaRelease.TryDecode(input, out var release, out var e8), release, e8);
        typed[9] = Typed<ConnectionTakenOver>(ConnectionTakenOver.TryDecode(input, out var takenOver, out var e9), takenOver, e9);

        for (var kind = 1; kind < typed.Length; kind++)
        {
            var expected = dispatched && header.MessageType == (ControlMessageType)kind;
            Require(typed[kind] == expected, $"typed decoder {(ControlMessageType)kind} disagrees with the dispatcher");
        }

        if (message is null)
        {
            return;
        }

        accepted[0]++;
        accepted[(int)message.MessageType]++;
        accepted[WithCredential] += message is StateReply { MigrationCredential.IsEmpty: false } ? 1 : 0;
        Require(ControlMessageCodec.TryDecode(message.Manifest, input, out var byManifest, out _) && byManifest == message, "decode by manifest differs");
        var encoded = message.ToArray();
        Require(input.SequenceEqual(encoded), "re-encoding an accepted frame changed its bytes");
        Require(ControlMessageCodec.TryDecode(encoded, out var again, out _) && again == message, "decode, encode, decode is not stable");
    }

    private static bool Typed<T>(bool ok, T? message, ControlWireError error)
        where T : ControlMessage
    {
        Require(ok == (error == ControlWireError.None) && ok == (message is not null), $"{typeof(T).Name} result, error and message disagree");
        return ok;
    }

    private static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException(what);
        }
    }

    private static List<(byte[] Bytes, int[] LengthFields)> BuildBaseVectors(Random random)
    {
        var bases = ControlSamples.Golden().Select(golden => (golden.Bytes, LengthFieldOffsets(golden.Message))).ToList();
        bases.Add((ControlSamples.ReplyWithCredentialBytes, LengthFieldOffsets(ControlSamples.ReplyWithCredential)));
        foreach (var message in ReplicaMessagesTests.Messages())
        {
            bases.Add((message.ToArray(), LengthFieldOffsets(message)));
        }

        while (bases.Count < BaseVectorCount)
        {
            var message = ControlSamples.RandomMessage(random, MaxBasePayload);
            bases.Add((message.ToArray(), LengthFieldOffsets(message)));
        }

        return bases;
    }

    /// <summary>Offsets of the length and count fields, as (offset &lt;&lt; 3) | width in bytes.</summary>
    private static int[] LengthFieldOffsets(ControlMessage message)
    {
        const int HeaderLength = ControlFrameHeader.Length;
        var fields = new List<int> { (4 << 3) | 4 };
        switch (message)
        {
            case StateRequest request:
                fields.Add((HeaderLength + CidLength(request.MigratingCid) + CidLength(request.NewEndpointCid) + 4) << 3 | 1);
                break;
            case StateReply reply:
                var fixedStart = HeaderLength + CidLength(reply.NewEndpointCid);
                fields.Add(fixedStart << 3 | 4);
                fields.Add((fixedStart + 4) << 3 | 4);
                fields.Add((fixedStart + 8) << 3 | 4);
                fields.Add((fixedStart + 16) << 3 | 4);
                fields.Add((fixedStart + 27) << 3 | 1);
                fields.Add((fixedStart + 34) << 3 | 2);
                break;
            case StateReject reject:
                fields.Add((HeaderLength + CidLength(reject.NewEndpointCid) + 1) << 3 | 1);
                break;
            case ReplicaState state:
                fields.Add((HeaderLength + CidLength(state.Cid) + 4) << 3 | 4);
                fields.Add((HeaderLength + CidLength(state.Cid) + 8) << 3 | 4);
                break;
            default:
                break;
        }

        return [.. fields];
    }

    private static int CidLength(ConnectionId cid) => 1 + cid.ClientAddress.Length + 2 + cid.ServerAddress.Length + 2;

    private static int Mutate(Random random, List<(byte[] Bytes, int[] LengthFields)> bases, byte[] buffer, out int mutation)
    {
        mutation = random.Next(8);
        if (mutation == 0)
        {
            var length = random.Next(96);
            random.NextBytes(buffer.AsSpan(0, length));
            return length;
        }

        if (mutation == 1)
        {
            // A well-formed header over random body bytes, so the body decoders see arbitrary input.
            var bodyLength = random.Next(96);
            random.NextBytes(buffer.AsSpan(ControlFrameHeader.Length, bodyLength));
            buffer[0] = ControlFrameHeader.CurrentVersion;
            buffer[1] = (byte)random.Next(1, (int)ControlMessageType.ConnectionTakenOver + 1);
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), 0);
            BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(4), (uint)bodyLength);
            BinaryPrimitives.WriteUInt64BigEndian(buffer.AsSpan(8), (ulong)random.NextInt64());
            return ControlFrameHeader.Length + bodyLength;
        }

        var (bytes, lengthFields) = bases[random.Next(bases.Count)];
        bytes.CopyTo(buffer, 0);
        var size = bytes.Length;
        switch (mutation)
        {
            case 2:
                for (var flips = random.Next(1, 5); flips > 0; flips--)
                {
                    var bit = random.Next(size * 8);
                    buffer[bit >> 3] ^= (byte)(1 << (bit & 7));
                }

                return size;
            case 3:
                return random.Next(size);
            case 4:
                size = random.Next(ControlFrameHeader.Length, size);
                FixBodyLength(buffer, size);
                return size;
            case 5:
                var field = lengthFields[random.Next(lengthFields.Length)];
                var offset = field >> 3;
                var value = random.Next(3) switch
                {
                    0 => InterestingLengths[random.Next(InterestingLengths.Length)],
                    1 => ReadField(buffer, field) + (uint)random.Next(-3, 4),
                    _ => (uint)random.NextInt64(1L << 32),
                };
                WriteField(buffer, field, value);
                return size;
            case 6:
                // Insert or delete bytes inside the body and keep the header consistent.
                var at = random.Next(ControlFrameHeader.Length, size + 1);
                if (random.Next(2) == 0 && at < size)
                {
                    var cut = random.Next(1, Math.Min(8, size - at) + 1);
                    buffer.AsSpan(at + cut, size - at - cut).CopyTo(buffer.AsSpan(at));
                    size -= cut;
                }
                else
                {
                    var insert = random.Next(1, 9);
                    buffer.AsSpan(at, size - at).CopyTo(buffer.AsSpan(at + insert));
                    random.NextBytes(buffer.AsSpan(at, insert));
                    size += insert;
                }

                FixBodyLength(buffer, size);
                return size;
            default:
                buffer[random.Next(size)] = (byte)random.Next(256);
                return size;
        }
    }

    private static void FixBodyLength(byte[] buffer, int size) =>
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(4), (uint)(size - ControlFrameHeader.Length));

    private static uint ReadField(byte[] buffer, int field) => (field & 7) switch
    {
        1 => buffer[field >> 3],
        2 => BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(field >> 3)),
        _ => BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(field >> 3)),
    };

    private static void WriteField(byte[] buffer, int field, uint value)
    {
        switch (field & 7)
        {
            case 1:
                buffer[field >> 3] = (byte)value;
                break;
            case 2:
                BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(field >> 3), (ushort)value);
                break;
            default:
                BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(field >> 3), value);
                break;
        }
    }
}
