using System.Buffers.Binary;

namespace Mtcp.Wire;

/// <summary>
/// The MTCP options (thesis 3.2.1, 4.2.3), carried as shared experimental options (RFC 6994):
/// <code>
///  +--------+--------+--------+--------+--------+----------------
///  | Kind   | Length |   ExID = 0x4D54 | Subtype| subtype data ...
///  | 253/254|        |                 |        |
///  +--------+--------+--------+--------+--------+----------------
/// </code>
/// Kind 253 is emitted; 254 is accepted too. An option with our ExID and an unknown subtype is kept
/// as an unknown option (it round-trips untouched); one with a known subtype but an impossible layout
/// is <see cref="WireError.BadMtcpOption"/>.
/// </summary>
public static class MtcpOption
{
    /// <summary>
    /// Our 16-bit ExID: ASCII "MT". It is not an IANA-assigned ExID (Wireshark's dissector, which knows
    /// the registered ones, shows it as unknown): RFC 6994 §4 lets an experiment run with an unregistered
    /// one, at the cost of a possible collision, which the subtype and strict layouts make detectable.
    /// </summary>
    public const ushort ExperimentId = 0x4D54;

    /// <summary>Kind, length, ExID and subtype.</summary>
    public const int HeaderLength = 5;

    /// <summary>β's option: <c>| 253 | 9 | ExID | 5 | β (32 bits) |</c>.</summary>
    public const int BetaLength = HeaderLength + 4;

    /// <summary>CLIENT_STATE is the header alone, <c>| 253 | 5 | ExID | 7 |</c>: everything else is in the blob it marks.</summary>
    public const int ClientStateLength = HeaderLength;

    /// <summary>Authenticators are 64-bit truncated MACs, big-endian on the wire.</summary>
    public const int AuthenticatorLength = 8;

    internal static bool IsOurs(ReadOnlySpan<byte> data) =>
        data.Length >= 2 && BinaryPrimitives.ReadUInt16BigEndian(data) == ExperimentId;

    internal static int WriteHeader(Span<byte> destination, MtcpOptionSubtype subtype, int length)
    {
        destination[0] = (byte)TcpOptionKind.Experimental1;
        destination[1] = (byte)length;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], ExperimentId);
        destination[4] = (byte)subtype;
        return HeaderLength;
    }

    internal static int EndpointLength(ServerEndpoint endpoint) => endpoint.Address.Length + 2;

    internal static int WriteEndpoint(Span<byte> destination, ServerEndpoint endpoint)
    {
        var length = endpoint.Address.WriteTo(destination);
        BinaryPrimitives.WriteUInt16BigEndian(destination[length..], endpoint.Port);
        return length + 2;
    }

    internal static bool TryReadEndpoint(ref ReadOnlySpan<byte> data, bool ipv6, out ServerEndpoint endpoint)
    {
        var addressLength = ipv6 ? IpAddress.V6Length : IpAddress.V4Length;
        if (data.Length < addressLength + 2)
        {
            endpoint = default;
            return false;
        }

        var address = ipv6 ? IpAddress.FromIPv6(data) : IpAddress.FromIPv4(data);
        endpoint = new ServerEndpoint(address, BinaryPrimitives.ReadUInt16BigEndian(data[addressLength..]));
        data = data[(addressLength + 2)..];
        return true;
    }
}

/// <summary>The subtype byte after the ExID.</summary>
public enum MtcpOptionSubtype : byte
{
    /// <summary>
    /// TCP_MIGRATE: alternate servers on the origin server's SYN+ACK (thesis 4.2.3, Figure 4.6), repeated on its
    /// first segments after the handshake when the migration secret crowds them out.
    /// </summary>
    AlternateServers = 1,

    /// <summary>TCP_MIGRATED_CONN on the client's special SYN to the new server (thesis 4.2.3).</summary>
    MigratedConnection = 2,

    /// <summary>MIGRATE_TRIGGER from a remote trigger to the client (thesis 3.2.1).</summary>
    MigrateTrigger = 3,

    /// <summary>The origin's <c>last_ack_sent</c> and <c>snd_max_seen</c> on the new server's SYN+ACK (thesis 4.2.3).</summary>
    OrigConnectionInfo = 4,

    /// <summary>β on the client's ACK that completes the migration handshake (thesis 4.2.3).</summary>
    Beta = 5,

    /// <summary>
    /// The per-connection migration secret on the origin server's SYN+ACK (beyond the thesis: the key of the
    /// authenticators of TCP_MIGRATED_CONN and MIGRATE_TRIGGER).
    /// </summary>
    MigrationSecret = 6,

    /// <summary>
    /// CLIENT_STATE (beyond the thesis, its client-stored state of 3.2): the segment's payload is a sealed
    /// <see cref="ClientStateBlob"/>, not stream data. From the serving node to its client, outside the sequence space;
    /// on the client's special SYN to a node when it presents the blob after a crash (docs/failover.md).
    /// </summary>
    ClientState = 7,
}

/// <summary>A server's service address and port.</summary>
public readonly record struct ServerEndpoint(IpAddress Address, ushort Port)
{
    /// <summary><c>address:port</c>, with an IPv6 address in brackets (RFC 3986 §3.2.2), as IPEndPoint parses it back.</summary>
    public override string ToString() => Address.IsIPv6 ? $"[{Address}]:{Port}" : $"{Address}:{Port}";
}

/// <summary>
/// TCP_MIGRATE (thesis 4.2.3): the other cooperating servers the client may migrate to, in the
/// origin server's order of preference.
/// <code>
///  | 253 | len | ExID | 1 | families | server 0: address, port | server 1 ... |
/// </code>
/// Bit i of <c>families</c> is set when server i has a 16-byte IPv6 address, clear for a 4-byte IPv4
/// one; bits past the last server must be clear. Each server takes 6 (IPv4) or 18 (IPv6) bytes, so at
/// most <see cref="MaxServers"/> fit.
/// </summary>
public sealed record MtcpAlternateServers
{
    public const int MaxServers = 8;

    /// <summary>Option header plus the families byte.</summary>
    public const int FixedLength = MtcpOption.HeaderLength + 1;

    private readonly ServerEndpoint[] _servers;

    /// <summary>Throws when a server has no address or there are more than <see cref="MaxServers"/>.</summary>
    public MtcpAlternateServers(IEnumerable<ServerEndpoint> servers)
    {
        _servers = servers.ToArray();
        if (_servers.Length > MaxServers)
        {
            throw new ArgumentException($"at most {MaxServers} alternate servers fit in one option", nameof(servers));
        }

        if (_servers.Any(s => s.Address.Length == 0))
        {
            throw new ArgumentException("an alternate server has no address", nameof(servers));
        }
    }

    private MtcpAlternateServers(ServerEndpoint[] servers) => _servers = servers;

    public IReadOnlyList<ServerEndpoint> Servers => _servers;

    /// <summary>Bytes on the wire, option header included.</summary>
    public int BufferLength => FixedLength + _servers.Sum(MtcpOption.EndpointLength);

    /// <summary>
    /// What is kept when the list is too long: the longest prefix of <paramref name="preferred"/>, in the
    /// given order of preference, whose option fits in <paramref name="bytesAvailable"/>; the rest are
    /// dropped and counted in <paramref name="dropped"/>. We keep a prefix rather than packing more small
    /// IPv4 entries past a large IPv6 one so that the client always learns the servers the origin prefers
    /// most. Returns null when not even the first server fits: an empty list tells the client nothing.
    /// </summary>
    public static MtcpAlternateServers? Fit(IReadOnlyList<ServerEndpoint> preferred, int bytesAvailable, out int dropped)
    {
        var kept = 0;
        var length = FixedLength;
        while (kept < preferred.Count && kept < MaxServers
            && length + MtcpOption.EndpointLength(preferred[kept]) <= bytesAvailable)
        {
            length += MtcpOption.EndpointLength(preferred[kept]);
            kept++;
        }

        dropped = preferred.Count - kept;
        return kept == 0 ? null : new MtcpAlternateServers(preferred.Take(kept));
    }

    internal int Write(Span<byte> destination)
    {
        var at = MtcpOption.WriteHeader(destination, MtcpOptionSubtype.AlternateServers, BufferLength);
        byte families = 0;
        for (var i = 0; i < _servers.Length; i++)
        {
            if (_servers[i].Address.IsIPv6)
            {
                families |= (byte)(1 << i);
            }
        }

        destination[at++] = families;
        foreach (var server in _servers)
        {
            at += MtcpOption.WriteEndpoint(destination[at..], server);
        }

        return at;
    }

    internal static MtcpAlternateServers? Parse(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return null;
        }

        int families = body[0];
        body = body[1..];
        var servers = new List<ServerEndpoint>(MaxServers);
        while (!body.IsEmpty)
        {
            if (servers.Count == MaxServers
                || !MtcpOption.TryReadEndpoint(ref body, (families & (1 << servers.Count)) != 0, out var server))
            {
                return null;
            }

            servers.Add(server);
        }

        // Bits for servers that are not there would make two encodings of one list.
        return (families >> servers.Count) != 0 ? null : new MtcpAlternateServers(servers.ToArray());
    }

    public bool Equals(MtcpAlternateServers? other) => other is not null && _servers.AsSpan().SequenceEqual(other._servers);

    public override int GetHashCode() => _servers.Length == 0 ? 0 : HashCode.Combine(_servers.Length, _servers[0]);

    public override string ToString() => $"AlternateServers [{string.Join(", ", _servers)}]";
}

/// <summary>
/// TCP_MIGRATED_CONN (thesis 4.2.3) on the client's special SYN to the new server: which connection
/// migrates, the client's <c>rcv_nxt</c> on it, and an authenticator.
/// <code>
///  | 253 | len | ExID | 2 | flags | origin address (4/16/8) | origin port | [client port] | rcv_nxt | authenticator (8) |
/// </code>
/// The Cid is compressed: its client address is the IP source of the SYN (the client does not move),
/// and its client port is the SYN's source port unless flag 0x02 carries it. Flag 0x01: the origin
/// address is IPv6. Flag 0x04 (with 0x01): only the origin's low 64 bits travel, its upper 64 bits
/// (the subnet prefix, RFC 4291 §2.5.4) being those of the SYN's destination, the new server: cooperating
/// servers on one IPv6 subnet. Sizes: 24/26 bytes for IPv4, 36/38 for IPv6, 28/30 for IPv6 on one subnet.
/// A special SYN also offers MSS, window scale and SACK-permitted (9 bytes, 12 with padding): all fit
/// in TCP's 40 option bytes for IPv4 and for IPv6 on one subnet; an IPv6 origin on another subnet
/// (36 bytes) leaves room for the MSS only, and with the client port (38) for none of them, nor for the
/// client-state flag (5): the client then leaves them out (MtcpClientConnection).
/// </summary>
public readonly record struct MtcpMigratedConnection(ServerEndpoint OriginServer, ushort? ClientPort, SeqNumber RcvNxt, ulong Authenticator)
{
    private const byte OriginIsIPv6 = 0x01;
    private const byte ClientPortPresent = 0x02;
    private const byte OriginOnDestinationSubnet = 0x04;
    private const int InterfaceIdLength = 8;

    /// <summary>
    /// Whether only the origin address's low 64 bits travel: true when built by <see cref="ForDestination"/> for an IPv6
    /// origin on the destination's /64, and on a parsed option that carried them; <see cref="OriginServer"/> then holds
    /// zero upper bits until <see cref="ToConnectionId"/> or <see cref="OriginOn"/> restores them from the SYN's destination.
    /// </summary>
    public bool OriginOnSynDestinationSubnet { get; init; }

    public int BufferLength => MtcpOption.HeaderLength + 1
        + (OriginOnSynDestinationSubnet ? InterfaceIdLength + 2 : MtcpOption.EndpointLength(OriginServer))
        + (ClientPort.HasValue ? 2 : 0) + 4 + MtcpOption.AuthenticatorLength;

    /// <summary>
    /// The option a client puts on its special SYN to <paramref name="synDestination"/>: in the compact form when the
    /// origin and the destination are IPv6 addresses on one /64.
    /// </summary>
    public static MtcpMigratedConnection ForDestination(IpAddress synDestination, ServerEndpoint originServer, ushort? clientPort, SeqNumber rcvNxt, ulong authenticator) =>
        new(originServer, clientPort, rcvNxt, authenticator)
        {
            OriginOnSynDestinationSubnet = originServer.Address.IsIPv6 && synDestination.IsIPv6 && SubnetPrefix(originServer.Address) == SubnetPrefix(synDestination),
        };

    /// <summary>The origin server, given the SYN's IP destination (which supplies the upper 64 bits of a compact origin).</summary>
    public ServerEndpoint OriginOn(IpAddress synDestination)
    {
        if (!OriginOnSynDestinationSubnet || !synDestination.IsIPv6)
        {
            return OriginServer;
        }

        Span<byte> address = stackalloc byte[IpAddress.V6Length];
        synDestination.WriteTo(address);
        Span<byte> origin = stackalloc byte[IpAddress.V6Length];
        OriginServer.Address.WriteTo(origin);
        origin[InterfaceIdLength..].CopyTo(address[InterfaceIdLength..]);
        return new ServerEndpoint(IpAddress.FromIPv6(address), OriginServer.Port);
    }

    /// <summary>The migrating connection's Cid, given the SYN's IP source, TCP source port and IP destination.</summary>
    public ConnectionId ToConnectionId(IpAddress synSource, ushort synSourcePort, IpAddress synDestination)
    {
        var origin = OriginOn(synDestination);
        return new(synSource, ClientPort ?? synSourcePort, origin.Address, origin.Port);
    }

    private static ulong SubnetPrefix(IpAddress address)
    {
        Span<byte> bytes = stackalloc byte[IpAddress.V6Length];
        address.WriteTo(bytes);
        return BinaryPrimitives.ReadUInt64BigEndian(bytes);
    }

    internal int Write(Span<byte> destination)
    {
        var at = MtcpOption.WriteHeader(destination, MtcpOptionSubtype.MigratedConnection, BufferLength);
        destination[at++] = (byte)((OriginServer.Address.IsIPv6 ? OriginIsIPv6 : 0)
            | (ClientPort.HasValue ? ClientPortPresent : 0)
            | (OriginOnSynDestinationSubnet ? OriginOnDestinationSubnet : 0));
        if (OriginOnSynDestinationSubnet)
        {
            Span<byte> origin = stackalloc byte[IpAddress.V6Length];
            OriginServer.Address.WriteTo(origin);
            origin[InterfaceIdLength..].CopyTo(destination[at..]);
            BinaryPrimitives.WriteUInt16BigEndian(destination[(at + InterfaceIdLength)..], OriginServer.Port);
            at += InterfaceIdLength + 2;
        }
        else
        {
            at += MtcpOption.WriteEndpoint(destination[at..], OriginServer);
        }

        if (ClientPort is { } clientPort)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[at..], clientPort);
            at += 2;
        }

        BinaryPrimitives.WriteUInt32BigEndian(destination[at..], RcvNxt.Value);
        BinaryPrimitives.WriteUInt64BigEndian(destination[(at + 4)..], Authenticator);
        return at + 4 + MtcpOption.AuthenticatorLength;
    }

    internal static MtcpMigratedConnection? Parse(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty || (body[0] & ~(OriginIsIPv6 | ClientPortPresent | OriginOnDestinationSubnet)) != 0)
        {
            return null;
        }

        var flags = body[0];
        body = body[1..];
        var compact = (flags & OriginOnDestinationSubnet) != 0;
        ServerEndpoint origin;
        if (compact)
        {
            // The compact form names an IPv6 origin only.
            if ((flags & OriginIsIPv6) == 0 || body.Length < InterfaceIdLength + 2)
            {
                return null;
            }

            Span<byte> address = stackalloc byte[IpAddress.V6Length];
            address.Clear();
            body[..InterfaceIdLength].CopyTo(address[InterfaceIdLength..]);
            origin = new ServerEndpoint(IpAddress.FromIPv6(address), BinaryPrimitives.ReadUInt16BigEndian(body[InterfaceIdLength..]));
            body = body[(InterfaceIdLength + 2)..];
        }
        else if (!MtcpOption.TryReadEndpoint(ref body, (flags & OriginIsIPv6) != 0, out origin))
        {
            return null;
        }

        ushort? clientPort = null;
        var rest = (flags & ClientPortPresent) != 0 ? 2 + 4 + MtcpOption.AuthenticatorLength : 4 + MtcpOption.AuthenticatorLength;
        if (body.Length != rest)
        {
            return null;
        }

        if ((flags & ClientPortPresent) != 0)
        {
            clientPort = BinaryPrimitives.ReadUInt16BigEndian(body);
            body = body[2..];
        }

        return new MtcpMigratedConnection(
            origin,
            clientPort,
            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(body)),
            BinaryPrimitives.ReadUInt64BigEndian(body[4..]))
        {
            OriginOnSynDestinationSubnet = compact,
        };
    }
}

/// <summary>
/// The optional destination of a MIGRATE_TRIGGER, <c>(S_dest, Auth_dest)</c> in thesis 3.2.1.
/// <paramref name="Server"/> null means the trigger's sender is the destination (a server pulling a
/// connection to itself), which saves the address bytes.
/// </summary>
public readonly record struct MtcpTriggerDestination(ServerEndpoint? Server, ulong AuthDest);

/// <summary>
/// MIGRATE_TRIGGER = (Cid, Auth_trig, (S_dest, Auth_dest)) (thesis 3.2.1), sent by a remote trigger
/// to the client on the Cid's client port.
/// <code>
///  | 253 | len | ExID | 3 | flags | Auth_trig (8) | [origin address, port] | [destination address, port] | [Auth_dest (8)] |
/// </code>
/// The Cid is compressed: its client address and port are the trigger segment's IP destination and
/// TCP destination port; its server end is the segment's source unless flag 0x01 carries the origin
/// server (a third server triggering). Flags: 0x01 origin present, 0x02 origin is IPv6, 0x04 destination
/// present (Auth_dest present), 0x08 destination address present (else the sender), 0x10 destination is
/// IPv6. IPv4 with everything explicit is 34 bytes; IPv6 fits 40 bytes only when at most one of the two
/// endpoints is explicit (origin implied, or destination = sender); both explicit in IPv6 (58) cannot be
/// emitted.
/// </summary>
public readonly record struct MtcpMigrateTrigger(ulong AuthTrig, ServerEndpoint? OriginServer, MtcpTriggerDestination? Destination)
{
    private const byte OriginPresent = 0x01;
    private const byte OriginIsIPv6 = 0x02;
    private const byte DestinationPresent = 0x04;
    private const byte DestinationServerPresent = 0x08;
    private const byte DestinationIsIPv6 = 0x10;
    private const byte KnownFlags = OriginPresent | OriginIsIPv6 | DestinationPresent | DestinationServerPresent | DestinationIsIPv6;

    public int BufferLength => MtcpOption.HeaderLength + 1 + MtcpOption.AuthenticatorLength
        + (OriginServer is { } origin ? MtcpOption.EndpointLength(origin) : 0)
        + (Destination is { } destination
            ? MtcpOption.AuthenticatorLength + (destination.Server is { } server ? MtcpOption.EndpointLength(server) : 0)
            : 0);

    /// <summary>The Cid, given the trigger segment's source and destination endpoints.</summary>
    public ConnectionId ToConnectionId(ServerEndpoint segmentSource, IpAddress clientAddress, ushort clientPort)
    {
        var origin = OriginServer ?? segmentSource;
        return new ConnectionId(clientAddress, clientPort, origin.Address, origin.Port);
    }

    internal bool HasAddresses =>
        (OriginServer is not { } origin || origin.Address.Length != 0)
        && (Destination?.Server is not { } server || server.Address.Length != 0);

    internal int Write(Span<byte> destination)
    {
        var at = MtcpOption.WriteHeader(destination, MtcpOptionSubtype.MigrateTrigger, BufferLength);
        var flags = 0;
        if (OriginServer is { } origin)
        {
            flags |= OriginPresent | (origin.Address.IsIPv6 ? OriginIsIPv6 : 0);
        }

        if (Destination is { } target)
        {
            flags |= DestinationPresent;
            if (target.Server is { } server)
            {
                flags |= DestinationServerPresent | (server.Address.IsIPv6 ? DestinationIsIPv6 : 0);
            }
        }

        destination[at++] = (byte)flags;
        BinaryPrimitives.WriteUInt64BigEndian(destination[at..], AuthTrig);
        at += MtcpOption.AuthenticatorLength;
        if (OriginServer is { } originServer)
        {
            at += MtcpOption.WriteEndpoint(destination[at..], originServer);
        }

        if (Destination is { } dest)
        {
            if (dest.Server is { } destServer)
            {
                at += MtcpOption.WriteEndpoint(destination[at..], destServer);
            }

            BinaryPrimitives.WriteUInt64BigEndian(destination[at..], dest.AuthDest);
            at += MtcpOption.AuthenticatorLength;
        }

        return at;
    }

    internal static MtcpMigrateTrigger? Parse(ReadOnlySpan<byte> body)
    {
        if (body.Length < 1 + MtcpOption.AuthenticatorLength)
        {
            return null;
        }

        var flags = body[0];
        var consistent = (flags & ~KnownFlags) == 0
            && ((flags & OriginIsIPv6) == 0 || (flags & OriginPresent) != 0)
            && ((flags & DestinationServerPresent) == 0 || (flags & DestinationPresent) != 0)
            && ((flags & DestinationIsIPv6) == 0 || (flags & DestinationServerPresent) != 0);
        if (!consistent)
        {
            return null;
        }

        var authTrig = BinaryPrimitives.ReadUInt64BigEndian(body[1..]);
        body = body[(1 + MtcpOption.AuthenticatorLength)..];
        ServerEndpoint? origin = null;
        if ((flags & OriginPresent) != 0)
        {
            if (!MtcpOption.TryReadEndpoint(ref body, (flags & OriginIsIPv6) != 0, out var server))
            {
                return null;
            }

            origin = server;
        }

        MtcpTriggerDestination? destination = null;
        if ((flags & DestinationPresent) != 0)
        {
            ServerEndpoint? destinationServer = null;
            if ((flags & DestinationServerPresent) != 0)
            {
                if (!MtcpOption.TryReadEndpoint(ref body, (flags & DestinationIsIPv6) != 0, out var server))
                {
                    return null;
                }

                destinationServer = server;
            }

            if (body.Length < MtcpOption.AuthenticatorLength)
            {
                return null;
            }

            destination = new MtcpTriggerDestination(destinationServer, BinaryPrimitives.ReadUInt64BigEndian(body));
            body = body[MtcpOption.AuthenticatorLength..];
        }

        return body.IsEmpty ? new MtcpMigrateTrigger(authTrig, origin, destination) : null;
    }
}

/// <summary>
/// On the new server's SYN+ACK (thesis 4.2.3): the origin server's <c>rcv_nxt</c> as it stood when the
/// state was packaged (its <c>last_ack_sent</c>, kept at the new server as <c>orig_server_rcv_nxt</c>)
/// and <c>snd_max_seen</c> (kept as <c>orig_server_max_snd_seq</c>).
/// <code>
///  | 253 | 13 | ExID | 4 | last_ack_sent | snd_max_seen |
/// </code>
/// </summary>
public readonly record struct MtcpOrigConnectionInfo(SeqNumber LastAckSent, SeqNumber SndMaxSeen)
{
    public const int BufferLength = MtcpOption.HeaderLength + 8;

    internal int Write(Span<byte> destination)
    {
        var at = MtcpOption.WriteHeader(destination, MtcpOptionSubtype.OrigConnectionInfo, BufferLength);
        BinaryPrimitives.WriteUInt32BigEndian(destination[at..], LastAckSent.Value);
        BinaryPrimitives.WriteUInt32BigEndian(destination[(at + 4)..], SndMaxSeen.Value);
        return BufferLength;
    }

    internal static MtcpOrigConnectionInfo? Parse(ReadOnlySpan<byte> body) =>
        body.Length != 8
            ? null
            : new MtcpOrigConnectionInfo(
                new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(body)),
                new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(body[4..])));
}

/// <summary>
/// The 128-bit migration secret the origin server derives for a connection and gives the client on its
/// SYN+ACK, the only segment an off-path attacker never sees; the client keys its MIGRATED_CONN
/// authenticators and checks triggers with it. The codec carries it as opaque bytes, network order.
/// <code>
///  | 253 | 21 | ExID | 6 | secret (16 bytes) |
/// </code>
/// With every standard SYN+ACK option (MSS 4, window scale 3, SACK-permitted 2, timestamps 10: 19 bytes) it
/// takes the remaining 21 of the 40 bytes exactly, leaving no room for TCP_MIGRATE: see
/// <see cref="TcpOptions.WithMigrationSecret"/> for what is kept and where the alternate servers go then.
/// </summary>
public readonly record struct MtcpMigrationSecret
{
    /// <summary>Bytes of the secret itself.</summary>
    public const int SecretLength = 16;

    /// <summary>Bytes on the wire, option header included.</summary>
    public const int BufferLength = MtcpOption.HeaderLength + SecretLength;

    private readonly ulong _high;
    private readonly ulong _low;

    private MtcpMigrationSecret(ulong high, ulong low)
    {
        _high = high;
        _low = low;
    }

    /// <summary>From exactly <see cref="SecretLength"/> bytes; throws on any other length.</summary>
    public static MtcpMigrationSecret FromBytes(ReadOnlySpan<byte> secret)
    {
        if (secret.Length != SecretLength)
        {
            throw new ArgumentException($"a migration secret is {SecretLength} bytes, got {secret.Length}", nameof(secret));
        }

        return new MtcpMigrationSecret(BinaryPrimitives.ReadUInt64BigEndian(secret), BinaryPrimitives.ReadUInt64BigEndian(secret[8..]));
    }

    /// <summary>Writes the 16 bytes in network order; returns <see cref="SecretLength"/>.</summary>
    public int WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
        return SecretLength;
    }

    /// <summary>Never the bytes: segments are logged, secrets must not be.</summary>
    public override string ToString() => "MigrationSecret(redacted)";

    internal int Write(Span<byte> destination)
    {
        var at = MtcpOption.WriteHeader(destination, MtcpOptionSubtype.MigrationSecret, BufferLength);
        return at + WriteTo(destination[at..]);
    }

    internal static MtcpMigrationSecret? Parse(ReadOnlySpan<byte> body) =>
        body.Length == SecretLength ? FromBytes(body) : null;
}

/// <summary>
/// The MTCP fields of <see cref="TcpOptions"/>. At most one option of each subtype is kept (the last,
/// as for the standard kinds).
/// </summary>
public readonly partial record struct TcpOptions
{
    /// <summary>True when any MTCP option is present.</summary>
    public bool HasMtcp =>
        AlternateServers is not null || MigratedConnection.HasValue || MigrateTrigger.HasValue
        || OrigConnectionInfo.HasValue || Beta.HasValue || MigrationSecret.HasValue || ClientState;

    /// <summary>
    /// These options with TCP_MIGRATE holding as many of <paramref name="preferred"/> as fit beside the
    /// other options in 40 bytes, kept in order of preference (see <see cref="MtcpAlternateServers.Fit"/>).
    /// </summary>
    public TcpOptions WithAlternateServers(IReadOnlyList<ServerEndpoint> preferred, out int dropped)
    {
        var others = (this with { AlternateServers = null }).BufferLength;
        return this with { AlternateServers = MtcpAlternateServers.Fit(preferred, TcpSegment.MaxOptionsLength - others, out dropped) };
    }

    /// <summary>
    /// The origin server's SYN+ACK: these options plus the migration secret, and TCP_MIGRATE holding the
    /// longest prefix of <paramref name="preferred"/> that fits in what the secret leaves of the 40 bytes. The
    /// secret is placed before the list is fitted, so it is never what gets dropped. Bytes left for the list
    /// (40 - others - 21; one IPv4 alternate needs 12, one IPv6 24):
    /// <code>
    ///  other options on the SYN+ACK            others  left  alternates kept
    ///  MSS, WS, SACK-permitted, timestamps       19      0   none
    ///  MSS, WS, timestamps                       17      2   none
    ///  MSS, timestamps                           14      5   none
    ///  MSS, WS, SACK-permitted                    9     10   none
    ///  MSS, WS                                    7     12   1 IPv4
    ///  MSS                                        4     15   1 IPv4
    ///  (none)                                     0     19   2 IPv4
    /// </code>
    /// Fallback for the <paramref name="dropped"/> servers: the origin sends TCP_MIGRATE again, fitted with
    /// <see cref="WithAlternateServers"/>, on its first segments after the handshake, which carry no SYN-only
    /// options (beside timestamps 30 bytes remain: 4 IPv4 or 1 IPv6; with no other option 5 IPv4). A later
    /// TCP_MIGRATE replaces the list the client holds, so that list starts again from the most preferred server.
    /// If the other options alone exceed 19 bytes (unknown options) the secret cannot fit and
    /// <see cref="TryWrite"/> fails with <see cref="WireError.OptionsTooLong"/> instead of dropping it.
    /// </summary>
    public TcpOptions WithMigrationSecret(MtcpMigrationSecret secret, IReadOnlyList<ServerEndpoint> preferred, out int dropped) =>
        (this with { MigrationSecret = secret }).WithAlternateServers(preferred, out dropped);

    private int MtcpBufferLength => _mtcp is null ? 0
        : (_mtcp.AlternateServers?.BufferLength ?? 0)
            + (_mtcp.MigratedConnection?.BufferLength ?? 0)
            + (_mtcp.MigrateTrigger?.BufferLength ?? 0)
            + (_mtcp.OrigConnectionInfo.HasValue ? MtcpOrigConnectionInfo.BufferLength : 0)
            + (_mtcp.Beta.HasValue ? MtcpOption.BetaLength : 0)
            + (_mtcp.MigrationSecret.HasValue ? MtcpMigrationSecret.BufferLength : 0)
            + (_mtcp.ClientState ? MtcpOption.ClientStateLength : 0);

    private bool TryWriteMtcpPrerequisites(out WireError error)
    {
        if (_mtcp is null)
        {
            error = WireError.None;
            return true;
        }

        var addressesPresent = (MigratedConnection is not { } migrated || migrated.OriginServer.Address.Length != 0)
            && (MigrateTrigger is not { } trigger || trigger.HasAddresses);
        error = addressesPresent ? WireError.None : WireError.MissingAddress;
        return addressesPresent;
    }

    private int WriteMtcp(Span<byte> destination)
    {
        if (_mtcp is null)
        {
            return 0;
        }

        var at = 0;
        if (AlternateServers is { } alternates)
        {
            at += alternates.Write(destination[at..]);
        }

        if (MigratedConnection is { } migrated)
        {
            at += migrated.Write(destination[at..]);
        }

        if (MigrateTrigger is { } trigger)
        {
            at += trigger.Write(destination[at..]);
        }

        if (OrigConnectionInfo is { } info)
        {
            at += info.Write(destination[at..]);
        }

        if (Beta is { } beta)
        {
            at += MtcpOption.WriteHeader(destination[at..], MtcpOptionSubtype.Beta, MtcpOption.BetaLength);
            BinaryPrimitives.WriteUInt32BigEndian(destination[at..], beta);
            at += 4;
        }

        if (MigrationSecret is { } secret)
        {
            at += secret.Write(destination[at..]);
        }

        if (ClientState)
        {
            at += MtcpOption.WriteHeader(destination[at..], MtcpOptionSubtype.ClientState, MtcpOption.ClientStateLength);
        }

        return at;
    }

    /// <summary>
    /// Decodes the data of an experimental option that carries our ExID into <paramref name="options"/>.
    /// <paramref name="recognized"/> is false for a subtype we do not know (the caller keeps it raw).
    /// </summary>
    private static bool TryParseMtcp(ReadOnlySpan<byte> data, ref MtcpOptionValues? options, out bool recognized, out WireError error)
    {
        error = WireError.None;
        recognized = true;
        if (data.Length < 3)
        {
            error = WireError.BadMtcpOption;
            return false;
        }

        var body = data[3..];
        switch ((MtcpOptionSubtype)data[2])
        {
            case MtcpOptionSubtype.AlternateServers when MtcpAlternateServers.Parse(body) is { } alternates:
                options = (options ?? MtcpOptionValues.None) with { AlternateServers = alternates };
                return true;
            case MtcpOptionSubtype.MigratedConnection when MtcpMigratedConnection.Parse(body) is { } migrated:
                options = (options ?? MtcpOptionValues.None) with { MigratedConnection = migrated };
                return true;
            case MtcpOptionSubtype.MigrateTrigger when MtcpMigrateTrigger.Parse(body) is { } trigger:
                options = (options ?? MtcpOptionValues.None) with { MigrateTrigger = trigger };
                return true;
            case MtcpOptionSubtype.OrigConnectionInfo when MtcpOrigConnectionInfo.Parse(body) is { } info:
                options = (options ?? MtcpOptionValues.None) with { OrigConnectionInfo = info };
                return true;
            case MtcpOptionSubtype.Beta when body.Length == 4:
                options = (options ?? MtcpOptionValues.None) with { Beta = BinaryPrimitives.ReadUInt32BigEndian(body) };
                return true;
            case MtcpOptionSubtype.MigrationSecret when MtcpMigrationSecret.Parse(body) is { } secret:
                options = (options ?? MtcpOptionValues.None) with { MigrationSecret = secret };
                return true;
            case MtcpOptionSubtype.ClientState when body.IsEmpty:
                options = (options ?? MtcpOptionValues.None) with { ClientState = true };
                return true;
            case MtcpOptionSubtype.AlternateServers or MtcpOptionSubtype.MigratedConnection or MtcpOptionSubtype.MigrateTrigger
                or MtcpOptionSubtype.OrigConnectionInfo or MtcpOptionSubtype.Beta or MtcpOptionSubtype.MigrationSecret
                or MtcpOptionSubtype.ClientState:
                error = WireError.BadMtcpOption;
                return false;
            default:
                recognized = false;
                return true;
        }
    }

    private bool MtcpEquals(TcpOptions other) =>
        ReferenceEquals(_mtcp, other._mtcp)
        || (Equals(AlternateServers, other.AlternateServers)
        && MigratedConnection == other.MigratedConnection
        && MigrateTrigger == other.MigrateTrigger
        && OrigConnectionInfo == other.OrigConnectionInfo
        && Beta == other.Beta
        && MigrationSecret == other.MigrationSecret
        && ClientState == other.ClientState);

    private int MtcpHashCode() => HashCode.Combine(AlternateServers, MigratedConnection, MigrateTrigger, OrigConnectionInfo, Beta, MigrationSecret, ClientState);
}

/// <summary>The MTCP options of one <see cref="TcpOptions"/>; see there why they are held by reference.</summary>
internal sealed record MtcpOptionValues(
    MtcpAlternateServers? AlternateServers,
    MtcpMigratedConnection? MigratedConnection,
    MtcpMigrateTrigger? MigrateTrigger,
    MtcpOrigConnectionInfo? OrigConnectionInfo,
    uint? Beta,
    MtcpMigrationSecret? MigrationSecret,
    bool ClientState = false)
{
    public static readonly MtcpOptionValues None = new(null, null, null, null, null, null);
}
