using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Migration;

/// <summary>
/// The buddy's side of buddy replication as decisions, sans-IO: the replicas other nodes send (a
/// <see cref="ReplicaStore{TOrigin}"/>), which origins are lost, and what was taken over from whom. One per node; the
/// runtime's replica keeper actor and the simulator both drive it, turning cluster events and control messages into
/// calls and its answers into messages.
/// <list type="bullet">
/// <item>Takeover: when the failure detector marks an origin lost (<see cref="Lose"/>), the client of each of its
/// connections held here is to be sent a MIGRATE_TRIGGER naming this node (<see cref="ReplicaStore{TOrigin}.TryCreateTakeoverTrigger"/>);
/// a special SYN for a connection of a lost origin is answered from its replica (<see cref="AnswerStateRequest(StateRequest, IMigrationAuthenticator?, out TOrigin, out ConnectionId, out MigratedConnectionCheck)"/>),
/// and the new endpoint's state ack completes the takeover (<see cref="Reinstated"/>).</item>
/// <item>Takeover from a silent origin: a special SYN whose state request the live origin has not answered within
/// <c>mtcp.control.silent-origin-takeover</c> is answered from the replica all the same
/// (<see cref="AnswerForSilentOrigin"/>; the race with the origin's late answer is <see cref="SilentOriginRace{TAnswer}"/>'s),
/// and the origin, reachable, is fenced as soon as the new endpoint has reinstated the replica: it is told the connection
/// was taken over (<see cref="ConnectionTakenOver"/>, naming the epoch of the incarnation the replica came from) and drops
/// it as after a planned migration, whether or not its late answer ever comes.</item>
/// <item>Fencing: a lost origin that is reachable again (it was only partitioned) must drop what was taken over from it
/// (<see cref="Reachable"/> names those connections: each is sent a <see cref="ConnectionTakenOver"/>). From the moment a
/// replica answers, the origin's further updates of that connection are never acknowledged (<see cref="Apply"/>), so it
/// can never acknowledge a client byte the new server lacks.</item>
/// <item>A node removed for good, or back as a new incarnation (<see cref="Removed"/>, <see cref="Rejoined"/>), never
/// held what was taken over from its predecessor.</item>
/// </list>
/// </summary>
/// <typeparam name="TOrigin">how the driver names a node.</typeparam>
public sealed class ReplicaTakeover<TOrigin>
    where TOrigin : notnull
{
    private readonly HashSet<TOrigin> _lost = [];

    /// <summary>Connections taken over from a lost origin, the origin and the epoch it held them at, until it is fenced or gone for good.</summary>
    private readonly Dictionary<ConnectionId, (TOrigin Origin, uint Epoch)> _takenOver = [];

    /// <summary>
    /// Replicas whose state reply went to a new endpoint, waiting for its state ack: their origin, the connection's
    /// first Cid (from the replicated credential), its name in every node's log, the credential's epoch (which of the
    /// origin's incarnations of the connection is taken over) and the state request answered.
    /// </summary>
    private readonly Dictionary<ConnectionId, (TOrigin Origin, ConnectionId FirstCid, uint Epoch, ulong RequestId)> _answered = [];

    /// <summary>
    /// Connections a replica answered for, and their origin: what that origin still sends about them is not acknowledged
    /// (the reply went out without it), until it releases them (it dropped the connection) or leaves the cluster.
    /// </summary>
    private readonly Dictionary<ConnectionId, TOrigin> _refused = [];

    /// <param name="maxStateLength">largest whole state a replica may hold (<c>mtcp.control.max-state-reply-size</c>).</param>
    public ReplicaTakeover(int maxStateLength)
    {
        Store = new ReplicaStore<TOrigin>(maxStateLength);
    }

    /// <summary>The replicas of other nodes' connections held here.</summary>
    public ReplicaStore<TOrigin> Store { get; }

    /// <summary>Nodes marked lost (unreachable, downed or removed) and not seen back since.</summary>
    public IReadOnlySet<TOrigin> Lost => _lost;

    /// <summary>Special SYNs answered from a replica.</summary>
    public int AnsweredFromReplica { get; private set; }

    /// <summary>Connections taken over here (state ack received), in all.</summary>
    public int TakenOverCount { get; private set; }

    /// <summary>Of <see cref="TakenOverCount"/>, those taken over from an origin still reachable that did not answer in time.</summary>
    public int TakenOverFromSilentOrigin { get; private set; }

    /// <summary>Updates an origin sent about a connection after a replica answered for it: dropped, never acknowledged.</summary>
    public int RefusedUpdates { get; private set; }

    public bool IsLost(TOrigin origin) => _lost.Contains(origin);

    /// <summary>
    /// An update from <paramref name="origin"/>; the ack to send back, if any (<see cref="ReplicaStore{TOrigin}.Apply"/>).
    /// None for an update about a connection a replica already answered for: the reply went to the new endpoint
    /// without it, so acknowledging it would let the origin acknowledge client bytes the new server never gets (an
    /// update in flight at the takeover, or an origin that has not yet learned it was fenced). Its release ends that.
    /// </summary>
    public ReplicaAck? Apply(TOrigin origin, ControlMessage update)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (ReplicaUpdate.TryGetCid(update, out var cid) && _refused.TryGetValue(cid, out var answeredFor) && EqualityComparer<TOrigin>.Default.Equals(answeredFor, origin))
        {
            if (update is not ReplicaRelease)
            {
                RefusedUpdates++;
                return null;
            }

            _refused.Remove(cid);
        }

        return Store.Apply(origin, update);
    }

    /// <summary>
    /// The failure detector marks <paramref name="origin"/> lost: the connections whose clients are to be sent a
    /// takeover trigger, those it replicated here; none when it was already known lost.
    /// </summary>
    public IReadOnlyList<ConnectionId> Lose(TOrigin origin) => _lost.Add(origin) ? Store.HeldFrom(origin) : [];

    /// <summary><paramref name="origin"/> left the cluster for good: what was taken over from it needs no fencing.</summary>
    public void Removed(TOrigin origin) => ForgetTakenOverFrom(origin);

    /// <summary>
    /// A state request the live <paramref name="origin"/> has not answered within <c>mtcp.control.silent-origin-takeover</c>:
    /// answered from the replica of its Cid if <paramref name="origin"/> sent that replica here, exactly as for a lost
    /// origin (the authenticator checked under the replicated credential, the attempt consumed; a reject when it does not
    /// verify). Null when no replica of <paramref name="origin"/>'s is held for it (this node is not its buddy), or no
    /// cluster key to check it with: the request then waits for the origin.
    /// </summary>
    public ControlMessage? AnswerForSilentOrigin(StateRequest request, TOrigin origin, IMigrationAuthenticator? authenticator, out ConnectionId firstCid, out MigratedConnectionCheck check) =>
        Answer(request, authenticator, AnswerFor.SilentOrigin, origin, out _, out firstCid, out check);

    /// <summary>A new incarnation of <paramref name="origin"/>: it is not lost, and holds nothing that was taken over.</summary>
    public void Rejoined(TOrigin origin)
    {
        _lost.Remove(origin);
        ForgetTakenOverFrom(origin);
    }

    /// <summary>
    /// <paramref name="origin"/>, lost, is reachable again (same incarnation): it must drop the connections taken over
    /// from it, the notices returned here, one per connection (fencing; the client already blackholes it).
    /// </summary>
    public IReadOnlyList<ConnectionTakenOver> Reachable(TOrigin origin)
    {
        _lost.Remove(origin);
        var fenced = _takenOver.Where(pair => EqualityComparer<TOrigin>.Default.Equals(pair.Value.Origin, origin))
            .Select(pair => new ConnectionTakenOver(0, pair.Key, pair.Value.Epoch))
            .ToList();
        foreach (var notice in fenced)
        {
            _takenOver.Remove(notice.MigratingCid);
        }

        return fenced;
    }

    /// <summary>
    /// A state request that went to a node found gone: answered from the replica of its Cid if that replica came from a
    /// lost node (<see cref="ReplicaStore{TOrigin}.AnswerStateRequest"/>: the reply, or a reject when the
    /// authenticator does not verify). Null when no replica of a lost origin is held, or no cluster key to check it
    /// with: the caller refuses as it does for any request whose origin is gone.
    /// </summary>
    public ControlMessage? AnswerStateRequest(StateRequest request, IMigrationAuthenticator? authenticator, out TOrigin origin, out ConnectionId firstCid, out MigratedConnectionCheck check) =>
        Answer(request, authenticator, AnswerFor.LostOrigin, default!, out origin, out firstCid, out check);

    /// <summary>
    /// As <see cref="AnswerStateRequest(StateRequest, IMigrationAuthenticator?, out TOrigin, out ConnectionId, out MigratedConnectionCheck)"/>,
    /// for a request the control connection to <paramref name="reportedLost"/> could not carry: that node is lost
    /// (the connection saw it before the failure detector did), and only a replica it sent may answer.
    /// </summary>
    public ControlMessage? AnswerStateRequest(StateRequest request, TOrigin reportedLost, IMigrationAuthenticator? authenticator, out TOrigin origin, out ConnectionId firstCid, out MigratedConnectionCheck check) =>
        Answer(request, authenticator, AnswerFor.ReportedLost, reportedLost, out origin, out firstCid, out check);

    /// <summary>
    /// The new endpoint reinstated the replica answered for <paramref name="migratingCid"/> (its state ack): the
    /// connection is served here now, the replica goes. False for any other state ack. <paramref name="fence"/>: the
    /// origin is not lost (it was alive but silent), and this notice is to go to it now, so that it drops the connection
    /// whether or not its late answer ever comes (an answer past its own <c>state-request-timeout</c> is never sent); a
    /// lost origin is told when it is reachable again (<see cref="Reachable"/>).
    /// </summary>
    public bool Reinstated(ConnectionId migratingCid, out TOrigin origin, out ConnectionId firstCid, out ConnectionTakenOver? fence)
    {
        fence = null;
        if (!_answered.Remove(migratingCid, out var answered))
        {
            origin = default!;
            firstCid = default;
            return false;
        }

        (origin, firstCid, var epoch, var requestId) = answered;
        Store.Remove(migratingCid);
        TakenOverCount++;
        if (_lost.Contains(origin))
        {
            _takenOver[migratingCid] = (origin, epoch);
        }
        else
        {
            fence = new ConnectionTakenOver(requestId, migratingCid, epoch);
            TakenOverFromSilentOrigin++;
        }

        return true;
    }

    /// <summary>Whole states held, by the node they came from.</summary>
    public IReadOnlyDictionary<TOrigin, int> HeldByOrigin() => Store.Origins.ToDictionary(origin => origin, origin => Store.HeldFrom(origin).Count);

    /// <summary>Connections taken over and not yet fenced or forgotten, by the node they were taken from.</summary>
    public IReadOnlyDictionary<TOrigin, int> TakenOverByOrigin() => _takenOver.Values.GroupBy(taken => taken.Origin).ToDictionary(group => group.Key, group => group.Count());

    private ControlMessage? Answer(StateRequest request, IMigrationAuthenticator? authenticator, AnswerFor answerFor, TOrigin named, out TOrigin origin, out ConnectionId firstCid, out MigratedConnectionCheck check)
    {
        ArgumentNullException.ThrowIfNull(request);
        firstCid = request.MigratingCid;
        check = MigratedConnectionCheck.Forged;
        if (answerFor == AnswerFor.ReportedLost)
        {
            _lost.Add(named);
        }

        origin = default!;
        if (authenticator is null
            || !Store.TryGetOrigin(request.MigratingCid, out var held)
            || (answerFor != AnswerFor.SilentOrigin && !_lost.Contains(held))
            || (answerFor != AnswerFor.LostOrigin && !EqualityComparer<TOrigin>.Default.Equals(held, named)))
        {
            return null;
        }

        origin = held;

        var reply = Store.AnswerStateRequest(request, authenticator, out check);
        if (reply is StateReply state)
        {
            var epoch = 0u;
            if (ConnectionCredential.TryRead(state.MigrationCredential.Span, out var credential))
            {
                firstCid = credential.SecretCid;
                epoch = credential.Credential.Epoch;
            }

            _answered[request.MigratingCid] = (origin, firstCid, epoch, request.RequestId);
            _refused[request.MigratingCid] = origin;
            AnsweredFromReplica++;
        }

        return reply;
    }

    private void ForgetTakenOverFrom(TOrigin origin)
    {
        foreach (var cid in _takenOver.Where(pair => EqualityComparer<TOrigin>.Default.Equals(pair.Value.Origin, origin)).Select(pair => pair.Key).ToList())
        {
            _takenOver.Remove(cid);
        }

        // A node gone for good, or its new incarnation, sends nothing about the old one's connections.
        foreach (var cid in _refused.Where(pair => EqualityComparer<TOrigin>.Default.Equals(pair.Value, origin)).Select(pair => pair.Key).ToList())
        {
            _refused.Remove(cid);
        }
    }

    /// <summary>Which origin a replica may answer for.</summary>
    private enum AnswerFor
    {
        /// <summary>One the failure detector marked lost.</summary>
        LostOrigin,

        /// <summary>The one named, which the control connection found gone: it is lost from now on.</summary>
        ReportedLost,

        /// <summary>The one named, alive but silent past <c>silent-origin-takeover</c>.</summary>
        SilentOrigin,
    }
}
