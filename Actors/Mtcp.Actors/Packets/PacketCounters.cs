using System.Collections.Immutable;
using Mtcp.Actors.Api;
using Mtcp.Wire;

namespace Mtcp.Actors.Packets;

/// <summary>Asks a packet actor for its <see cref="PacketStatistics"/>.</summary>
internal sealed class GetPacketStatistics
{
    public static readonly GetPacketStatistics Instance = new();

    private GetPacketStatistics()
    {
    }
}

/// <summary>The counters behind <see cref="PacketStatistics"/>, written from the receive thread and the endpoints.</summary>
internal sealed class PacketCounters
{
    private readonly long[] _malformed = new long[Enum.GetValues<WireError>().Length];
    private long _received;
    private long _routed;
    private long _stray;
    private long _resets;
    private long _synsDropped;
    private long _sendsDropped;
    private long _silenced;
    private long _packetTooBigRouted;
    private long _packetTooBigApplied;
    private long _packetTooBigRefused;

    public void Received() => Interlocked.Increment(ref _received);

    public void Routed() => Interlocked.Increment(ref _routed);

    public void Malformed(WireError reason) => Interlocked.Increment(ref _malformed[(int)reason]);

    public void Stray() => Interlocked.Increment(ref _stray);

    public void ResetSent() => Interlocked.Increment(ref _resets);

    public void SynDropped() => Interlocked.Increment(ref _synsDropped);

    public void SendDropped() => Interlocked.Increment(ref _sendsDropped);

    public void Silenced() => Interlocked.Increment(ref _silenced);

    public void PacketTooBigRouted() => Interlocked.Increment(ref _packetTooBigRouted);

    public void PacketTooBigApplied() => Interlocked.Increment(ref _packetTooBigApplied);

    public void PacketTooBigRefused() => Interlocked.Increment(ref _packetTooBigRefused);

    public PacketStatistics Snapshot(int endpoints, int silencedTuples)
    {
        var malformed = ImmutableDictionary.CreateBuilder<WireError, long>();
        foreach (var reason in Enum.GetValues<WireError>())
        {
            var count = Interlocked.Read(ref _malformed[(int)reason]);
            if (count > 0)
            {
                malformed.Add(reason, count);
            }
        }

        return new PacketStatistics(
            Interlocked.Read(ref _received),
            Interlocked.Read(ref _routed),
            malformed.ToImmutable(),
            Interlocked.Read(ref _stray),
            Interlocked.Read(ref _resets),
            Interlocked.Read(ref _synsDropped),
            Interlocked.Read(ref _sendsDropped),
            endpoints,
            Interlocked.Read(ref _silenced),
            silencedTuples,
            Interlocked.Read(ref _packetTooBigRouted),
            Interlocked.Read(ref _packetTooBigApplied),
            Interlocked.Read(ref _packetTooBigRefused));
    }
}
