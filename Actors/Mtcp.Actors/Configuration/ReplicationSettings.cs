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
    };

    /// <exception cref="ConfigurationException">the value is not one of the modes.</exception>
    public static ReplicationMode Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return HoconValues.Choice(config, Path, Modes);
    }

    /// <summary>Most state or read-log bytes in one replica message, for control messages cut at <paramref name="replyChunkSize"/>.</summary>
    public static int MaxPiece(int replyChunkSize) => Math.Max(1, replyChunkSize - EnvelopeOverhead);
}
