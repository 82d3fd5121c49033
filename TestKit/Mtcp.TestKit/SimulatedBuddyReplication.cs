using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.TestKit;

/// <summary>
/// Buddy replication on one simulated server, driven the way the actor runtime drives it, over the shipping sans-IO
/// parts: a <see cref="ConnectionReplicator"/> per established endpoint with the connection's ACK gated on what the
/// buddy holds (as the server endpoint actor does before every transmission), and the <see cref="ReplicaTakeover{TOrigin}"/>
/// the node's replica keeper actor drives, holding the other servers' connections. When this server's failure detector
/// marks a node lost (<see cref="Lose"/>), a MIGRATE_TRIGGER is signed for each of that node's connections held here;
/// a special SYN whose origin is down or lost is answered from its replica (the control connection reports the origin
/// gone, and the keeper answers as the origin would have), and the new endpoint's state ack completes the takeover.
/// Only the driving lives here: every decision (what to replicate, when to acknowledge, which origin is lost, whether
/// a replica may answer, authenticating the special SYN, composing the reply, signing the trigger) is the Stack's.
/// </summary>
public sealed class SimulatedBuddyReplication
{
    private readonly Dictionary<MtcpServerEndpoint<IpAddress>, Replicated> _replicating = [];
    private readonly Queue<(IpAddress Client, TcpSegmentRepr Segment)> _triggers = new();

    /// <param name="self">this server's service address.</param>
    /// <param name="chooseBuddy">the buddy of this server's connections in its current view (null: none, unreplicated).</param>
    /// <param name="maxStateLength">largest whole state a replica may hold.</param>
    /// <param name="maxPiece">most state or read-log bytes in one replica update.</param>
    /// <param name="readLogsInFlight">most read logs unacknowledged at once per connection.</param>
    /// <param name="stateSchedule">when a new snapshot goes to the buddy as a whole state.</param>
    /// <param name="ackTimeout">how long an update may wait for its ack before the whole state goes again.</param>
    public SimulatedBuddyReplication(IpAddress self, Func<IReadOnlySet<IpAddress>, IpAddress?> chooseBuddy, int maxStateLength, int maxPiece, int readLogsInFlight, ReplicaStateSchedule stateSchedule, TimeSpan ackTimeout)
    {
        AckTimeout = ackTimeout;
        Self = self;
        ChooseBuddy = chooseBuddy;
        MaxPiece = maxPiece;
        ReadLogsInFlight = readLogsInFlight;
        StateSchedule = stateSchedule;
        Takeover = new ReplicaTakeover<IpAddress>(maxStateLength);
    }

    public IpAddress Self { get; }

    public Func<IReadOnlySet<IpAddress>, IpAddress?> ChooseBuddy { get; }

    public int MaxPiece { get; }

    public int ReadLogsInFlight { get; }

    public ReplicaStateSchedule StateSchedule { get; }

    public TimeSpan AckTimeout { get; }

    /// <summary>The replicas of other servers' connections held here, and what was decided about them (the runtime's).</summary>
    public ReplicaTakeover<IpAddress> Takeover { get; }

    /// <summary>The replicas of other servers' connections held here.</summary>
    public ReplicaStore<IpAddress> Store => Takeover.Store;

    /// <summary>Servers marked lost (and not seen back since).</summary>
    public IReadOnlySet<IpAddress> Lost => Takeover.Lost;

    /// <summary>Connections this server took over from a lost one.</summary>
    public int TakenOver => Takeover.TakenOverCount;

    /// <summary>Special SYNs answered from a replica.</summary>
    public int AnsweredFromReplica => Takeover.AnsweredFromReplica;

    /// <summary>Takeover MIGRATE_TRIGGERs signed here.</summary>
    public int TriggersSent { get; private set; }

    /// <summary>The buddy of <paramref name="cid"/>'s connection served here, if it is replicated.</summary>
    public IpAddress? BuddyOf(ConnectionId cid) => _replicating.Where(pair => pair.Key.Cid == cid).Select(pair => pair.Value.Buddy).FirstOrDefault();

    /// <summary>
    /// What changed in the host's connections goes to their buddy, chosen again when this server's view changed; a
    /// connection that ended or left releases its replica; one whose oldest update waited its ack past the ack timeout
    /// sends the whole state again. Call at <paramref name="now"/>, after every input and before any transmission.
    /// </summary>
    public void Replicate(Instant now, MtcpServerHost host, Action<IpAddress, ControlMessage> send)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(send);
        var buddy = ChooseBuddy(Lost);
        var present = new HashSet<MtcpServerEndpoint<IpAddress>>(host.Endpoints);
        foreach (var gone in _replicating.Keys.Where(endpoint => !present.Contains(endpoint)).ToList())
        {
            Release(gone, send);
            _replicating.Remove(gone);
        }

        foreach (var endpoint in present)
        {
            // LAST-ACK and TIME-WAIT have nothing left to migrate (thesis 4.2.3 step 3): the replica goes with the connection.
            if (endpoint.Phase is ServerEndpointPhase.MigratedAway or ServerEndpointPhase.Ended
                || endpoint.Connection.State is TcpState.LastAck or TcpState.TimeWait)
            {
                Release(endpoint, send);
                continue;
            }

            if (endpoint.Phase != ServerEndpointPhase.Established)
            {
                continue;
            }

            if (!_replicating.TryGetValue(endpoint, out var replicated))
            {
                replicated = new Replicated(new ConnectionReplicator(endpoint.Cid, MaxPiece, ReadLogsInFlight, StateSchedule, AckTimeout));
                _replicating[endpoint] = replicated;
                Rechoose(endpoint, replicated, buddy, send);
            }
            else if (!Equals(buddy, replicated.Buddy))
            {
                Rechoose(endpoint, replicated, buddy, send);
            }

            if (replicated.Buddy is not { } to)
            {
                continue;
            }

            replicated.Replicator.HandleAckTimeout(now);
            replicated.Replicator.Update(now, endpoint.Connection, endpoint.CredentialBytes.Span);
            while (replicated.Replicator.PollOutgoing(out var update))
            {
                send(to, update);
            }
        }
    }

    /// <summary>
    /// A control message for the replication conversation (an update from a server whose connections are replicated
    /// here, or the buddy's ack of this server's updates); false for any other message.
    /// </summary>
    public bool HandleControl(MtcpServerHost host, IpAddress from, ControlMessage message, Action<IpAddress, ControlMessage> send)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(send);
        switch (message)
        {
            case ReplicaState or ReplicaReadLog or ReplicaRelease:
                if (Takeover.Apply(from, message) is { } held)
                {
                    send(from, held);
                }

                return true;
            case ReplicaAck ack:
                foreach (var (endpoint, replicated) in _replicating)
                {
                    if (endpoint.Cid == ack.Cid && Equals(replicated.Buddy, from))
                    {
                        replicated.Replicator.HandleAck(ack, endpoint.Connection);
                    }
                }

                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// A control message the host addressed to <paramref name="peer"/>, which is down (its control connection broke)
    /// or lost: a state request is answered from the replica of its Cid if <paramref name="peer"/> sent it here (else
    /// CB_NOT_FOUND, as the runtime refuses when no replica of a lost origin is held); the state ack of a reinstated
    /// replica completes the takeover. Returns the answer to hand back to the host as if <paramref name="peer"/> sent it.
    /// </summary>
    public ControlMessage? AnswerForLostPeer(MtcpServerHost host, IpAddress peer, ControlMessage message)
    {
        ArgumentNullException.ThrowIfNull(host);
        switch (message)
        {
            case StateRequest request:
                return Takeover.AnswerStateRequest(request, peer, host.Authenticator, out _, out _, out _)
                    ?? new StateReject(request.RequestId, request.NewEndpointCid, StateRejectReason.CbNotFound, $"origin {peer} lost and no replica of {request.MigratingCid} here");
            case StateAck ack:
                Takeover.Reinstated(ack.MigratingCid, out _, out _, out _);
                return null;
            default:
                return null;
        }
    }

    /// <summary>
    /// This server's failure detector marks <paramref name="origin"/> lost: the client of each of its connections
    /// replicated here is sent a MIGRATE_TRIGGER naming <paramref name="host"/>'s service endpoint.
    /// </summary>
    public void Lose(MtcpServerHost host, IpAddress origin)
    {
        ArgumentNullException.ThrowIfNull(host);
        foreach (var cid in Takeover.Lose(origin))
        {
            if (Store.TryCreateTakeoverTrigger(cid, host.Service, host.Authenticator, out var trigger))
            {
                _triggers.Enqueue((cid.ClientAddress, trigger));
                TriggersSent++;
            }
        }
    }

    /// <summary>A lost server is back as a new incarnation that holds nothing.</summary>
    public void Rejoined(IpAddress server) => Takeover.Rejoined(server);

    /// <summary>The next takeover trigger to send, and the client it goes to.</summary>
    public bool PollTrigger(out IpAddress client, out TcpSegmentRepr segment)
    {
        if (_triggers.TryDequeue(out var next))
        {
            (client, segment) = next;
            return true;
        }

        client = default;
        segment = default;
        return false;
    }

    private static void Rechoose(MtcpServerEndpoint<IpAddress> endpoint, Replicated replicated, IpAddress? buddy, Action<IpAddress, ControlMessage> send)
    {
        if (replicated.Buddy is { } previous)
        {
            send(previous, new ReplicaRelease(0, endpoint.Cid));
        }

        replicated.Replicator.Restart();
        replicated.Buddy = buddy;
        var connection = endpoint.Connection;
        if (buddy is null)
        {
            // No other server: the connection runs unreplicated.
            connection.StopAckGating();
        }
        else if (connection.ReplicatedUpTo is null)
        {
            connection.AcknowledgeReplicatedUpTo(connection.LastAckSent);
        }
    }

    private void Release(MtcpServerEndpoint<IpAddress> endpoint, Action<IpAddress, ControlMessage> send)
    {
        if (!_replicating.TryGetValue(endpoint, out var replicated))
        {
            return;
        }

        replicated.Replicator.Release();
        while (replicated.Replicator.PollOutgoing(out var update))
        {
            if (replicated.Buddy is { } to)
            {
                send(to, update);
            }
        }
    }

    private sealed class Replicated(ConnectionReplicator replicator)
    {
        public ConnectionReplicator Replicator { get; } = replicator;

        public IpAddress? Buddy { get; set; }
    }
}
