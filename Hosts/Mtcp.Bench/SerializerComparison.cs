using System.Collections.Immutable;
using System.Diagnostics;
using Akka.Actor;
using Akka.Serialization;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Bench;

/// <summary>
/// One state size's serializer comparison: encode+decode of the state reply, medians in microseconds, with the
/// control-message serializer (Wire encoding, id 253) and with Hyperion. "Transfer" is the reply as the origin puts it
/// on the control connection: the reply itself, or its <see cref="StateReplyChunk"/>s when it exceeds
/// <c>mtcp.control.reply-chunk-size</c> (split included, reassembly not: it is the same for both serializers).
/// </summary>
internal sealed record SerializerRow(
    int StateBytes,
    int ReplyBytes,
    int TransferMessages,
    double ReplyWireP50Us,
    double ReplyHyperionP50Us,
    double ReplyHyperionOverWire,
    double TransferWireP50Us,
    double TransferHyperionP50Us,
    double TransferHyperionOverWire);

/// <summary>
/// Measures the serializer question in the benchmark's process: the same state replies through the serializer
/// the configuration binds to them and through Hyperion, alternating sample by sample so that both see the same load.
/// </summary>
internal static class SerializerComparison
{
    /// <summary>The 1 MB state of the large-state test: the only default size that is chunked.</summary>
    public const int ChunkedStateBytes = 1 << 20;

    private const int MinSamples = 101;
    private static readonly TimeSpan BudgetPerSize = TimeSpan.FromMilliseconds(300);

    public static SerializerRow Measure(ActorSystem system, int stateBytes)
    {
        var wire = system.Serialization.FindSerializerForType(typeof(StateReply));
        if (wire is not ControlMessageSerializer)
        {
            throw new InvalidOperationException($"StateReply is bound to {wire.GetType().Name}, not the control-message serializer");
        }

        // The general-purpose serializer the nodes no longer bind (docs/threat-model.md), made here for the comparison only.
        var hyperion = new HyperionSerializer((ExtendedActorSystem)system);

        var settings = ControlSettings.Create(system);
        var reply = Reply(stateBytes);
        var transfer = StateReplyTransfer.ToMessages(reply, settings);
        var wireReply = new List<double>();
        var hyperionReply = new List<double>();
        var wireTransfer = new List<double>();
        var hyperionTransfer = new List<double>();
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < MinSamples || Stopwatch.GetElapsedTime(started) < BudgetPerSize; i++)
        {
            wireReply.Add(RoundTrip(wire, reply));
            hyperionReply.Add(RoundTrip(hyperion, reply));
            wireTransfer.Add(RoundTripTransfer(wire, reply, settings));
            hyperionTransfer.Add(RoundTripTransfer(hyperion, reply, settings));
        }

        var replyWire = Median(wireReply);
        var replyHyperion = Median(hyperionReply);
        var transferWire = Median(wireTransfer);
        var transferHyperion = Median(hyperionTransfer);
        return new SerializerRow(
            stateBytes,
            reply.GetEncodedLength(),
            transfer.Count,
            replyWire,
            replyHyperion,
            replyHyperion / replyWire,
            transferWire,
            transferHyperion,
            transferHyperion / transferWire);
    }

    /// <summary>A state reply as an origin sends it for an established connection holding <paramref name="stateBytes"/> of application state.</summary>
    private static StateReply Reply(int stateBytes)
    {
        var appState = new byte[stateBytes];
        new Random(stateBytes).NextBytes(appState);
        var cid = new ConnectionId(IpAddress.Parse("127.0.0.5"), 49152, IpAddress.Parse("127.0.0.2"), 9100);
        return new StateReply(
            requestId: 1,
            cid,
            new SeqNumber(1_000_001),
            sndBytesDiscard: 0,
            new SeqNumber(2_000_001),
            new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.NoDelay | TcpSnapshotFlags.Migrate | TcpSnapshotFlags.WindowScaling, 1460, 7, 7),
            new SocketSnapshot(default, default, 0),
            appState,
            ReadOnlyMemory<byte>.Empty,
            new byte[4],
            ImmutableArray<TcpStateTransition>.Empty);
    }

    /// <summary>Encode and decode one message, in microseconds; the decoded message is checked so that nothing is optimised away.</summary>
    private static double RoundTrip(Serializer serializer, object message)
    {
        var started = Stopwatch.GetTimestamp();
        var decoded = Decode(serializer, serializer.ToBinary(message), message);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        Check(message, decoded);
        return elapsed;
    }

    private static double RoundTripTransfer(Serializer serializer, StateReply reply, ControlSettings settings)
    {
        var started = Stopwatch.GetTimestamp();
        var messages = StateReplyTransfer.ToMessages(reply, settings);
        object last = reply;
        foreach (var message in messages)
        {
            last = Decode(serializer, serializer.ToBinary(message), message);
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        Check(messages[^1], last);
        return elapsed;
    }

    /// <summary>Decodes as the receiving node does: by manifest for a manifest serializer, by type otherwise.</summary>
    private static object Decode(Serializer serializer, byte[] bytes, object sent) => serializer switch
    {
        SerializerWithStringManifest manifested => manifested.FromBinary(bytes, manifested.Manifest(sent)),
        _ => serializer.FromBinary(bytes, sent.GetType()),
    };

    private static void Check(object sent, object received)
    {
        var same = (sent, received) switch
        {
            (StateReply a, StateReply b) => a.RequestId == b.RequestId && a.AppState.Span.SequenceEqual(b.AppState.Span),
            (StateReplyChunk a, StateReplyChunk b) => a.RequestId == b.RequestId && a.ChunkIndex == b.ChunkIndex,
            _ => false,
        };
        if (!same)
        {
            throw new InvalidOperationException($"{sent.GetType().Name} did not survive the serializer round trip");
        }
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
