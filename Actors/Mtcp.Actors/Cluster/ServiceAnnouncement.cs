using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using Akka.Actor;
using Mtcp.Wire;

namespace Mtcp.Actors.Cluster;

/// <summary>Why a <see cref="ServiceAnnouncement"/> could not be decoded.</summary>
internal enum ServiceAnnouncementError : byte
{
    None = 0,
    Truncated,
    UnsupportedVersion,
    UnknownFlags,
    BadAddressFamily,
    BadPort,
    BadControlAddress,
    TrailingBytes,
}

/// <summary>
/// What one server node tells the others through the service directory: where clients reach its MTCP
/// service (TCP_ADDSERVERS, thesis 4.2.3) and the address of its end of the control connections
/// (TCP_CONTROL_MAPPINGS), and the port of its direct replication channel when it listens on one (beside the control
/// endpoint, on its host; docs/failover.md). <see cref="ReplyRequested"/> asks the receiver to answer with its own
/// announcement, so that two directories that started at different times still learn of each other.
/// </summary>
internal sealed record ServiceAnnouncement
{
    public const string SerializerManifest = "SDA";

    public const byte CurrentVersion = 1;

    /// <summary>Entries fit a 16-bit count; far more than any cluster of cooperating servers has.</summary>
    public const int MaxServiceEndpoints = ushort.MaxValue;

    /// <summary>
    /// <code>
    /// +---------------+---------------+-------------------------------+
    /// |    Version    |     Flags     |        EndpointCount          |
    /// +---------------+---------------+-------------------------------+
    /// | per endpoint: Family (4 or 6) | Address (4 or 16) | Port (16) |
    /// +-------------------------------+-------------------------------+
    /// |   ControlAddressLength (16)   | ControlAddress (UTF-8) ...    |
    /// +-------------------------------+-------------------------------+
    /// | ReplicationChannelPort (16), only with flag bit 1             |
    /// +-------------------------------+-------------------------------+
    /// </code>
    /// Flags: bit 0 is <see cref="ReplyRequested"/>, bit 1 says a replication channel port follows (never zero); the
    /// others are zero. Integers are big-endian.
    /// </summary>
    private const int HeaderLength = 4;
    private const byte ReplyRequestedFlag = 0x01;
    private const byte ReplicationChannelFlag = 0x02;

    private readonly ServerEndpoint[] _serviceEndpoints;

    /// <param name="replicationChannelPort">the port of this node's direct replication channel on its control host; 0: none.</param>
    public ServiceAnnouncement(IEnumerable<ServerEndpoint> serviceEndpoints, Address controlAddress, bool replyRequested, ushort replicationChannelPort = 0)
    {
        ArgumentNullException.ThrowIfNull(serviceEndpoints);
        ArgumentNullException.ThrowIfNull(controlAddress);
        _serviceEndpoints = serviceEndpoints.ToArray();
        if (_serviceEndpoints.Length > MaxServiceEndpoints || _serviceEndpoints.Any(e => e.Address.Length == 0))
        {
            throw new ArgumentException("service endpoints must have addresses and number at most 65535", nameof(serviceEndpoints));
        }

        if (!controlAddress.HasGlobalScope)
        {
            throw new ArgumentException($"control address {controlAddress} is not reachable from other nodes", nameof(controlAddress));
        }

        ControlAddress = controlAddress;
        ReplyRequested = replyRequested;
        ReplicationChannelPort = replicationChannelPort;
    }

    /// <summary>Where clients reach the announcing node's MTCP service.</summary>
    public IReadOnlyList<ServerEndpoint> ServiceEndpoints => _serviceEndpoints;

    /// <summary>The announcing node's Akka address: its end of every control connection.</summary>
    public Address ControlAddress { get; }

    /// <summary>The receiver should answer with its own announcement.</summary>
    public bool ReplyRequested { get; }

    /// <summary>Where the announcing node takes replica updates directly, on its control address's host; 0 when it does not.</summary>
    public ushort ReplicationChannelPort { get; }

    public bool Equals(ServiceAnnouncement? other) =>
        other is not null
        && ControlAddress.Equals(other.ControlAddress)
        && ReplyRequested == other.ReplyRequested
        && ReplicationChannelPort == other.ReplicationChannelPort
        && _serviceEndpoints.AsSpan().SequenceEqual(other._serviceEndpoints);

    public override int GetHashCode() => HashCode.Combine(ControlAddress, ReplyRequested, _serviceEndpoints.Length);

    /// <summary>The same announcement with <see cref="ReplyRequested"/> set as given.</summary>
    public ServiceAnnouncement WithReplyRequested(bool replyRequested) =>
        replyRequested == ReplyRequested ? this : new ServiceAnnouncement(_serviceEndpoints, ControlAddress, replyRequested, ReplicationChannelPort);

    /// <summary>True when both announce the same endpoints, control address and replication channel, whatever their reply flags.</summary>
    public bool SameContent(ServiceAnnouncement other) =>
        other is not null && ControlAddress.Equals(other.ControlAddress) && ReplicationChannelPort == other.ReplicationChannelPort && _serviceEndpoints.AsSpan().SequenceEqual(other._serviceEndpoints);

    public byte[] ToArray()
    {
        var control = Encoding.UTF8.GetBytes(ControlAddress.ToString());
        var length = HeaderLength + _serviceEndpoints.Sum(e => 1 + e.Address.Length + 2) + 2 + control.Length + (ReplicationChannelPort != 0 ? 2 : 0);
        var bytes = new byte[length];
        var span = bytes.AsSpan();
        span[0] = CurrentVersion;
        span[1] = (byte)((ReplyRequested ? ReplyRequestedFlag : 0) | (ReplicationChannelPort != 0 ? ReplicationChannelFlag : 0));
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], (ushort)_serviceEndpoints.Length);
        var at = HeaderLength;
        foreach (var endpoint in _serviceEndpoints)
        {
            span[at++] = endpoint.Address.IsIPv4 ? (byte)4 : (byte)6;
            at += endpoint.Address.WriteTo(span[at..]);
            BinaryPrimitives.WriteUInt16BigEndian(span[at..], endpoint.Port);
            at += 2;
        }

        BinaryPrimitives.WriteUInt16BigEndian(span[at..], checked((ushort)control.Length));
        control.CopyTo(span[(at + 2)..]);
        if (ReplicationChannelPort != 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(span[(at + 2 + control.Length)..], ReplicationChannelPort);
        }

        return bytes;
    }

    public static bool TryDecode(ReadOnlySpan<byte> encoded, [NotNullWhen(true)] out ServiceAnnouncement? announcement, out ServiceAnnouncementError error)
    {
        announcement = null;
        if (encoded.Length < HeaderLength)
        {
            error = ServiceAnnouncementError.Truncated;
            return false;
        }

        if (encoded[0] != CurrentVersion)
        {
            error = ServiceAnnouncementError.UnsupportedVersion;
            return false;
        }

        var flags = encoded[1];
        if ((flags & ~(ReplyRequestedFlag | ReplicationChannelFlag)) != 0)
        {
            error = ServiceAnnouncementError.UnknownFlags;
            return false;
        }

        int count = BinaryPrimitives.ReadUInt16BigEndian(encoded[2..]);
        var rest = encoded[HeaderLength..];

        // Before allocating for count entries: each takes at least 7 bytes (IPv4), so a short message cannot make
        // this node allocate for 65,535 of them.
        if (count * (1 + IpAddress.V4Length + 2) > rest.Length)
        {
            error = ServiceAnnouncementError.Truncated;
            return false;
        }

        var endpoints = new ServerEndpoint[count];
        for (var index = 0; index < count; index++)
        {
            if (rest.IsEmpty)
            {
                error = ServiceAnnouncementError.Truncated;
                return false;
            }

            var addressLength = rest[0] switch
            {
                4 => IpAddress.V4Length,
                6 => IpAddress.V6Length,
                _ => 0,
            };
            if (addressLength == 0)
            {
                error = ServiceAnnouncementError.BadAddressFamily;
                return false;
            }

            if (rest.Length < 1 + addressLength + 2)
            {
                error = ServiceAnnouncementError.Truncated;
                return false;
            }

            var addressBytes = rest.Slice(1, addressLength);
            var address = addressLength == IpAddress.V4Length ? IpAddress.FromIPv4(addressBytes) : IpAddress.FromIPv6(addressBytes);
            var port = BinaryPrimitives.ReadUInt16BigEndian(rest[(1 + addressLength)..]);
            if (port == 0)
            {
                error = ServiceAnnouncementError.BadPort;
                return false;
            }

            endpoints[index] = new ServerEndpoint(address, port);
            rest = rest[(1 + addressLength + 2)..];
        }

        if (rest.Length < 2)
        {
            error = ServiceAnnouncementError.Truncated;
            return false;
        }

        int controlLength = BinaryPrimitives.ReadUInt16BigEndian(rest);
        if (rest.Length < 2 + controlLength)
        {
            error = ServiceAnnouncementError.Truncated;
            return false;
        }

        var channelLength = (flags & ReplicationChannelFlag) != 0 ? 2 : 0;
        if (rest.Length < 2 + controlLength + channelLength)
        {
            error = ServiceAnnouncementError.Truncated;
            return false;
        }

        if (rest.Length > 2 + controlLength + channelLength)
        {
            error = ServiceAnnouncementError.TrailingBytes;
            return false;
        }

        if (!TryParseAddress(rest.Slice(2, controlLength), out var controlAddress))
        {
            error = ServiceAnnouncementError.BadControlAddress;
            return false;
        }

        ushort channelPort = 0;
        if (channelLength != 0)
        {
            channelPort = BinaryPrimitives.ReadUInt16BigEndian(rest[(2 + controlLength)..]);
            if (channelPort == 0)
            {
                error = ServiceAnnouncementError.BadPort;
                return false;
            }
        }

        announcement = new ServiceAnnouncement(endpoints, controlAddress, (flags & ReplyRequestedFlag) != 0, channelPort);
        error = ServiceAnnouncementError.None;
        return true;
    }

    /// <summary>
    /// The control address in exactly the form <see cref="ToArray"/> writes (<c>protocol://system@host:port</c>, as
    /// <see cref="Address.ToString"/> prints it), parsed without Uri: a peer's garbage must cost neither an exception
    /// nor a general URI parse per message, and a text that would print differently (a path, a leading zero) is refused
    /// so that the announcement survives being passed on unchanged.
    /// </summary>
    private static bool TryParseAddress(ReadOnlySpan<byte> utf8, [NotNullWhen(true)] out Address? address)
    {
        address = null;
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
        {
            return false;
        }

        var text = Encoding.UTF8.GetString(utf8);
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        var at = scheme < 0 ? -1 : text.IndexOf('@', scheme + 3);
        var colon = text.LastIndexOf(':');
        if (scheme <= 0 || at <= scheme + 3 || colon <= at + 1
            || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            || port is < 1 or > ushort.MaxValue)
        {
            return false;
        }

        var protocol = text[..scheme];
        var system = text[(scheme + 3)..at];
        var host = text[(at + 1)..colon];
        if (!protocol.All(c => char.IsAsciiLetterLower(c) || c == '.')
            || !system.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            || !host.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or ':' or '[' or ']'))
        {
            return false;
        }

        var parsed = new Address(protocol, system, host, port);
        if (parsed.HasGlobalScope && parsed.ToString() == text)
        {
            address = parsed;
        }

        return address is not null;
    }
}
