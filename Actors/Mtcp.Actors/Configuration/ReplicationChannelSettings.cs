using Akka.Configuration;
using Mtcp.Actors.Api;

namespace Mtcp.Actors.Configuration;

/// <summary>Which path buddy replication's updates and acks take (<c>mtcp.migration.buddy-channel.transport</c>).</summary>
internal enum ReplicationTransport
{
    /// <summary>The control connection (Akka.Remote), with every other control message.</summary>
    Control,

    /// <summary>The direct replication channel: a TLS connection of their own per pair of nodes (docs/failover.md).</summary>
    Direct,
}

/// <summary>
/// <c>mtcp.migration.buddy-channel</c>: the direct replication channel (docs/failover.md, HOCON/mtcp-reference.conf).
/// <see cref="MaxFrameLength"/> is the control frame limit (<c>akka.remote.dot-netty.tcp.maximum-frame-size</c>): a
/// channel frame carries what one control message would.
/// </summary>
internal sealed record ReplicationChannelSettings(
    ReplicationTransport Transport,
    ushort Port,
    int ListenBacklog,
    int MaxHandshakes,
    TimeSpan HandshakeTimeout,
    TimeSpan RetryInterval,
    long MaxQueuedBytes,
    int MaxFrameLength)
{
    public const string Path = "mtcp.migration.buddy-channel";

    private static readonly Dictionary<string, ReplicationTransport> Transports = new(StringComparer.Ordinal)
    {
        ["control"] = ReplicationTransport.Control,
        ["direct"] = ReplicationTransport.Direct,
    };

    /// <exception cref="ConfigurationException">a key is missing or out of range.</exception>
    public static ReplicationChannelSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var control = ControlSettings.Create(config);
        var maxFrame = (int)Math.Min(control.MaximumFrameSize, int.MaxValue - 16);
        return new ReplicationChannelSettings(
            HoconValues.Choice(config, Path + ".transport", Transports),
            (ushort)HoconValues.Integer(config, Path + ".port", 0, ushort.MaxValue),
            HoconValues.Integer(config, Path + ".listen-backlog", 1, 1024),
            HoconValues.Integer(config, Path + ".max-handshakes", 1, 1024),
            HoconValues.Duration(config, Path + ".handshake-timeout", allowZero: false),
            HoconValues.Duration(config, Path + ".retry-interval", allowZero: false),
            HoconValues.LongSize(config, Path + ".max-queued-bytes", control.ReplyChunkSize, long.MaxValue),
            maxFrame);
    }
}
