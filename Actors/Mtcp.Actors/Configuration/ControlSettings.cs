using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;

namespace Mtcp.Actors.Configuration;

/// <summary>
/// The <c>mtcp.control</c> section of the configuration (control connection, thesis 4.2.3), read once and
/// validated. Every value comes from HOCON (see HOCON/mtcp-reference.conf for units and defaults); a
/// missing or invalid key fails with a <see cref="ConfigurationException"/> that names the key.
/// </summary>
internal sealed record ControlSettings
{
    public const string StateRequestTimeoutPath = "mtcp.control.state-request-timeout";
    public const string SilentOriginTakeoverPath = "mtcp.control.silent-origin-takeover";
    public const string ReplyChunkSizePath = "mtcp.control.reply-chunk-size";
    public const string RemoteEnvelopeReservePath = "mtcp.control.remote-envelope-reserve";
    public const string MaxStateReplySizePath = "mtcp.control.max-state-reply-size";
    public const string MaxReassemblyBytesPath = "mtcp.control.max-reassembly-bytes";

    /// <summary>Akka.Remote's frame limit, which every chunk (payload plus envelope) must fit.</summary>
    public const string MaximumFrameSizePath = "akka.remote.dot-netty.tcp.maximum-frame-size";

    private ControlSettings(
        TimeSpan stateRequestTimeout,
        TimeSpan silentOriginTakeover,
        int replyChunkSize,
        int remoteEnvelopeReserve,
        int maxStateReplySize,
        long maxReassemblyBytes,
        long maximumFrameSize)
    {
        StateRequestTimeout = stateRequestTimeout;
        SilentOriginTakeover = silentOriginTakeover;
        ReplyChunkSize = replyChunkSize;
        RemoteEnvelopeReserve = remoteEnvelopeReserve;
        MaxStateReplySize = maxStateReplySize;
        MaxReassemblyBytes = maxReassemblyBytes;
        MaximumFrameSize = maximumFrameSize;
    }

    /// <summary>How long a state request may go unanswered before the migration fails.</summary>
    public TimeSpan StateRequestTimeout { get; }

    /// <summary>
    /// How long a live origin may leave a state request unanswered before this node, its connection's buddy, answers
    /// from the replica and fences it; <see cref="TimeSpan.MaxValue"/> for <c>off</c>, and at or above
    /// <see cref="StateRequestTimeout"/>, never.
    /// </summary>
    public TimeSpan SilentOriginTakeover { get; }

    /// <summary>Whether a silent origin's connection is ever taken over before the request times out.</summary>
    public bool TakesOverSilentOrigins => SilentOriginTakeover < StateRequestTimeout;

    /// <summary>Largest chunk payload; an encoded state reply longer than this is sent in chunks.</summary>
    public int ReplyChunkSize { get; }

    /// <summary>Bytes of each remote frame set aside for the envelope and the chunk header.</summary>
    public int RemoteEnvelopeReserve { get; }

    /// <summary>Largest encoded state reply accepted from a peer.</summary>
    public int MaxStateReplySize { get; }

    /// <summary>Bound on the bytes held for partially received replies on one control connection.</summary>
    public long MaxReassemblyBytes { get; }

    /// <summary>Akka.Remote's <c>maximum-frame-size</c>, read for the cross-check with the chunk size.</summary>
    public long MaximumFrameSize { get; }

    public static ControlSettings Create(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        return Create(system.Settings.Config);
    }

    /// <summary>Reads and validates the settings; throws <see cref="ConfigurationException"/> naming the first bad key.</summary>
    public static ControlSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);

        var timeout = HoconValues.Duration(config, StateRequestTimeoutPath, allowZero: false);
        var silentOrigin = config.GetString(SilentOriginTakeoverPath)?.Trim() == "off"
            ? TimeSpan.MaxValue
            : HoconValues.Duration(config, SilentOriginTakeoverPath, allowZero: false);
        var chunkSize = HoconValues.Size(config, ReplyChunkSizePath, 1, int.MaxValue);
        var envelopeReserve = HoconValues.Size(config, RemoteEnvelopeReservePath, 1, int.MaxValue);
        var maxReply = HoconValues.Size(config, MaxStateReplySizePath, 1, int.MaxValue);
        var maxReassembly = HoconValues.LongSize(config, MaxReassemblyBytesPath, 1, long.MaxValue);
        var frameSize = HoconValues.LongSize(config, MaximumFrameSizePath, 1, long.MaxValue);

        if ((long)chunkSize + envelopeReserve > frameSize)
        {
            throw new ConfigurationException(
                $"{ReplyChunkSizePath} ({chunkSize} bytes) plus {RemoteEnvelopeReservePath} ({envelopeReserve} bytes) must not exceed "
                + $"{MaximumFrameSizePath} ({frameSize} bytes): every chunk would be dropped by Akka.Remote as oversized");
        }

        if (maxReply < chunkSize)
        {
            throw new ConfigurationException(
                $"{MaxStateReplySizePath} ({maxReply} bytes) must be at least {ReplyChunkSizePath} ({chunkSize} bytes)");
        }

        if (maxReassembly < maxReply)
        {
            throw new ConfigurationException(
                $"{MaxReassemblyBytesPath} ({maxReassembly} bytes) must be at least {MaxStateReplySizePath} ({maxReply} bytes), "
                + "or no reply of the largest accepted size could ever be reassembled");
        }

        return new ControlSettings(timeout, silentOrigin, chunkSize, envelopeReserve, maxReply, maxReassembly, frameSize);
    }
}
