using System.Diagnostics;
using System.Globalization;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Wire.Tests.Control;

/// <summary>
/// Random and mutated envelopes to <see cref="ControlEnvelope.TryDecode"/>: it may never throw, a rejection
/// carries a typed error, and what it accepts re-encodes from its parts to the very same bytes.
/// One million inputs by default; MTCP_SOAK=1 multiplies that by 20; MTCP_SEED replays a seed.
/// </summary>
[Trait("Category", "Wire")]
public sealed class ControlEnvelopeFuzzTests(ITestOutputHelper output)
{
    private const int DefaultInputs = 1_000_000;
    private const int SoakFactor = 20;
    private const int DefaultSeed = 0x454E5650;
    private const int BaseVectorCount = 256;

    private static int InputCount =>
        Environment.GetEnvironmentVariable("MTCP_SOAK") == "1" ? DefaultInputs * SoakFactor : DefaultInputs;

    private static int Seed =>
        int.TryParse(Environment.GetEnvironmentVariable("MTCP_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed) ? seed : DefaultSeed;

    [Fact]
    public void Envelope_decoder_must_survive_random_and_mutated_input_and_re_encode_what_it_accepts()
    {
        var seed = Seed;
        var count = InputCount;
        output.WriteLine($"seed {seed} (set MTCP_SEED to replay), inputs {count}");
        var random = new Random(seed);
        var bases = BuildBaseVectors(random);
        var buffer = new byte[4096];
        var reencoded = new byte[4096];
        var accepted = 0;
        var acceptedWithMessage = 0;
        var stopwatch = Stopwatch.StartNew();

        for (var i = 0; i < count; i++)
        {
            var length = Mutate(random, bases, buffer, out var mutation);
            var input = buffer.AsSpan(0, length);
            try
            {
                if (!ControlEnvelope.TryDecode(input, out var envelope, out var error))
                {
                    Require(error != ControlWireError.None, "a rejection without an error");
                    continue;
                }

                Require(error == ControlWireError.None, "an acceptance with an error");
                accepted++;
                Require(
                    ControlEnvelope.TryEncode(reencoded, envelope.Sender, envelope.Receiver, envelope.Frame, envelope.Mac, out var written)
                        && input.SequenceEqual(reencoded.AsSpan(0, written)),
                    "re-encoding an accepted envelope changed its bytes");
                Require(ControlFrameHeader.TryRead(envelope.Frame, out var header, out _) && header == envelope.FrameHeader, "frame header differs");
                var decoded = ControlMessageCodec.TryDecode(envelope.Frame, out var message, out var messageError);
                Require(decoded == (messageError == ControlWireError.None) && decoded == (message is not null), "frame decoder result and error disagree");
                acceptedWithMessage += decoded ? 1 : 0;
            }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"seed {seed}, input {i}, mutation {mutation}: {e.Message}\n{Convert.ToHexString(input)}", e);
            }
        }

        output.WriteLine($"{count} inputs in {stopwatch.Elapsed.TotalSeconds:F2} s; accepted {accepted}, of which {acceptedWithMessage} held a valid message");
        Assert.True(accepted > count / 100, $"seed {seed}: only {accepted} envelopes accepted; the fuzzer is not reaching past the header");
        Assert.True(acceptedWithMessage > 0, $"seed {seed}: no accepted envelope held a valid message");
    }

    private static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException(what);
        }
    }

    private static List<byte[]> BuildBaseVectors(Random random)
    {
        var bases = new List<byte[]> { ControlEnvelopeTests.EnvelopeBytes };
        while (bases.Count < BaseVectorCount)
        {
            var message = ControlSamples.RandomMessage(random, 32);
            var sender = ControlSamples.RandomBytes(random, 24);
            var receiver = ControlSamples.RandomBytes(random, 24);
            if (sender.Length == 0 || receiver.Length == 0)
            {
                continue;
            }

            var envelope = new byte[ControlEnvelope.GetEncodedLength(sender.Length, receiver.Length, message.GetEncodedLength())];
            Require(ControlEnvelope.TryEncodeUnsigned(envelope, sender, receiver, message, out _, out var mac, out _), "base vector does not fit");
            random.NextBytes(envelope.AsSpan(mac));
            bases.Add(envelope);
        }

        return bases;
    }

    private static int Mutate(Random random, List<byte[]> bases, byte[] buffer, out int mutation)
    {
        mutation = random.Next(7);
        if (mutation == 0)
        {
            var length = random.Next(128);
            random.NextBytes(buffer.AsSpan(0, length));
            return length;
        }

        var bytes = bases[random.Next(bases.Count)];
        bytes.CopyTo(buffer, 0);
        var size = bytes.Length;
        switch (mutation)
        {
            case 1:
                for (var flips = random.Next(1, 4); flips > 0; flips--)
                {
                    var bit = random.Next(size * 8);
                    buffer[bit >> 3] ^= (byte)(1 << (bit & 7));
                }

                return size;
            case 2:
                return random.Next(size);
            case 3:
                // An identity length: off by a little, or anything.
                var field = ControlEnvelope.HeaderLength - 1 - random.Next(2);
                buffer[field] = random.Next(2) == 0 ? (byte)(buffer[field] + random.Next(-2, 3)) : (byte)random.Next(256);
                return size;
            case 4:
                return Mtcp.TestKit.FuzzRun.InsertOrDelete(random, buffer, size);
            case 5:
                // Unchanged: the decoder must accept every base vector.
                return size;
            default:
                buffer[random.Next(size)] = (byte)random.Next(256);
                return size;
        }
    }
}
