using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Migration;
using Mtcp.Stack.Migration;

namespace Mtcp.Actors.Replication;

/// <summary>
/// One per server node, a child of its control connection manager: the buddy's side of buddy replication. It keeps
/// the replicas other nodes send (a <see cref="ReplicaStore{TOrigin}"/> keyed by origin node) and answers each update
/// that completes a state or extends its read log with an ack, through the control connection it came on.
/// </summary>
internal sealed class ReplicaKeeper : ReceiveActor
{
    public const string ActorName = "replicas";

    private readonly ReplicaStore<Address> _store;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public ReplicaKeeper(ControlSettings settings)
    {
        _store = new ReplicaStore<Address>(settings.MaxStateReplySize);
        Receive<ReplicaUpdateReceived>(received =>
        {
            var before = _store.Count;
            if (_store.Apply(received.Origin, received.Update) is { } ack)
            {
                Sender.Tell(new ReplicateToPeer(ack));
                if (ack.Status == Wire.Control.ReplicaAckStatus.NeedsState)
                {
                    _log.Info("replica of {0} from {1} could not take update {2}; asked for the whole state", ack.Cid, received.Origin, ack.RequestId);
                }
            }

            MigrationMetrics.ReplicasHeld.Add(_store.Count - before);
        });
        Receive<GetReplicaStatistics>(_ => Sender.Tell(Statistics()));
    }

    public static Props Props(ControlSettings settings) => Akka.Actor.Props.Create(() => new ReplicaKeeper(settings));

    protected override void PostStop()
    {
        MigrationMetrics.ReplicasHeld.Add(-_store.Count);
        base.PostStop();
    }

    private ReplicaStatistics Statistics()
    {
        var byOrigin = new Dictionary<Address, int>();
        foreach (var origin in _store.Origins)
        {
            byOrigin[origin] = _store.HeldFrom(origin).Count;
        }

        return new ReplicaStatistics(byOrigin);
    }
}
