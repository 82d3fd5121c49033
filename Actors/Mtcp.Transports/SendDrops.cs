using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Mtcp.Transports;

/// <summary>Why the local host dropped a segment on its way out instead of sending it.</summary>
public enum SendDropReason
{
    /// <summary>
    /// A local policy refused it: a netfilter rule that drops it on the output hook makes sendmsg fail with EPERM, from
    /// raw and UDP sockets alike (.NET reports both EPERM and EACCES as <c>SocketError.AccessDenied</c>); a security
    /// module, or a broadcast destination on a socket without SO_BROADCAST, gives EACCES.
    /// </summary>
    Filtered,

    /// <summary>A queue below the socket, or the allocator, had no room (ENOBUFS, ENOMEM).</summary>
    NoBufferSpace,

    /// <summary>The socket's send buffer was full (EAGAIN/EWOULDBLOCK).</summary>
    SendBufferFull,

    /// <summary>No route, or the route's interface or next hop is down (ENETUNREACH, EHOSTUNREACH, ENETDOWN, EHOSTDOWN).</summary>
    Unreachable,

    /// <summary>An ICMP port-unreachable for an earlier datagram was reported on this send (ECONNREFUSED).</summary>
    Refused,

    /// <summary>The path could not carry a packet of this size (EMSGSIZE).</summary>
    TooLarge,

    /// <summary>
    /// sendmmsg(2) sent the segments of a batch before it and stopped at it without its errno (the kernel returns the
    /// count sent and drops the error): one of the reasons above, which the transport cannot tell apart.
    /// </summary>
    StoppedBatch,
}

/// <summary>
/// Sorts the errno of a failed send into a lost packet or a broken socket. IP is best effort (RFC 791 §1.2): a packet
/// the local host drops is lost like one a router drops, and TCP's retransmission recovers it (RFC 9293 §3.8.1), as
/// Linux's own TCP does when netfilter or a full queue drops its segment. Only a socket that is closed or was given
/// something it can never send (EBADF, ENOTSOCK, EINVAL, EFAULT, EAFNOSUPPORT, ...) is a failure of the transport.
/// </summary>
internal static class SendErrors
{
    /// <summary>
    /// Whether a send that failed with <paramref name="errno"/> lost one packet (true, with the reason) or found the
    /// socket unusable (false: the caller throws).
    /// </summary>
    /// <remarks>
    /// EMSGSIZE is a loss: the transports refuse a segment beyond their own limit before the system call, so the
    /// kernel's EMSGSIZE speaks of the path (a route MTU with fragmentation forbidden, a path MTU learnt from ICMP),
    /// which changes with the route, as a router dropping an oversize packet does (RFC 1191 §3). The connection that
    /// sent it retransmits and, if the path never carries it, gives up after its retransmission limit; the other
    /// connections on the socket are not touched, as they would be if the transport stopped.
    /// </remarks>
    public static bool IsLoss(int errno, out SendDropReason reason)
    {
        switch (errno)
        {
            case Libc.Eperm or Libc.Eacces:
                reason = SendDropReason.Filtered;
                return true;
            case Libc.Enobufs or Libc.Enomem:
                reason = SendDropReason.NoBufferSpace;
                return true;
            case Libc.Eagain:
                reason = SendDropReason.SendBufferFull;
                return true;
            case Libc.Enetunreach or Libc.Ehostunreach or Libc.Enetdown or Libc.Ehostdown:
                reason = SendDropReason.Unreachable;
                return true;
            case Libc.Econnrefused:
                reason = SendDropReason.Refused;
                return true;
            case Libc.Emsgsize:
                reason = SendDropReason.TooLarge;
                return true;
            default:
                reason = default;
                return false;
        }
    }

    /// <summary>
    /// The symbolic name of a send errno, as errno(3) spells it (the number for one not listed here); <c>unknown</c> for
    /// 0, a drop whose errno the kernel did not give (<see cref="SendDropReason.StoppedBatch"/>).
    /// </summary>
    public static string Name(int errno) => errno switch
    {
        0 => "unknown",
        Libc.Eperm => "EPERM",
        Libc.Ebadf => "EBADF",
        Libc.Eagain => "EAGAIN",
        Libc.Enomem => "ENOMEM",
        Libc.Eacces => "EACCES",
        Libc.Efault => "EFAULT",
        Libc.Einval => "EINVAL",
        Libc.Enotsock => "ENOTSOCK",
        Libc.Edestaddrreq => "EDESTADDRREQ",
        Libc.Emsgsize => "EMSGSIZE",
        Libc.Eopnotsupp => "EOPNOTSUPP",
        Libc.Eafnosupport => "EAFNOSUPPORT",
        Libc.Eaddrnotavail => "EADDRNOTAVAIL",
        Libc.Enetdown => "ENETDOWN",
        Libc.Enetunreach => "ENETUNREACH",
        Libc.Enobufs => "ENOBUFS",
        Libc.Econnrefused => "ECONNREFUSED",
        Libc.Ehostdown => "EHOSTDOWN",
        Libc.Ehostunreach => "EHOSTUNREACH",
        _ => errno.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// The segments one transport dropped on the way out, by reason, with the errno that said so last. Written by the
/// sending threads, read by whoever reports them (the packet actor logs them at most once per interval). Each drop
/// is also counted on the meter <see cref="TransportMetrics.MeterName"/>.
/// </summary>
public sealed class SendDropCounters
{
    private static readonly int ReasonCount = Enum.GetValues<SendDropReason>().Length;
    private static readonly string[] ReasonTags = [.. Enum.GetValues<SendDropReason>().Select(TagOf)];

    private readonly long[] _byReason = new long[ReasonCount];
    private readonly int[] _lastErrno = new int[ReasonCount];
    private readonly string _transportKind;

    /// <param name="transportKind">the value of the metric's <c>transport</c> tag, such as <c>raw</c> or <c>udp</c>.</param>
    public SendDropCounters(string transportKind) => _transportKind = transportKind;

    /// <summary>Counters of a transport that never drops on the way out (such as the in-memory fabric's).</summary>
    public static SendDropCounters None { get; } = new("none");

    /// <summary>Every segment dropped so far.</summary>
    public long Total
    {
        get
        {
            long total = 0;
            for (var i = 0; i < _byReason.Length; i++)
            {
                total += Interlocked.Read(ref _byReason[i]);
            }

            return total;
        }
    }

    /// <summary>Segments dropped so far for <paramref name="reason"/>.</summary>
    public long this[SendDropReason reason] => Interlocked.Read(ref _byReason[(int)reason]);

    /// <summary>The errno of the latest drop for <paramref name="reason"/> (0 before the first).</summary>
    public int LastErrno(SendDropReason reason) => Volatile.Read(ref _lastErrno[(int)reason]);

    internal void Record(SendDropReason reason, int errno)
    {
        Interlocked.Increment(ref _byReason[(int)reason]);
        Volatile.Write(ref _lastErrno[(int)reason], errno);
        TransportMetrics.SendDropped.Add(
            1,
            new KeyValuePair<string, object?>("transport", _transportKind),
            new KeyValuePair<string, object?>("reason", ReasonTags[(int)reason]),
            new KeyValuePair<string, object?>("errno", SendErrors.Name(errno)));
    }

    /// <summary>The counts so far, such as <c>filtered 12 (EPERM), no_buffer_space 3 (ENOBUFS)</c>; empty when none.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        for (var i = 0; i < _byReason.Length; i++)
        {
            var count = Interlocked.Read(ref _byReason[i]);
            if (count > 0)
            {
                text.Append(text.Length > 0 ? ", " : string.Empty)
                    .Append(CultureInfo.InvariantCulture, $"{ReasonTags[i]} {count} ({SendErrors.Name(Volatile.Read(ref _lastErrno[i]))})");
            }
        }

        return text.ToString();
    }

    private static string TagOf(SendDropReason reason) => reason switch
    {
        SendDropReason.Filtered => "filtered",
        SendDropReason.NoBufferSpace => "no_buffer_space",
        SendDropReason.SendBufferFull => "send_buffer_full",
        SendDropReason.Unreachable => "unreachable",
        SendDropReason.Refused => "refused",
        SendDropReason.TooLarge => "too_large",
        SendDropReason.StoppedBatch => "stopped_batch",
        _ => reason.ToString(),
    };
}

/// <summary>
/// The transports' instruments, on the meter <c>Mtcp.Transport</c> (collect them with dotnet-counters, OpenTelemetry or
/// a <see cref="MeterListener"/>): segments dropped on the way out, tagged with the transport (<c>raw</c>, <c>udp</c>),
/// the reason (<c>filtered</c>, <c>no_buffer_space</c>, ...) and the errno (<c>EPERM</c>, ...).
/// </summary>
public static class TransportMetrics
{
    public const string MeterName = "Mtcp.Transport";

    private static readonly Meter Meter = new(MeterName);

    internal static readonly Counter<long> SendDropped = Meter.CreateCounter<long>(
        "mtcp.transport.send_dropped", "{segment}", "Segments the local host dropped on the way out (firewall, full queue, no route); each is a loss TCP retransmits");
}
