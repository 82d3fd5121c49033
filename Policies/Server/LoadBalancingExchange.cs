using Akka.Actor;
using Akka.Event;
using Mtcp.Actors.Api;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// A server node's load balancing across the cluster (thesis 6.2.2, 6.2.3), one per node at
/// <c>/user/mtcp-load-balancing</c>. It runs a <see cref="ServerPolicyActor"/> per service port of the node, since
/// a connection may only move to the same application on another node, and carries their traffic: each policy's
/// <see cref="NodeLoadReport"/> to the exchange of every other member, a <see cref="PullConnections"/> to the member
/// serving the loaded peer, and what peers send to the policy of the same port. Observations of this node's
/// connections (<see cref="ConnectionAccepted"/>, <see cref="ConnectionEnded"/>, <see cref="BytesServed"/>) go to the
/// policy of the connection's port; decisions go to <c>decisions</c>.
/// </summary>
/// <remarks>
/// A member speaks only for its own endpoints: a report or pull naming an endpoint the cluster view
/// (<see cref="ServiceView.Nodes"/>) maps to another member is dropped, logged once per member and counted
/// (<c>mtcp.policy.refused</c>); one naming an endpoint nobody announced yet is dropped quietly. Received reports and pulls are stamped with this node's clock, since the peers'
/// monotonic clocks are not comparable with it.
/// </remarks>
public sealed class LoadBalancingExchange : ReceiveActor
{
    public const string ActorName = "mtcp-load-balancing";

    private readonly Func<Instant> _clock;
    private readonly Dictionary<ushort, IActorRef> _policyByPort = [];
    private readonly HashSet<(Address, string)> _refusalsLogged = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Address _self;
    private ServiceView _view = new([], ServiceEndpoints: 0);

    public LoadBalancingExchange(IReadOnlyCollection<ServerEndpoint> endpoints, Address self, ServerPolicySettings settings, IActorRef decisions, Func<Instant> clock)
    {
        _clock = clock;
        _self = self;
        foreach (var endpoint in endpoints)
        {
            _policyByPort[endpoint.Port] = Context.ActorOf(ServerPolicyActor.Props(endpoint, settings, decisions, Self, clock), $"policy-{endpoint.Port}");
        }

        Receive<ServiceView>(view => _view = view);
        Receive<NodeLoadReport>(OnReport);
        Receive<PullConnections>(OnPull);
        Receive<ConnectionAccepted>(accepted => ToLocalPolicy(accepted.Connection, accepted));
        Receive<ConnectionEnded>(ended => ToLocalPolicy(ended.Connection, ended));
        Receive<BytesServed>(served => ToLocalPolicy(served.Connection, served));
    }

    /// <param name="endpoints">this node's service endpoints, one policy each.</param>
    /// <param name="self">this node's Akka.Remote address, as <see cref="ServiceView.Nodes"/> names it.</param>
    public static Props Props(IReadOnlyCollection<ServerEndpoint> endpoints, Address self, ServerPolicySettings settings, IActorRef decisions, Func<Instant> clock)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(self);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(decisions);
        ArgumentNullException.ThrowIfNull(clock);
        return Akka.Actor.Props.Create(() => new LoadBalancingExchange(endpoints, self, settings, decisions, clock));
    }

    private bool FromLocalPolicy => _policyByPort.ContainsValue(Sender);

    private void OnReport(NodeLoadReport report)
    {
        if (FromLocalPolicy)
        {
            foreach (var member in _view.Nodes.Values.Distinct().Where(member => !member.Equals(_self)))
            {
                ExchangeAt(member).Tell(report, Self);
            }

            return;
        }

        if (SpeaksFor(report.Node, "load report") && _policyByPort.TryGetValue(report.Node.Port, out var policy))
        {
            policy.Tell(report with { At = _clock() });
        }
    }

    private void OnPull(PullConnections pull)
    {
        if (FromLocalPolicy)
        {
            if (_view.Nodes.TryGetValue(pull.LoadedPeer, out var member))
            {
                ExchangeAt(member).Tell(pull, Self);
            }

            return;
        }

        if (SpeaksFor(pull.Requester, "pull request")
            && _view.Nodes.TryGetValue(pull.LoadedPeer, out var owner) && owner.Equals(_self)
            && _policyByPort.TryGetValue(pull.LoadedPeer.Port, out var policy))
        {
            policy.Tell(pull with { At = _clock() });
        }
    }

    /// <summary>
    /// True when the sender is the member the cluster view maps <paramref name="endpoint"/> to. A message about an
    /// endpoint the view does not know yet (a member's first reports race its announcement) is dropped quietly; one
    /// from another member than the endpoint's is a forgery: counted, and logged once per member.
    /// </summary>
    private bool SpeaksFor(ServerEndpoint endpoint, string what)
    {
        var sender = Sender.Path.Address;
        if (!_view.Nodes.TryGetValue(endpoint, out var owner))
        {
            _log.Debug("Dropped a {0} for {1} from {2}: no member announced that endpoint yet", what, endpoint, sender);
            return false;
        }

        if (owner.Equals(sender))
        {
            return true;
        }

        PolicyMetrics.CountRefused(what);
        if (_refusalsLogged.Add((sender, what)))
        {
            _log.Warning("Dropped a {0} for {1} from {2}: that endpoint is {3}'s (further ones from this member are only counted)", what, endpoint, sender, owner);
        }

        return false;
    }

    private void ToLocalPolicy(ConnectionId connection, object observation)
    {
        if (Sender.Path.Address.HasLocalScope && _policyByPort.TryGetValue(connection.ServerPort, out var policy))
        {
            policy.Tell(observation);
        }
    }

    private ActorSelection ExchangeAt(Address member) => Context.ActorSelection(new RootActorPath(member) / "user" / ActorName);
}
