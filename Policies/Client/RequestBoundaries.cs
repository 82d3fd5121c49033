using Mtcp.Stack;

namespace Mtcp.Policies;

/// <summary>
/// What one read of the server's bytes tells the response-time and latency triggers (thesis 3.4 (2) and (1)).
/// <paramref name="ResponseTime"/>: the read carried the first bytes of the answer to a request, this long after the
/// request's last bytes were handed to the connection. <paramref name="Gap"/>: the read carried more of what the server
/// was already sending (no request in between), this long after the previous read. Either is null when the read
/// measured nothing of the kind.
/// </summary>
public readonly record struct AnswerTiming(TimeSpan? ResponseTime, TimeSpan? Gap);

/// <summary>
/// The request boundaries of a request/response protocol as a byte relay sees them, without parsing the protocol
/// (sans-IO: every instant comes in as a parameter). A request is what the client sends after the server's last
/// answer; its response time runs from the moment the relay handed the request's last bytes to the connection to the
/// moment its first read of the server's answer returned. Client bytes that follow one another before the server
/// answers are one request, and the clock starts again at each of them.
/// <para>
/// A download is one request and one long answer: its first read is the only response-time sample (the time to the
/// first byte), and every later read is a <see cref="AnswerTiming.Gap"/> of the answer in progress, never a response
/// time, so a steady download cannot look like a slow server to the response-time trigger. Bytes the server sends
/// without a request (a greeting, a push) are gaps too, measured from its previous bytes.
/// </para>
/// <para>
/// What a relay cannot know is left out rather than guessed: a read that waited on the relay's own client (a reader
/// wait, as behind a slow reader) measures the reader, so it yields neither sample; a migration
/// (<see cref="Forget"/>) ends the pending request and gap, whose answer comes from another server after the switch. A
/// request sent while the previous answer is still arriving (pipelining) is taken as answered by the next bytes of
/// that answer: the sample is too short, which may hide a degradation but never invents one.
/// </para>
/// <para>
/// The time before a request, since the connection's previous bytes either way, is the client's: its user thinking,
/// its program computing the next request. <see cref="RequestForwarded"/> returns it so that the throughput trigger
/// leaves it out as it leaves out a slow reader's (an interactive session's pause is no drop in the server's rate).
/// </para>
/// </summary>
public sealed class RequestBoundaries
{
    private Instant? _requestForwardedAt;
    private Instant? _previousAnswerAt;
    private Instant? _previousEventAt;

    /// <summary>A request is waiting for its answer.</summary>
    public bool RequestPending => _requestForwardedAt is not null;

    /// <summary>
    /// Client bytes are handed to the connection at <paramref name="at"/>: a request, or more of the pending one. Returns
    /// the client's time before them: since the connection's previous bytes either way (zero for the first).
    /// </summary>
    public TimeSpan RequestForwarded(Instant at)
    {
        var clientTime = _previousEventAt is { } previous && at > previous ? at - previous : TimeSpan.Zero;
        _requestForwardedAt = at;
        _previousAnswerAt = null;
        _previousEventAt = at;
        return clientTime;
    }

    /// <summary>
    /// A read of the server's bytes returned at <paramref name="at"/>, after the relay waited <paramref name="readerWait"/>
    /// on its own client since the previous read.
    /// </summary>
    public AnswerTiming AnswerReceived(Instant at, TimeSpan readerWait)
    {
        var heldByReader = readerWait > TimeSpan.Zero;
        var timing = (_requestForwardedAt, _previousAnswerAt) switch
        {
            _ when heldByReader => default,
            ({ } forwarded, _) => new AnswerTiming(at - forwarded, null),
            (null, { } previous) => new AnswerTiming(null, at - previous),
            _ => default,
        };
        _requestForwardedAt = null;
        _previousAnswerAt = at;
        _previousEventAt = at;
        return timing;
    }

    /// <summary>The connection moved to another server: what was pending is not this server's to answer.</summary>
    public void Forget()
    {
        _requestForwardedAt = null;
        _previousAnswerAt = null;
        _previousEventAt = null;
    }
}
