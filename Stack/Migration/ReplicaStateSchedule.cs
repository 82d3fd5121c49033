namespace Mtcp.Stack.Migration;

/// <summary>
/// When a new application snapshot is worth a whole state to the buddy (buddy replication, beyond the thesis: its eager
/// state transfer). The buddy holds a snapshot and every client byte read since (the read log), so a newer snapshot is
/// never needed to survive a crash: the application is deterministic from a snapshot and its read log (README,
/// "application contract"), regenerates its output since, and the client discards what it already has
/// (snd_bytes_discard, thesis 4.2.3). A newer snapshot only shortens that replay, and costs a whole state (the snapshot,
/// the write buffer the client has not acknowledged, the transition log) on the control connection. So a new snapshot
/// goes once the replay it saves (the client's bytes and the server's output between the buddy's snapshot and the new
/// one) reaches both <see cref="MinProgress"/> bytes and <see cref="ProgressPerStateByte"/> times the last whole state's
/// length: whole states then cost at most one byte in that many of the stream. It goes at <see cref="MaxProgress"/>
/// whatever the state's length, so that the buddy's read log, and the replay after a takeover, stay bounded. A change
/// of the TCP state or of the credential always goes at once (the replica must carry it).
/// </summary>
/// <param name="MinProgress">bytes of replay a new snapshot must save; 0 with <paramref name="ProgressPerStateByte"/> 0: every snapshot goes.</param>
/// <param name="ProgressPerStateByte">bytes of replay saved per byte of the last whole state sent.</param>
/// <param name="MaxProgress">bytes of replay after which a new snapshot goes however long the last whole state was; at least <paramref name="MinProgress"/>.</param>
public sealed record ReplicaStateSchedule(long MinProgress, int ProgressPerStateByte, long MaxProgress)
{
    /// <summary>Every new snapshot goes to the buddy as soon as no whole state is unacknowledged.</summary>
    public static ReplicaStateSchedule EverySnapshot { get; } = new(0, 0, 0);

    public long MinProgress { get; } = MinProgress >= 0 ? MinProgress : throw new ArgumentOutOfRangeException(nameof(MinProgress), MinProgress, "not negative");

    public int ProgressPerStateByte { get; } = ProgressPerStateByte >= 0 ? ProgressPerStateByte : throw new ArgumentOutOfRangeException(nameof(ProgressPerStateByte), ProgressPerStateByte, "not negative");

    public long MaxProgress { get; } = MaxProgress >= MinProgress ? MaxProgress : throw new ArgumentOutOfRangeException(nameof(MaxProgress), MaxProgress, "at least MinProgress");

    /// <summary>Whether a snapshot saving <paramref name="progress"/> bytes of replay is worth a whole state now that the last one was <paramref name="lastStateLength"/> bytes.</summary>
    public bool IsDue(long progress, long lastStateLength) =>
        progress >= Math.Min(MaxProgress, Math.Max(MinProgress, ProgressPerStateByte * lastStateLength));
}
