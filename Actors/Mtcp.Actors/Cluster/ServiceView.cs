using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Mtcp.Wire;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// The other cooperating servers a connection accepted on this node may migrate to: the content of
/// TCP_MIGRATE on the SYN+ACK (thesis 4.2.3; <c>extra_ip_addrs</c> set by TCP_ADDSERVERS), built from the
/// cluster's members instead of by hand. Ordered by member address, so that every node lists the same
/// servers in the same order; this node's own endpoints are never in it. Immutable.
/// </summary>
internal sealed class AlternateServerList : IEquatable<AlternateServerList>
{
    private readonly ImmutableArray<ServerEndpoint> _servers;

    public AlternateServerList(IEnumerable<ServerEndpoint> servers)
    {
        ArgumentNullException.ThrowIfNull(servers);
        _servers = [.. servers];
        Servers = _servers;
    }

    public static AlternateServerList Empty { get; } = new([]);

    /// <summary>
    /// The list boxed once: every segment a server endpoint sends reads it (TCP_MIGRATE may ride on it), and boxing the
    /// array on each read was an allocation per segment.
    /// </summary>
    public IReadOnlyList<ServerEndpoint> Servers { get; }

    public int Count => _servers.Length;

    /// <summary>
    /// The TCP_MIGRATE option for a SYN+ACK with <paramref name="bytesAvailable"/> option bytes left: the
    /// longest prefix that fits (see <see cref="MtcpAlternateServers.Fit"/>); null when none fits or the list is empty.
    /// </summary>
    public MtcpAlternateServers? ToOption(int bytesAvailable, out int dropped) => MtcpAlternateServers.Fit(_servers, bytesAvailable, out dropped);

    public bool Equals(AlternateServerList? other) => other is not null && _servers.AsSpan().SequenceEqual(other._servers.AsSpan());

    public override bool Equals(object? obj) => Equals(obj as AlternateServerList);

    public override int GetHashCode() => _servers.Length;

    public override string ToString() => $"[{string.Join(", ", _servers)}]";
}

/// <summary>
/// TCP_CONTROL_MAPPINGS (thesis 4.2.3) from the cluster: which node's control connection serves a service
/// endpoint. The new server looks up the origin's service endpoint from MIGRATED_CONN here to find the peer
/// to send its <see cref="RequestState"/> to. Keyed by address and port, since nodes on one host may share an
/// address. Includes this node's own endpoints. Immutable. Beside them, the port of each node's direct replication
/// channel, on its control host, for the nodes that announce one (docs/failover.md).
/// </summary>
internal sealed class ControlMappings : IEquatable<ControlMappings>
{
    private readonly ImmutableDictionary<ServerEndpoint, Address> _controlByService;
    private readonly ImmutableDictionary<Address, ushort> _replicationChannelPorts;

    public ControlMappings(IEnumerable<KeyValuePair<ServerEndpoint, Address>> controlByService, IEnumerable<KeyValuePair<Address, ushort>>? replicationChannelPorts = null)
    {
        ArgumentNullException.ThrowIfNull(controlByService);
        _controlByService = controlByService.ToImmutableDictionary();
        _replicationChannelPorts = (replicationChannelPorts ?? []).ToImmutableDictionary();
    }

    public static ControlMappings Empty { get; } = new([]);

    public IReadOnlyDictionary<ServerEndpoint, Address> ControlByService => _controlByService;

    public int Count => _controlByService.Count;

    /// <summary>The nodes that take replica updates on a direct channel, and its port on the host of their control address.</summary>
    public IReadOnlyDictionary<Address, ushort> ReplicationChannelPorts => _replicationChannelPorts;

    public bool TryGetControlAddress(ServerEndpoint serviceEndpoint, [NotNullWhen(true)] out Address? controlAddress) =>
        _controlByService.TryGetValue(serviceEndpoint, out controlAddress);

    public bool Equals(ControlMappings? other) =>
        other is not null
        && _controlByService.Count == other._controlByService.Count
        && _controlByService.All(pair => other._controlByService.TryGetValue(pair.Key, out var address) && address.Equals(pair.Value))
        && _replicationChannelPorts.Count == other._replicationChannelPorts.Count
        && _replicationChannelPorts.All(pair => other._replicationChannelPorts.TryGetValue(pair.Key, out var port) && port == pair.Value);

    public override bool Equals(object? obj) => Equals(obj as ControlMappings);

    public override int GetHashCode() => _controlByService.Count;

    public override string ToString() => $"{{{string.Join(", ", _controlByService.Select(pair => $"{pair.Key} -> {pair.Value}"))}}}";
}

/// <summary>Subscribe <paramref name="Subscriber"/> to <see cref="AlternateServersChanged"/>; it gets the current view at once.</summary>
internal sealed record SubscribeAlternateServers(IActorRef Subscriber);

/// <summary>Stop sending <see cref="AlternateServersChanged"/> to <paramref name="Subscriber"/>.</summary>
internal sealed record UnsubscribeAlternateServers(IActorRef Subscriber);

/// <summary>Asks the <see cref="ServiceDirectory"/> for its current view; answered with <see cref="AlternateServersChanged"/>.</summary>
internal sealed record GetAlternateServers
{
    public static GetAlternateServers Instance { get; } = new();
}

/// <summary>
/// The service directory's view changed (a member joined, left, became unreachable or reachable again, or
/// announced other addresses): new connections use these alternates and mappings. <paramref name="Unreachable"/>: the
/// members the failure detector marks unreachable and that are not removed yet (absent from the alternates and
/// mappings); a connection keeps an unreachable buddy, its ACKs held, until the buddy is removed or reachable again.
/// </summary>
internal sealed record AlternateServersChanged(AlternateServerList Alternates, ControlMappings ControlMappings, IReadOnlySet<Address>? Unreachable = null);
