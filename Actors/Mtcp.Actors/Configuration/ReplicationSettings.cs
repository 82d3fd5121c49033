using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Replication;
using Mtcp.Stack.Migration;

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

    public const string StateSchedulePath = "mtcp.migration.buddy-state";

    public const string ReadLogsInFlightPath = "mtcp.migration.buddy-read-logs-in-flight";

    public const string AckTimeoutPath = "mtcp.migration.buddy-ack-timeout";

    /// <summary>Most state or read-log bytes in one replica message, for control messages cut at <paramref name="replyChunkSize"/>.</summary>
    public static int MaxPiece(int replyChunkSize) => Math.Max(1, replyChunkSize - EnvelopeOverhead);

    /// <summary>Buddy replication on the node of <paramref name="system"/>, known in its cluster as <paramref name="self"/>, as configured.</summary>
    /// <exception cref="ConfigurationException">a key of <c>mtcp.control</c>, <c>mtcp.migration.buddy-read-logs-in-flight</c>, <c>mtcp.migration.buddy-ack-timeout</c> or <c>mtcp.migration.buddy-state</c> is invalid.</exception>
    public static ReplicationSupport Support(Akka.Actor.ActorSystem system, Akka.Actor.Address self)
    {
        ArgumentNullException.ThrowIfNull(system);
        var control = ControlSettings.Create(system);
        var config = MtcpConfig.WithFallback(system.Settings.Config);
        return new ReplicationSupport(self, MaxPiece(control.ReplyChunkSize), ReadLogsInFlight(config), StateSchedule(config, control.MaxStateReplySize), AckTimeout(config));
    }

    /// <summary><c>mtcp.migration.buddy-read-logs-in-flight</c>: most read logs of one connection unacknowledged by its buddy at once.</summary>
    /// <exception cref="ConfigurationException">the key is missing or out of range.</exception>
    public static int ReadLogsInFlight(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return HoconValues.Integer(config, ReadLogsInFlightPath, 1, 1_000);
    }

    /// <summary><c>mtcp.migration.buddy-ack-timeout</c>: how long a replica update waits for the buddy's ack before the whole state goes again.</summary>
    /// <exception cref="ConfigurationException">the key is missing or not a positive duration.</exception>
    public static TimeSpan AckTimeout(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return HoconValues.Duration(config, AckTimeoutPath, allowZero: false);
    }

    /// <summary>
    /// <c>mtcp.migration.buddy-state</c>: when a new snapshot goes to the buddy as a whole state. Its max-progress may be
    /// at most half of <paramref name="maxStateReplySize"/>: the buddy's read log grows that far, and the state it
    /// composes from it at a takeover must still fit one state reply.
    /// </summary>
    /// <exception cref="ConfigurationException">a key is missing or out of range.</exception>
    public static ReplicaStateSchedule StateSchedule(Config config, int maxStateReplySize)
    {
        ArgumentNullException.ThrowIfNull(config);
        var maxProgress = HoconValues.LongSize(config, StateSchedulePath + ".max-progress", 0, maxStateReplySize / 2);
        var minProgress = HoconValues.LongSize(config, StateSchedulePath + ".min-progress", 0, maxProgress);
        var ratio = HoconValues.Integer(config, StateSchedulePath + ".progress-per-state-byte", 0, 1_000);
        return new ReplicaStateSchedule(minProgress, ratio, maxProgress);
    }
}
