using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Wire;

namespace Mtcp.Actors.Configuration;

/// <summary>Which packet transport a runtime uses (<c>mtcp.runtime.transport</c>).</summary>
internal enum TransportKind
{
    /// <summary>Raw IP (IPv4 or IPv6, as the local address) protocol 253 when raw sockets are permitted, UDP encapsulation otherwise.</summary>
    Auto,

    /// <summary>Raw IPv4 or IPv6 (as the local address), IP protocol or next header 253 (RFC 3692 experimental).</summary>
    Raw,

    /// <summary>UDP encapsulation.</summary>
    Udp,

    /// <summary>An in-process fabric supplied by the caller.</summary>
    Memory,
}

/// <summary>When a listener answers a SYN with a SYN cookie (<c>mtcp.runtime.syn-cookies</c>, RFC 4987 §3.6).</summary>
internal enum SynCookieMode
{
    /// <summary>Never: a SYN beyond the SYN queue is dropped.</summary>
    Off,

    /// <summary>Once the SYN queue is full (Linux's <c>tcp_syncookies = 1</c>).</summary>
    On,

    /// <summary>For every SYN but a special one (Linux's <c>tcp_syncookies = 2</c>).</summary>
    Always,
}

/// <summary>
/// The <c>mtcp.runtime</c> section (packet actor and transport), read once and validated. Every value comes
/// from HOCON (see HOCON/mtcp-reference.conf for units and defaults); a missing or invalid key fails with a
/// <see cref="ConfigurationException"/> naming the key.
/// </summary>
internal sealed record RuntimeSettings
{
    public const string Section = "mtcp.runtime";

    private RuntimeSettings()
    {
    }

    public TransportKind Transport { get; private init; }

    /// <summary>The address this node sends from and accepts segments for.</summary>
    public IpAddress LocalAddress { get; private init; }

    public int RawReceiveBufferSize { get; private init; }

    public int RawSendBufferSize { get; private init; }

    public ushort UdpPort { get; private init; }

    public ushort UdpPeerPort { get; private init; }

    public int UdpSocketBufferSize { get; private init; }

    /// <summary>Longest single blocking receive of the receive thread; bounds how long stopping takes.</summary>
    public TimeSpan ReceivePollInterval { get; private init; }

    /// <summary>Most segments the receive thread reads in one burst before it hands them to their endpoints; 1: each alone.</summary>
    public int ReceiveBurst { get; private init; }

    /// <summary>A burst ends once its segments hold this many bytes, so that large segments are not held back behind each other.</summary>
    public int ReceiveBurstBytes { get; private init; }

    /// <summary>Most segments an endpoint hands the transport in one batch (one sendmmsg); 1: each alone.</summary>
    public int SendBatch { get; private init; }

    /// <summary>Most bytes of one batch (raised to one segment of the largest size): bounds each pooled batch's memory.</summary>
    public int SendBatchBytes { get; private init; }

    /// <summary>Inbound payload buffers the packet actor's pool keeps per size class.</summary>
    public int InboundPayloadBuffers { get; private init; }

    /// <summary>The SYN queue: handshakes a listener holds state for (each an endpoint) before it answers with cookies or drops.</summary>
    public int SynBacklog { get; private init; }

    /// <summary>The accept queue: established connections a listener holds before AcceptAsync takes them.</summary>
    public int AcceptBacklog { get; private init; }

    public SynCookieMode SynCookies { get; private init; }

    public ushort EphemeralPortFirst { get; private init; }

    public ushort EphemeralPortLast { get; private init; }

    /// <summary>How long the MTU of the route to an address is reused for the next connections to it.</summary>
    public TimeSpan RouteMtuCache { get; private init; }

    public static RuntimeSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string TransportPath = Section + ".transport";
        const string AddressPath = Section + ".local-address";
        var transport = HoconValues.Text(config, TransportPath).ToLowerInvariant() switch
        {
            "auto" => TransportKind.Auto,
            "raw" => TransportKind.Raw,
            "udp" => TransportKind.Udp,
            "memory" => TransportKind.Memory,
            _ => throw HoconValues.Invalid(config, TransportPath, "must be one of auto, raw, udp, memory"),
        };

        if (!System.Net.IPAddress.TryParse(HoconValues.Text(config, AddressPath), out var parsed))
        {
            throw HoconValues.Invalid(config, AddressPath, "must be an IPv4 or IPv6 address");
        }

        if (parsed.Equals(System.Net.IPAddress.Any) || parsed.Equals(System.Net.IPAddress.IPv6Any))
        {
            throw HoconValues.Invalid(config, AddressPath, "must be a specific address, not the wildcard (segments are filtered by destination)");
        }

        if (parsed.IsIPv6LinkLocal || parsed.IsIPv4MappedToIPv6)
        {
            // A link-local address needs a scope (an interface) that segments and endpoints do not carry; a mapped
            // address is IPv4 in IPv6 clothing, which the raw transports do not send.
            throw HoconValues.Invalid(config, AddressPath, "must be an IPv4 address or a global, unique local or loopback IPv6 address, not a link-local or IPv4-mapped one");
        }

        var address = IpAddress.FromIPAddress(parsed);

        const string CookiesPath = Section + ".syn-cookies";
        var cookies = HoconValues.Text(config, CookiesPath).ToLowerInvariant() switch
        {
            "on" or "true" or "yes" => SynCookieMode.On,
            "off" or "false" or "no" => SynCookieMode.Off,
            "always" => SynCookieMode.Always,
            _ => throw HoconValues.Invalid(config, CookiesPath, "must be one of on, off, always"),
        };

        var first = HoconValues.Integer(config, Section + ".ephemeral-port-first", 1, ushort.MaxValue);
        var last = HoconValues.Integer(config, Section + ".ephemeral-port-last", 1, ushort.MaxValue);
        if (first > last)
        {
            throw new ConfigurationException($"{Section}.ephemeral-port-first ({first}) must not exceed {Section}.ephemeral-port-last ({last})");
        }

        return new RuntimeSettings
        {
            Transport = transport,
            LocalAddress = address,
            RawReceiveBufferSize = HoconValues.Size(config, Section + ".raw.receive-buffer-size", 1, int.MaxValue),
            RawSendBufferSize = HoconValues.Size(config, Section + ".raw.send-buffer-size", 1, int.MaxValue),
            UdpPort = (ushort)HoconValues.Integer(config, Section + ".udp.port", 1, ushort.MaxValue),
            UdpPeerPort = (ushort)HoconValues.Integer(config, Section + ".udp.peer-port", 1, ushort.MaxValue),
            UdpSocketBufferSize = HoconValues.Size(config, Section + ".udp.socket-buffer-size", 1, int.MaxValue),
            ReceivePollInterval = HoconValues.Duration(config, Section + ".receive-poll-interval", allowZero: false),
            ReceiveBurst = HoconValues.Integer(config, Section + ".receive-burst", 1, 4096),
            ReceiveBurstBytes = HoconValues.Size(config, Section + ".receive-burst-bytes", 1, int.MaxValue),
            SendBatch = HoconValues.Integer(config, Section + ".send-batch", 1, 1024),
            SendBatchBytes = HoconValues.Size(config, Section + ".send-batch-bytes", 1, int.MaxValue),
            InboundPayloadBuffers = HoconValues.Integer(config, Section + ".inbound-payload-buffers", 1, 1 << 20),
            SynBacklog = HoconValues.Integer(config, Section + ".syn-backlog", 1, int.MaxValue),
            AcceptBacklog = HoconValues.Integer(config, Section + ".accept-backlog", 1, int.MaxValue),
            SynCookies = cookies,
            EphemeralPortFirst = (ushort)first,
            EphemeralPortLast = (ushort)last,
            RouteMtuCache = HoconValues.Duration(config, Section + ".route-mtu-cache", allowZero: true),
        };
    }
}
