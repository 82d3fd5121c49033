using System.Diagnostics.Metrics;
using Mtcp.Actors.Diagnostics;
using Mtcp.Stack;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// A listener's two queues, apart as Linux keeps them (<c>tcp_max_syn_backlog</c> and the listen backlog): the SYN
/// queue, handshakes under way (each an endpoint), and the accept queue, connections established and waiting for
/// AcceptAsync. The receive thread takes a place in the SYN queue before it routes a SYN to the listener, and
/// answers with a SYN cookie (or drops the SYN) when there is none; the listener gives the place back when the
/// handshake ends, and publishes the accept queue's length. Thread-safe.
/// </summary>
internal sealed class ListenerQueues(int synBacklog, int acceptBacklog)
{
    private int _handshaking;
    private int _established;
    private long _lastCookieMicroseconds = long.MinValue;

    /// <summary><c>mtcp.runtime.syn-backlog</c>.</summary>
    public int SynBacklog => synBacklog;

    /// <summary><c>mtcp.runtime.accept-backlog</c>.</summary>
    public int AcceptBacklog => acceptBacklog;

    /// <summary>Places taken in the SYN queue.</summary>
    public int Handshaking => Volatile.Read(ref _handshaking);

    /// <summary>True while the accept queue is full: new SYNs, and ACKs returning a cookie, are dropped.</summary>
    public bool AcceptQueueFull => Volatile.Read(ref _established) >= acceptBacklog;

    /// <summary>Takes a place in the SYN queue; false when it is full.</summary>
    public bool TryReserveHandshake()
    {
        if (Interlocked.Increment(ref _handshaking) <= synBacklog)
        {
            return true;
        }

        Interlocked.Decrement(ref _handshaking);
        return false;
    }

    /// <summary>Gives back a place <see cref="TryReserveHandshake"/> took: the handshake ended (done, failed or never begun).</summary>
    public void HandshakeEnded() => Interlocked.Decrement(ref _handshaking);

    /// <summary>A SYN+ACK with a cookie left at <paramref name="now"/>.</summary>
    public void CookieSent(Instant now) => Volatile.Write(ref _lastCookieMicroseconds, now.Microseconds);

    /// <summary>
    /// True while a cookie sent here may still come back (within <paramref name="lifetime"/>): an ACK for no connection
    /// may then be a client's whose first segments were lost, as they are under a flood, and whose later ones no longer
    /// carry its ISN (SEG.SEQ - 1); it is dropped rather than reset, and the client's retransmission returns the cookie.
    /// </summary>
    public bool CookiesInFlight(Instant now, TimeSpan lifetime) =>
        Volatile.Read(ref _lastCookieMicroseconds) is var last && last != long.MinValue && now - new Instant(last) < lifetime;

    /// <summary>The listener's accept queue now holds <paramref name="count"/> connections.</summary>
    public void AcceptQueueLength(int count) => Volatile.Write(ref _established, count);
}

/// <summary>
/// The listeners' defence against SYN floods on the meter <c>Mtcp.Runtime</c> (<see cref="RefusalLog.MeterName"/>):
/// <c>mtcp.listener.syn_cookies</c> by <c>outcome</c> (sent, validated, refused) and
/// <c>mtcp.listener.queue_overflows</c> by <c>queue</c> (syn, accept). Overflows and refused cookies are also
/// summarised in the refusal log.
/// </summary>
internal static class ListenerMetrics
{
    private static readonly Meter Meter = new(RefusalLog.MeterName);

    private static readonly Counter<long> Cookies = Meter.CreateCounter<long>(
        "mtcp.listener.syn_cookies", "{segment}", "SYN cookies sent on SYN+ACKs, validated on the ACK that created the connection, refused on an ACK for no connection (tag outcome)");

    private static readonly Counter<long> Overflows = Meter.CreateCounter<long>(
        "mtcp.listener.queue_overflows", "{segment}", "SYNs that found a listener's SYN queue or accept queue full (tag queue: syn, accept)");

    public static void CookieSent() => Cookies.Add(1, new KeyValuePair<string, object?>("outcome", "sent"));

    public static void CookieValidated() => Cookies.Add(1, new KeyValuePair<string, object?>("outcome", "validated"));

    public static void CookieRefused() => Cookies.Add(1, new KeyValuePair<string, object?>("outcome", "refused"));

    public static void SynQueueOverflow() => Overflows.Add(1, new KeyValuePair<string, object?>("queue", "syn"));

    public static void AcceptQueueOverflow() => Overflows.Add(1, new KeyValuePair<string, object?>("queue", "accept"));
}
