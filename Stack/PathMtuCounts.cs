namespace Mtcp.Stack;

/// <summary>
/// A connection's path MTU events so far (<see cref="TcpConnectionStats"/>), as a value a driver can subtract from a
/// later one to export what happened in between.
/// </summary>
/// <param name="Reductions">ICMP "packet too big" reports that lowered the send MSS (RFC 1191, RFC 8201).</param>
/// <param name="BlackHoles">Black holes detected (RFC 4821 §7.2): the send MSS fell back to the base.</param>
/// <param name="Probes">Probes sent (RFC 4821 §7.3, RFC 8899 §5).</param>
/// <param name="ProbesLost">Probes lost (RFC 4821 §7.5): the search's upper bound came down, cwnd did not.</param>
/// <param name="Increases">Probes acknowledged that raised the send MSS.</param>
public readonly record struct PathMtuCounts(long Reductions, long BlackHoles, long Probes, long ProbesLost, long Increases)
{
    public static PathMtuCounts operator +(PathMtuCounts left, PathMtuCounts right) => new(
        left.Reductions + right.Reductions,
        left.BlackHoles + right.BlackHoles,
        left.Probes + right.Probes,
        left.ProbesLost + right.ProbesLost,
        left.Increases + right.Increases);

    public static PathMtuCounts operator -(PathMtuCounts left, PathMtuCounts right) => new(
        left.Reductions - right.Reductions,
        left.BlackHoles - right.BlackHoles,
        left.Probes - right.Probes,
        left.ProbesLost - right.ProbesLost,
        left.Increases - right.Increases);
}
