using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Replication;

namespace Mtcp.Actors.Configuration;

/// <summary><c>mtcp.migration.replication</c>: whether a server node keeps its connections' state on a buddy node.</summary>
internal static class ReplicationSettings
{
    public const string Path = "mtcp.migration.replication";

    /// <summary>
    /// Room a replica message's sealed envelope needs beside its bytes (frame header, Cid, fields, both nodes'
    /// identities of at most 255 bytes each, MAC), so that each fits <c>mtcp.control.reply-chunk-size</c> unchunked.
    /// </summary>
    public const int EnvelopeOverhead = 1024;

    private static readonly Dictionary<string, ReplicationMode> Modes = new(StringComparer.Ordinal)
    {
        ["off"] = ReplicationMode.Off,
        ["buddy"] = ReplicationMode.Buddy,
        ["client"] = ReplicationMode.Client,
    };

    public const string ClientStateMaxSizePath = "mtcp.migration.client-state.max-size";

    /// <summary>
    /// The largest sealed client-stored state: it travels in one segment each way, so at most the largest payload a
    /// segment carries (65,495 bytes less the largest header).
    /// </summary>
    public const int ClientStateMaxSizeLimit = 65_495 - 60;

    /// <exception cref="ConfigurationException">the value is not one of the modes.</exception>
    public static ReplicationMode Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return HoconValues.Choice(config, Path, Modes);
    }

    /// <exception cref="ConfigurationException">the size is outside what one segment carries.</exception>
    public static int ClientStateMaxSize(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return HoconValues.Size(config, ClientStateMaxSizePath, Mtcp.Wire.ClientStateBlob.Overhead + 1, ClientStateMaxSizeLimit);
    }

    /// <summary>Most state or read-log bytes in one replica message, for control messages cut at <paramref name="replyChunkSize"/>.</summary>
    public static int MaxPiece(int replyChunkSize) => Math.Max(1, replyChunkSize - EnvelopeOverhead);
}
