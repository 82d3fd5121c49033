using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Replication;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Control;

/// <summary>
/// This node's end of the one control connection to one peer node (thesis 4.2.3: "exactly one control
/// connection between any two cooperating servers"), over the Akka.Remote association between the nodes.
/// Every state transfer with that peer, in both directions, is multiplexed onto it by request id.
/// <para>
/// Requesting side (S2): <see cref="RequestState"/> goes out to the peer's <see cref="ControlConnectionManager"/>;
/// the reply (whole or in <see cref="StateReplyChunk"/>s), reject, timeout or failure goes to the requester.
/// A reply that comes after the request ended is never delivered and never acked: the origin closes its
/// endpoint only on a <see cref="StateAck"/>, so it keeps serving the client; an
/// <see cref="AbandonStateTransfer"/> tells it so early.
/// </para>
/// <para>
/// Serving side (S1): a peer's <see cref="StateRequest"/> goes to the connection registry as
/// <see cref="StateRequestReceived"/>; its answer goes back to the peer (chunked when large); a peer's
/// <see cref="StateAck"/> goes to the registry as <see cref="StateAckReceived"/>.
/// </para>
/// <para>
/// Direction is told by the sender: a message from a remote sender comes from the peer (the manager forwards
/// it with the sender kept), a message from a local sender comes from this node's registry or endpoints.
/// There is no connection phase to model (Akka.Remote associates on the first message and re-associates by
/// itself), so this is a plain actor, not an FSM; losing the peer is reported by the manager.
/// </para>
/// <para>
/// Warm: the manager creates the connection when the peer joins the cluster and sends it <see cref="WarmUp"/>, which
/// resolves the peer's manager (an <see cref="Identify"/> over the association, so Akka.Remote associates then and not
/// on a client's first migration); from then on messages go to the resolved reference, not through the selection.
/// </para>
/// <para>
/// Once the node has its cluster key (<see cref="UseControlAuthenticator"/>), every control message to the peer is
/// sealed (<see cref="SealedControlMessage"/>, or chunks of a large reply's envelope) and every one from the peer must
/// open under the key with both identities (docs/threat-model.md); what does not, or comes unsealed, is dropped,
/// logged and counted in <c>mtcp.control.dropped</c>.
/// </para>
/// <para>
/// Takeover from a silent origin: when this node is the peer's buddy, a request the peer leaves unanswered for
/// <c>mtcp.control.silent-origin-takeover</c> goes to the replica keeper (<see cref="TakeOverFromSilentOrigin"/>),
/// which answers from the replica if it holds the peer's; which of the two answers reaches the requester, and what
/// becomes of the other, is <see cref="SilentOriginRace{TAnswer}"/>'s decision. The peer's late state reply to a
/// request the replica answered is acknowledged (the ack names that reply); the fence that does not wait for it is the
/// replica keeper's <see cref="ConnectionTakenOver"/>, sent on reinstatement, which this connection carries.
/// </para>
/// <para>
/// Buddy replication: the endpoint actor that replicates a connection to the peer is remembered (watched, forgotten at
/// its release or stop), and the peer's acks go straight to it, not through the registry: every client byte waits for
/// its ack before it is acknowledged (docs/failover.md), so each hop on that path delays the client. The routes
/// (<see cref="ReplicaAckRoutes"/>) are shared with the reader of this node's direct replication channel, which
/// delivers the acks it opens to the endpoints itself, not through this actor's mailbox.
/// </para>
/// <para>
/// Direct replication channel (<c>mtcp.migration.buddy-channel.transport = direct</c>; docs/failover.md): replica
/// updates to the peer and acks of the peer's updates go, sealed as they would be here, on the TLS channels of
/// <see cref="ReplicationChannelPath"/> while those are open, and over Akka.Remote otherwise; what the channels' readers
/// open (but the acks delivered to the endpoints) comes back here as <see cref="ReceivedOnChannel"/> and is handled as
/// the same message from the peer, so both paths share one bookkeeping. A connection's update and its successor may
/// cross by different paths: the buddy's store applies an update only where the previous one ended (in the same generation), so one out of order is
/// refused, not applied, and costs a whole state; when the channel for this node's updates breaks, every connection
/// with updates unacknowledged is told (<see cref="ReplicationPathLost"/>) and sends its buddy the whole state again,
/// since some may have been lost with the channel.
/// </para>
/// </summary>
internal sealed class ControlConnection : ReceiveActor, IWithTimers
{
    private readonly Address _peer;
    private readonly ActorSelection _peerManager;
    private readonly IActorRef _registry;
    private readonly IActorRef? _replicas;
    private readonly ControlSettings _settings;
    private readonly StateReplyAssembler _assembler;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RefusalLog _refusals = RefusalLog.Get(Context.System);
    private ControlSealing? _sealing;

    /// <summary>The direct replication channel's settings and TLS; null: replica messages go over Akka.Remote only.</summary>
    private readonly DirectReplication? _direct;

    /// <summary>The channels with the peer, once this node has its cluster key and the channel is configured.</summary>
    private ReplicationChannelPath? _channels;

    /// <summary>The port of the peer's channel as last announced (0: none).</summary>
    private ushort _peerChannelPort;

    /// <summary>The peer's manager once <see cref="WarmUp"/> resolved it; until then messages go through the selection.</summary>
    private IActorRef? _peerManagerResolved;

    /// <summary>Requests this node sent to the peer and not yet answered.</summary>
    private readonly Dictionary<ulong, PendingRequest> _pending = [];

    /// <summary>
    /// Requests the replica answered, by id, with their connection: the peer's state reply, when it comes, is
    /// acknowledged (it fences the peer). Forgotten after twice <c>state-request-timeout</c>, longer than the peer keeps
    /// an answer to send.
    /// </summary>
    private readonly Dictionary<ulong, ConnectionId> _takenOver = [];

    /// <summary>Peer requests handed to the registry and not yet answered, with the peer connection to answer.</summary>
    private readonly Dictionary<ulong, IActorRef> _serving = [];

    /// <summary>
    /// The endpoint actor replicating each connection to the peer, which the peer's acks go to, and this node's updates
    /// awaiting them (<c>mtcp.replication.round_trip.duration</c>); shared with the reader of this node's channel, which
    /// delivers the acks it opens itself.
    /// </summary>
    private readonly ReplicaAckRoutes _acks;

    /// <summary>The connection each endpoint of <see cref="_acks"/> replicates, to forget it when the endpoint stops.</summary>
    private readonly Dictionary<IActorRef, ConnectionId> _replicatingCids = [];

    /// <summary>
    /// As the peer's buddy: replica updates handed to the replica keeper and not yet acknowledged, with when each came
    /// (<c>mtcp.replication.buddy.hold</c>: this node's share of the peer's ack delay).
    /// </summary>
    private readonly ReplicaUpdateTimes _holding = new();

    public ControlConnection(Address peer, IActorRef registry, ControlSettings settings, IMigrationAuthenticator? authenticator, IActorRef? replicas, DirectReplication? direct)
    {
        _peer = peer;
        _acks = new ReplicaAckRoutes(peer);
        _replicas = replicas;
        _direct = direct;
        _peerManager = Context.ActorSelection(new RootActorPath(peer) / "user" / ControlConnectionManager.ActorName);
        _registry = registry;
        _settings = settings;
        _assembler = new StateReplyAssembler(settings, ReadReply);
        UseAuthenticator(authenticator);

        Receive<RequestState>(Request);
        Receive<RequestDeadline>(deadline => TimeOut(deadline.RequestId));
        Receive<SilenceDeadline>(deadline => OriginSilent(deadline.RequestId));
        Receive<SilentOriginDecided>(_ => !IsFromPeer, ReplicaDecided);
        Receive<ForgetTakenOver>(forget =>
        {
            _takenOver.Remove(forget.RequestId);
            _assembler.Abandon(forget.RequestId);
        });
        Receive<ServeDeadline>(deadline => DropServing(deadline.RequestId));
        Receive<PeerLost>(lost =>
        {
            FailAll(lost.Reason, deferrable: !lost.StopConnection);
            if (lost.StopConnection)
            {
                Context.Stop(Self);
            }
        });
        Receive<UseControlAuthenticator>(use => UseAuthenticator(use.Authenticator));
        Receive<SealedControlMessage>(_ => IsFromPeer, OpenFromPeer);
        Receive<ControlMessage>(_ => IsFromPeer, message =>
        {
            if (_sealing is null)
            {
                FromPeer(message);
                return;
            }

            _refusals.Refuse(RefusalClass.ControlMessageDropped, $"unsealed {message.GetType().Name} for request {message.RequestId} from {_peer} dropped: control messages must be sealed");
            ControlSealing.CountUnsealed();
        });
        Receive<StateReplyChunk>(_ => IsFromPeer, Reassemble);
        Receive<AbandonStateTransfer>(_ => IsFromPeer, notice =>
        {
            DropServing(notice.RequestId);
            _registry.Tell(new StateTransferAbandoned(_peer, notice.RequestId, notice.Reason), Self);
        });
        Receive<StateReply>(reply => Answer(reply.RequestId, reply));
        Receive<StateReject>(reject => Answer(reject.RequestId, reject));
        Receive<StateAck>(ack => Send(PeerManager, ack));
        Receive<ConnectionTakenOver>(notice => Send(PeerManager, notice));
        Receive<ReplicateToPeer>(replicate =>
        {
            Replicating(replicate.Message);
            if (replicate.Message is ReplicaAck ack)
            {
                Held(ack);
            }

            // Noted before it goes: on the channel, its ack may be opened by the reader before this returns.
            Sent(replicate.Message);
            SendReplication(replicate.Message);
        });
        Receive<PeerReplicationChannel>(_ => !IsFromPeer, announced =>
        {
            _peerChannelPort = announced.Port;
            _channels?.PeerPort(announced.Port);
        });
        Receive<ReplicationChannelOpened>(_ => !IsFromPeer, opened =>
        {
            if (_channels is null)
            {
                opened.Link.Dispose();
                return;
            }

            _channels.Opened(opened.Link);
        });
        Receive<ReplicationChannelUnavailable>(_ => !IsFromPeer, unavailable => _channels?.Unavailable(unavailable.Reason));
        Receive<ReplicationChannelAccepted>(_ => !IsFromPeer, accepted =>
        {
            if (_channels is null)
            {
                accepted.Link.Dispose();
                return;
            }

            _channels.Accepted(accepted.Link);
        });
        Receive<ReplicationChannelBroken>(_ => !IsFromPeer, broken =>
        {
            if (_channels?.Broken(broken.Link, broken.Reason) == true)
            {
                ResendInFlight();
            }
        });
        Receive<ReceivedOnChannel>(_ => !IsFromPeer, received => FromPeer(received.Message));
        Receive<GetReplicationChannelState>(_ => Sender.Tell(_channels?.State ?? new ReplicationChannelState(false, false, 0, 0)));
        Receive<Terminated>(terminated => Forget(terminated.ActorRef));
        Receive<WarmUp>(_ => _peerManager.Tell(new Identify(nameof(WarmUp)), Self));
        Receive<ActorIdentity>(identity =>
        {
            if (identity.Subject is { } manager)
            {
                _peerManagerResolved = manager;
                _log.Debug("control connection to {0} is warm", _peer);
            }
        });
        Receive<GetControlConnectionState>(_ => Sender.Tell(new ControlConnectionState(_peer, _peerManagerResolved is not null)));
        Receive<object>(message => _refusals.Refuse(RefusalClass.ControlMessageDropped, $"{message.GetType().Name} from local {Sender} dropped: only the peer sends it"));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="replicas">the node's <see cref="ReplicaKeeper"/>, which takes the peer's replica updates; null: they are dropped.</param>
    /// <param name="direct">the direct replication channel's settings and TLS; null: replica messages go over Akka.Remote only.</param>
    public static Props Props(Address peer, IActorRef registry, ControlSettings settings, IMigrationAuthenticator? authenticator = null, IActorRef? replicas = null, DirectReplication? direct = null) =>
        Akka.Actor.Props.Create(() => new ControlConnection(peer, registry, settings, authenticator, replicas, direct));

    private bool IsFromPeer => Sender.Path.Address.HasGlobalScope;

    private ICanTell PeerManager => (ICanTell?)_peerManagerResolved ?? _peerManager;

    protected override void PostStop()
    {
        _channels?.Dispose();
        FailAll(StateRequestFailure.ControlConnectionStopped, deferrable: false);
        base.PostStop();
    }

    private void Request(RequestState request)
    {
        var id = request.Request.RequestId;
        if (!_pending.TryAdd(id, new PendingRequest(request.Request, request.ReplyTo)))
        {
            request.ReplyTo.Tell(new StateRequestFailed(_peer, id, request.Request.NewEndpointCid, StateRequestFailure.DuplicateRequestId), Self);
            return;
        }

        _assembler.Expect(id);
        Timers.StartSingleTimer(new RequestDeadline(id), new RequestDeadline(id), _settings.StateRequestTimeout);
        if (_replicas is not null && _settings.TakesOverSilentOrigins)
        {
            Timers.StartSingleTimer(new SilenceDeadline(id), new SilenceDeadline(id), _settings.SilentOriginTakeover);
        }

        Send(PeerManager, request.Request);
    }

    private void Complete(ulong requestId, ControlMessage answer)
    {
        if (!_pending.TryGetValue(requestId, out var pending))
        {
            if (_takenOver.Remove(requestId, out var cid))
            {
                Timers.Cancel(new ForgetTakenOver(requestId));
                _assembler.Abandon(requestId);
                FenceLateAnswer(answer, cid);
                return;
            }

            _log.Info("{0} for request {1} from {2} came after the request ended; not delivered, not acked", answer.GetType().Name, requestId, _peer);
            if (answer is StateReply)
            {
                Sender.Tell(new AbandonStateTransfer(requestId, StateTransferAbandonReason.TimedOut), Self);
            }

            return;
        }

        if (pending.Race.OriginAnswered(answer) != SilentOriginStep.DeliverOrigin)
        {
            // The replica keeper is deciding whether the replica answers instead: held until it has.
            return;
        }

        End(requestId, out _);
        pending.ReplyTo.Tell(answer, Self);
    }

    /// <summary>
    /// The peer's answer to a request the replica answered: a state reply is acknowledged, so that the peer drops the
    /// connection as after a planned migration (the ack names the reply it sent, and no later incarnation of the
    /// connection sent that one); a reject handed nothing over.
    /// </summary>
    private void FenceLateAnswer(ControlMessage answer, ConnectionId cid)
    {
        if (answer is StateReply)
        {
            _log.Info("late state reply {0} from {1} for {2}, answered from this node's replica: acknowledged, so that the peer drops the connection", answer.RequestId, _peer, cid);
            Send(PeerManager, new StateAck(answer.RequestId, cid));
        }
    }

    /// <summary>The peer has left the request unanswered for <c>silent-origin-takeover</c>: the replica keeper may answer instead.</summary>
    private void OriginSilent(ulong requestId)
    {
        if (_replicas is not null && _pending.TryGetValue(requestId, out var pending) && pending.Race.OriginSilent() == SilentOriginStep.AskReplica)
        {
            _replicas.Tell(new TakeOverFromSilentOrigin(pending.Request, pending.ReplyTo, _peer), Self);
        }
    }

    private void ReplicaDecided(SilentOriginDecided decided)
    {
        if (!_pending.TryGetValue(decided.RequestId, out var pending))
        {
            return;
        }

        switch (pending.Race.ReplicaDecided(decided.AnsweredFromReplica, decided.TookOver))
        {
            case SilentOriginStep.ReplicaAnswered:
                End(decided.RequestId, out _);
                _log.Info("request {0} to {1} answered from this node's replica; the peer's answer is not used", decided.RequestId, _peer);
                if (!pending.Race.IsTakenOver)
                {
                    break;
                }

                if (pending.Race.OriginAnswer is { } held)
                {
                    FenceLateAnswer(held, pending.Request.MigratingCid);
                    break;
                }

                // Its answer is still to come, perhaps in chunks: reassembled, to be acknowledged.
                _takenOver[decided.RequestId] = pending.Request.MigratingCid;
                _assembler.Expect(decided.RequestId);
                Timers.StartSingleTimer(new ForgetTakenOver(decided.RequestId), new ForgetTakenOver(decided.RequestId), _settings.StateRequestTimeout * 2);
                break;
            case SilentOriginStep.DeliverOrigin:
                End(decided.RequestId, out _);
                pending.ReplyTo.Tell(pending.Race.OriginAnswer, Self);
                break;
            case SilentOriginStep.EndRequest:
                pending.DeferredEnd?.Invoke();
                break;
        }
    }

    private void Reassemble(StateReplyChunk chunk)
    {
        var result = _assembler.Add(chunk);
        switch (result.Status)
        {
            case AssemblyStatus.Completed:
                Complete(chunk.RequestId, result.Reply!);
                break;
            case AssemblyStatus.Buffered or AssemblyStatus.Duplicate:
                break;
            case AssemblyStatus.UnexpectedRequest:
                _log.Debug("chunk {0} of request {1} from {2} is for no pending request; dropped", chunk.ChunkIndex, chunk.RequestId, _peer);
                break;
            case AssemblyStatus.InconsistentChunk:
                _refusals.Refuse(RefusalClass.ControlMessageDropped, $"chunk {chunk.ChunkIndex} of request {chunk.RequestId} from {_peer} disagrees with its transfer; dropped");
                break;
            default:
                _refusals.Refuse(RefusalClass.ControlMessageDropped, $"state reply for request {chunk.RequestId} from {_peer} refused: {result.Status} {result.WireError}");
                Fail(chunk.RequestId, ToFailure(result.Status), deferrable: true);
                Sender.Tell(new AbandonStateTransfer(chunk.RequestId, StateTransferAbandonReason.ReplyRefused), Self);
                break;
        }
    }

    private void TimeOut(ulong requestId)
    {
        if (_pending.TryGetValue(requestId, out var deciding) && deciding.Race.RequestEnding() != SilentOriginStep.EndRequest)
        {
            // The replica keeper is deciding: the replica may still answer; if not, the request times out then.
            deciding.DeferredEnd = () => TimeOutNow(requestId);
            return;
        }

        TimeOutNow(requestId);
    }

    private void TimeOutNow(ulong requestId)
    {
        if (!End(requestId, out var pending))
        {
            return;
        }

        pending.ReplyTo.Tell(new StateRequestTimedOut(_peer, requestId, pending.Request.NewEndpointCid, _settings.StateRequestTimeout), Self);
        PeerManager.Tell(new AbandonStateTransfer(requestId, StateTransferAbandonReason.TimedOut), Self);
    }

    private void Fail(ulong requestId, StateRequestFailure reason, bool deferrable)
    {
        if (deferrable && _pending.TryGetValue(requestId, out var deciding) && deciding.Race.RequestEnding() != SilentOriginStep.EndRequest)
        {
            deciding.DeferredEnd = () => FailNow(requestId, reason);
            return;
        }

        FailNow(requestId, reason);
    }

    private void FailNow(ulong requestId, StateRequestFailure reason)
    {
        if (!End(requestId, out var pending))
        {
            return;
        }

        if (_replicas is not null && reason is StateRequestFailure.PeerRemoved or StateRequestFailure.PeerDisassociated)
        {
            // The origin died with the request in flight: its buddy, if this node is it, answers from the replica. A
            // lost association counts too: a client's failover can reach the buddy before the failure detector does,
            // and a live origin that only lost the association is fenced when it is back (docs/failover.md).
            // Unreachable does not: the failure detector says so only after its acceptable heartbeat pause, so the
            // request may have waited that long on an origin cut off but alive, and its client may have given up the
            // special SYN long before (mtcp.migration.failover.special-syn-timeout). A replica reinstated for it
            // would be consumed by an endpoint the client never completes, and the special SYN it sends next finds
            // none; refused instead, that next one is answered from the replica at once.
            _replicas.Tell(new AnswerFromReplica(pending.Request, pending.ReplyTo, _peer, reason));
            return;
        }

        pending.ReplyTo.Tell(new StateRequestFailed(_peer, requestId, pending.Request.NewEndpointCid, reason), Self);
    }

    /// <param name="deferrable">whether a request the replica keeper is deciding on may wait for its word (not when this connection stops).</param>
    private void FailAll(StateRequestFailure reason, bool deferrable)
    {
        if (_pending.Count > 0)
        {
            _log.Warning("failing {0} state requests to {1}: {2}", _pending.Count, _peer, reason);
        }

        foreach (var requestId in _pending.Keys.ToArray())
        {
            Fail(requestId, reason, deferrable);
        }
    }

    private bool End(ulong requestId, out PendingRequest pending)
    {
        if (!_pending.Remove(requestId, out pending!))
        {
            return false;
        }

        Timers.Cancel(new RequestDeadline(requestId));
        Timers.Cancel(new SilenceDeadline(requestId));
        _assembler.Abandon(requestId);
        return true;
    }

    private void Serve(StateRequest request)
    {
        if (!_serving.TryAdd(request.RequestId, Sender))
        {
            _refusals.Refuse(RefusalClass.ControlMessageDropped, $"state request {request.RequestId} from {_peer} is already being served; duplicate dropped");
            return;
        }

        // The requester gives up after the same timeout; an answer later than that would not be used.
        Timers.StartSingleTimer(new ServeDeadline(request.RequestId), new ServeDeadline(request.RequestId), _settings.StateRequestTimeout);
        _registry.Tell(new StateRequestReceived(_peer, request), Self);
    }

    private void Answer(ulong requestId, ControlMessage answer)
    {
        if (!_serving.Remove(requestId, out var requester))
        {
            _log.Info("{0} for request {1} of {2} answers no request being served; dropped", answer.GetType().Name, requestId, _peer);
            return;
        }

        Timers.Cancel(new ServeDeadline(requestId));
        Send(requester, answer);
    }

    /// <summary>A control message to the peer: sealed when this node has its cluster key, chunked when a reply is large.</summary>
    private void Send(ICanTell peer, ControlMessage message)
    {
        if (_sealing is null && message is not StateReply)
        {
            peer.Tell(message, Self);
            return;
        }

        foreach (var part in StateReplyTransfer.ToMessages(message, _settings, _sealing))
        {
            peer.Tell(part, Self);
        }
    }

    /// <summary>A control message from the peer, sealed or (before this node has a cluster key) not.</summary>
    private void FromPeer(ControlMessage message)
    {
        switch (message)
        {
            case StateRequest request:
                Serve(request);
                break;
            case StateReply reply:
                Complete(reply.RequestId, reply);
                break;
            case StateReject reject:
                Complete(reject.RequestId, reject);
                break;
            case StateAck ack:
                _registry.Tell(new StateAckReceived(_peer, ack), Self);
                break;
            case ConnectionTakenOver notice:
                _registry.Tell(new TakenOverReceived(_peer, notice), Self);
                break;
            case ReplicaAck replicaAck:
                // An ack for a connection no endpoint replicates here any more goes to the registry, which drops it.
                if (!_acks.TryDeliver(replicaAck, Self))
                {
                    _registry.Tell(new ReplicaAckReceived(_peer, replicaAck), Self);
                }

                break;
            case ReplicaState or ReplicaReadLog or ReplicaRelease when _replicas is not null:
                Holding(message);
                _replicas.Tell(new ReplicaUpdateReceived(_peer, message), Self);
                break;
            default:
                _refusals.Refuse(RefusalClass.ControlMessageDropped, $"{message.GetType().Name} from {_peer} dropped: this node keeps no replicas");
                break;
        }
    }

    private void OpenFromPeer(SealedControlMessage sealedMessage)
    {
        if (_sealing is null)
        {
            _refusals.Refuse(RefusalClass.ControlMessageDropped, $"sealed control message from {_peer} dropped: this node has no cluster key to open it");
            ControlSealing.CountNoKey();
            return;
        }

        var result = _sealing.TryOpen(sealedMessage.Envelope.Span, out var message);
        if (result != ControlOpenResult.Opened || message is null)
        {
            _refusals.Refuse(RefusalClass.ControlMessageDropped, $"control message from {_peer} dropped: {result}");
            return;
        }

        FromPeer(message);
    }

    private bool ReadReply(ReadOnlyMemory<byte> frame, [NotNullWhen(true)] out StateReply? reply, out ControlWireError error) =>
        _sealing is { } sealing ? sealing.TryOpenReply(frame, out reply, out error) : StateReply.TryDecode(frame.Span, out reply, out error);

    private void UseAuthenticator(IMigrationAuthenticator? authenticator)
    {
        _sealing = authenticator is null ? null : new ControlSealing(authenticator, ((ExtendedActorSystem)Context.System).Provider.DefaultAddress, _peer);
        _channels?.Dispose();
        _channels = null;
        if (_sealing is not null && _direct is not null)
        {
            // The channels carry only sealed messages: without the cluster key everything goes over Akka.Remote.
            _channels = new ReplicationChannelPath(((ExtendedActorSystem)Context.System).Provider.DefaultAddress, _peer, _direct, Self, _acks, _sealing, _refusals, _log);
            _channels.PeerPort(_peerChannelPort);
        }
    }

    /// <summary>
    /// A replica update or ack to the peer: on the channel that carries it while that is open (sealed as it would be
    /// here), else over Akka.Remote.
    /// </summary>
    private void SendReplication(ControlMessage message)
    {
        var link = message is ReplicaAck ? _channels?.ForAcks : _channels?.ForUpdates();
        if (link is not null && _sealing is { } sealing && link.Send(sealing.Seal(message)))
        {
            return;
        }

        Send(PeerManager, message);
    }

    /// <summary>
    /// The channel of this node's updates broke: what was queued or in flight on it, or the peer's acks of it, may be
    /// lost, and a connection whose last updates were lost would wait for their acks for ever. Each connection with
    /// updates unacknowledged sends the whole state again (the buddy ignores nothing it needs: acks of the updates
    /// before are ignored by the connection, and the whole state replaces what the buddy held).
    /// </summary>
    private void ResendInFlight()
    {
        foreach (var (_, endpoint) in _acks.TakeAwaiting())
        {
            endpoint?.Tell(new ReplicationPathLost(_peer), Self);
        }
    }

    /// <summary>A replica update from a local endpoint (the sender): its connection's acks go to it until it releases it or stops.</summary>
    private void Replicating(ControlMessage update)
    {
        if (Sender.IsNobody() || Sender.Path.Address.HasGlobalScope || update is not (ReplicaState or ReplicaReadLog or ReplicaRelease))
        {
            return;
        }

        if (update is not ReplicaRelease)
        {
            Remember(ReplicaCid(update));
        }
        else if (_acks.EndpointOf(ReplicaCid(update)) is { } endpoint && endpoint.Equals(Sender))
        {
            Forget(endpoint);
        }
    }

    /// <summary>The connection a replica update (whole state, read log or release) is about.</summary>
    private static ConnectionId ReplicaCid(ControlMessage update) =>
        ReplicaUpdate.TryGetCid(update, out var cid) ? cid : throw new ArgumentException($"{update.GetType().Name} is no replica update", nameof(update));

    private void Remember(ConnectionId cid)
    {
        var known = _acks.EndpointOf(cid);
        if (known is not null && known.Equals(Sender))
        {
            return;
        }

        if (known is not null)
        {
            Forget(known);
        }

        if (_replicatingCids.Remove(Sender, out var previous))
        {
            _acks.Unroute(previous);
        }
        else
        {
            Context.Watch(Sender);
        }

        _acks.Route(cid, Sender);
        _replicatingCids[Sender] = cid;
    }

    private void Forget(IActorRef endpoint)
    {
        if (_replicatingCids.Remove(endpoint, out var cid))
        {
            _acks.Unroute(cid);
            Context.Unwatch(endpoint);
        }
    }

    private void Holding(ControlMessage update)
    {
        var cid = ReplicaCid(update);
        if (update is ReplicaRelease)
        {
            _holding.Forget(cid);
            return;
        }

        _holding.Passed(cid, update.RequestId, Stopwatch.GetTimestamp());
    }

    /// <summary>The replica keeper acknowledged updates of a connection up to the ack's: how long each was held here.</summary>
    private void Held(ReplicaAck ack)
    {
        if (_holding.Acknowledged(ack, Stopwatch.GetTimestamp()) is { } held)
        {
            MigrationMetrics.ReplicaBuddyHold.Record(held.TotalSeconds);
        }
    }

    /// <summary>An update of this node's, now with the transport: its ack's arrival measures the round trip.</summary>
    private void Sent(ControlMessage update)
    {
        if (update is ReplicaState or ReplicaReadLog)
        {
            _acks.Sent(ReplicaCid(update), update.RequestId, Stopwatch.GetTimestamp());
        }
        else if (update is ReplicaRelease)
        {
            _acks.Released(ReplicaCid(update));
        }
    }

    private void DropServing(ulong requestId)
    {
        if (_serving.Remove(requestId))
        {
            Timers.Cancel(new ServeDeadline(requestId));
        }
    }

    private static StateRequestFailure ToFailure(AssemblyStatus status) => status switch
    {
        AssemblyStatus.ReplyTooLarge => StateRequestFailure.ReplyTooLarge,
        AssemblyStatus.ReassemblyBudgetExceeded => StateRequestFailure.ReassemblyBudgetExceeded,
        _ => StateRequestFailure.MalformedReply,
    };

    private sealed class PendingRequest(StateRequest request, IActorRef replyTo)
    {
        public StateRequest Request { get; } = request;

        public IActorRef ReplyTo { get; } = replyTo;

        /// <summary>Which answers the requester: the peer, or this node's replica once the peer stays silent.</summary>
        public SilentOriginRace<ControlMessage> Race { get; } = new();

        /// <summary>The request's end (timeout or failure) that came while the replica keeper decided.</summary>
        public Action? DeferredEnd { get; set; }
    }

    /// <summary>Timer key and message: the requested state is overdue.</summary>
    private sealed record RequestDeadline(ulong RequestId);

    /// <summary>Timer key and message: the peer's answer to a request the replica answered will not come any more.</summary>
    private sealed record ForgetTakenOver(ulong RequestId);

    /// <summary>Timer key and message: the peer has been silent on the request for <c>silent-origin-takeover</c>.</summary>
    private sealed record SilenceDeadline(ulong RequestId);

    /// <summary>Timer key and message: the registry's answer would now come too late for the peer.</summary>
    private sealed record ServeDeadline(ulong RequestId);
}

/// <summary>
/// The manager's word to a control connection that its peer is gone or unreachable; the connection fails its
/// requests first and then stops itself when told to (a stop from outside would overtake this message).
/// </summary>
internal sealed record PeerLost(StateRequestFailure Reason, bool StopConnection = false);
