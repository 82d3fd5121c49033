using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;

namespace Mtcp.Actors.Diagnostics;

/// <summary>
/// The sources of refusals a stranger can produce at will, each summarised on its own: one forged packet costs the
/// sender nothing, so a line per refusal lets anyone who reaches a port fill a node's disk (DESIGN: floods cost
/// bounded log lines).
/// </summary>
internal enum RefusalClass
{
    /// <summary>A special SYN refused at the destination (forged, unknown origin, migration off, state not delivered).</summary>
    MigrationRefused,

    /// <summary>A state request an origin refused because the special SYN's authenticator did not verify.</summary>
    StateRequestRefused,

    /// <summary>A control message dropped: unsealed, not opening under the cluster key, from a local sender, out of place.</summary>
    ControlMessageDropped,

    /// <summary>A service announcement dropped (unsigned, not signed under the cluster key, a node announcing another).</summary>
    AnnouncementIgnored,

    /// <summary>A segment that did not decode (bad checksum, length, offset or option).</summary>
    MalformedSegment,

    /// <summary>A segment the local host did not send (a firewall rule, a full queue): a loss that TCP repairs.</summary>
    SendDropped,

    /// <summary>A SYN that found its listener's SYN or accept queue full: answered with a SYN cookie, or dropped.</summary>
    SynQueueOverflow,

    /// <summary>An ACK to a listening port, for no connection, that returned no valid SYN cookie: answered with a RST.</summary>
    SynCookieRefused,

    /// <summary>A client-stored state presented on a special SYN that did not open, or was older than one seen (docs/failover.md).</summary>
    ClientStateRefused,

    /// <summary>
    /// An ICMP packet-too-big naming a live connection that its engine did not believe: a quoted sequence number not
    /// in flight, or an MTU that would not lower the MSS (RFC 5927 §4.1, RFC 8201 §4).
    /// </summary>
    PacketTooBigRefused,

    /// <summary>
    /// A connection to the direct replication channel's port refused: TLS failed, too many handshakes at once, no first
    /// frame in time, a frame naming no member or a member at another address, or one that does not open.
    /// </summary>
    ReplicationChannelRefused,

    /// <summary>
    /// A TLS peer refused on the control port (Akka.Remote) or the replication channel's port: it presented no
    /// certificate, or one that does not chain to the cluster's CAs (docs/threat-model.md, "control network").
    /// </summary>
    TlsPeerRefused,

    /// <summary>
    /// A TLS handshake on the control port that failed, whatever the cause (a refused or missing certificate, garbage,
    /// a protocol the node does not speak), as Akka.Remote reports it.
    /// </summary>
    TlsHandshakeFailed,
}

/// <summary>
/// Decides which refusal lines are written: per <see cref="RefusalClass"/>, at most one line per interval. The first
/// refusal after a quiet interval is written at once with its detail; later ones within the interval are counted,
/// and <see cref="Flush"/> writes one summary (how many, the total, the last detail) once the interval has passed.
/// Time comes in as a parameter (elapsed time on any monotonic clock); not thread-safe (<see cref="RefusalLog"/> locks).
/// </summary>
internal sealed class RefusalSummary(TimeSpan interval)
{
    private readonly Entry[] _entries = [.. Enum.GetValues<RefusalClass>().Select(_ => new Entry())];

    public TimeSpan Interval => interval;

    /// <summary>Refusals of <paramref name="refusalClass"/> since the start.</summary>
    public long Total(RefusalClass refusalClass) => _entries[(int)refusalClass].Total;

    /// <summary>Counts <paramref name="count"/> refusals; returns the line to write now, or null when it waits for <see cref="Flush"/>.</summary>
    public string? Record(RefusalClass refusalClass, long count, string detail, TimeSpan now)
    {
        var entry = _entries[(int)refusalClass];
        entry.Total += count;
        entry.Pending += count;
        entry.LastDetail = detail;
        return entry.LastLine is { } last && now - last < interval ? null : Write(refusalClass, entry, now);
    }

    /// <summary>The summary lines due at <paramref name="now"/>: one per class with refusals not yet written whose last line is an interval old.</summary>
    public IReadOnlyList<string> Flush(TimeSpan now)
    {
        var lines = new List<string>();
        for (var i = 0; i < _entries.Length; i++)
        {
            var entry = _entries[i];
            if (entry.Pending > 0 && (entry.LastLine is not { } last || now - last >= interval))
            {
                lines.Add(Write((RefusalClass)i, entry, now));
            }
        }

        return lines;
    }

    /// <summary>The kebab-case name of a class, as in log lines and the metric's tag.</summary>
    public static string Name(RefusalClass refusalClass) => refusalClass switch
    {
        RefusalClass.MigrationRefused => "migration-refused",
        RefusalClass.StateRequestRefused => "state-request-refused",
        RefusalClass.ControlMessageDropped => "control-message-dropped",
        RefusalClass.AnnouncementIgnored => "announcement-ignored",
        RefusalClass.MalformedSegment => "malformed-segment",
        RefusalClass.SendDropped => "send-dropped",
        RefusalClass.SynQueueOverflow => "syn-queue-overflow",
        RefusalClass.SynCookieRefused => "syn-cookie-refused",
        RefusalClass.ClientStateRefused => "client-state-refused",
        RefusalClass.PacketTooBigRefused => "packet-too-big-refused",
        RefusalClass.ReplicationChannelRefused => "replication-channel-refused",
        RefusalClass.TlsPeerRefused => "tls-peer-refused",
        RefusalClass.TlsHandshakeFailed => "tls-handshake-failed",
        _ => throw new ArgumentOutOfRangeException(nameof(refusalClass), refusalClass, null),
    };

    private string Write(RefusalClass refusalClass, Entry entry, TimeSpan now)
    {
        var line = entry.Pending == 1 && entry.LastLine is null
            ? string.Create(CultureInfo.InvariantCulture, $"{Name(refusalClass)}: {entry.LastDetail} (more of this kind are summarised at most every {interval.TotalSeconds:0.###} s)")
            : string.Create(CultureInfo.InvariantCulture, $"{Name(refusalClass)}: {entry.Pending} since the last line, {entry.Total} since start; the last: {entry.LastDetail}");
        entry.Pending = 0;
        entry.LastLine = now;
        return line;
    }

    private sealed class Entry
    {
        public long Total { get; set; }

        public long Pending { get; set; }

        public TimeSpan? LastLine { get; set; }

        public string LastDetail { get; set; } = "";
    }
}

/// <summary>
/// The node's one summariser of refusals (an Akka.NET extension, so that every actor and the receive thread share
/// it): each refusal is counted on the meter <c>Mtcp.Runtime</c> (<c>mtcp.refused</c>, tag <c>class</c>) and logged
/// through <see cref="RefusalSummary"/> at WARNING, at most one line per class per
/// <c>mtcp.diagnostics.refusal-summary-interval</c>. Thread-safe.
/// </summary>
internal sealed class RefusalLog : IExtension
{
    public const string MeterName = "Mtcp.Runtime";
    public const string IntervalPath = "mtcp.diagnostics.refusal-summary-interval";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> Refused = Meter.CreateCounter<long>("mtcp.refused", "{input}", "Refused or dropped inputs a stranger can cause (tag class: migration-refused, malformed-segment, ...)");

    private readonly Lock _gate = new();
    private readonly RefusalSummary _summary;
    private readonly ILoggingAdapter _log;
    private readonly long _start = Stopwatch.GetTimestamp();

    public RefusalLog(ExtendedActorSystem system)
    {
        _summary = new RefusalSummary(HoconValues.Duration(system.Settings.Config, IntervalPath, allowZero: false));
        _log = Logging.GetLogger(system, "mtcp.refusals");
        system.Scheduler.Advanced.ScheduleRepeatedly(_summary.Interval, _summary.Interval, Flush);
    }

    public static RefusalLog Get(ActorSystem system) => system.WithExtension<RefusalLog, RefusalLogProvider>();

    /// <summary>The summary interval: at most one line per class per this long.</summary>
    public TimeSpan Interval => _summary.Interval;

    /// <summary>Refusals of <paramref name="refusalClass"/> on this node since it started.</summary>
    public long Total(RefusalClass refusalClass)
    {
        lock (_gate)
        {
            return _summary.Total(refusalClass);
        }
    }

    /// <summary>Counts <paramref name="count"/> refusals of <paramref name="refusalClass"/>; <paramref name="detail"/> says what the last one was.</summary>
    public void Refuse(RefusalClass refusalClass, string detail, long count = 1)
    {
        Refused.Add(count, new KeyValuePair<string, object?>("class", RefusalSummary.Name(refusalClass)));
        string? line;
        lock (_gate)
        {
            line = _summary.Record(refusalClass, count, detail, Stopwatch.GetElapsedTime(_start));
        }

        if (line is not null)
        {
            _log.Warning("{0}", line);
        }
    }

    private void Flush()
    {
        IReadOnlyList<string> lines;
        lock (_gate)
        {
            lines = _summary.Flush(Stopwatch.GetElapsedTime(_start));
        }

        foreach (var line in lines)
        {
            _log.Warning("{0}", line);
        }
    }

    private sealed class RefusalLogProvider : ExtensionIdProvider<RefusalLog>
    {
        public override RefusalLog CreateExtension(ExtendedActorSystem system) => new(system);
    }
}
