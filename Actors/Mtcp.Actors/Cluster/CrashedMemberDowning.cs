using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Remote;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// One per server node, at <c>/user/mtcp-crash-downing</c> (<see cref="ActorName"/>): downs a member once its control
/// port refuses connections, probing it when the failure detector marks it unreachable and, sooner, when its control
/// connection drops (Akka.Remote's disassociation: a killed process's sockets are closed by its kernel at once, while
/// the failure detector waits out its acceptable heartbeat pause). The takeover of its connections follows the down
/// (docs/failover.md). Heartbeats alone cannot tell a crashed node
/// from a partitioned one, so the split-brain resolver keeps the majority, and on an even split (a pair of nodes, or
/// one survivor after a planned drain) the side with the lowest address: the survivor of a crash would down itself
/// and take the crashed node's connections with it (its buddy replicas, see docs/failover.md). A refused connection is
/// proof the other way: the member's host answers, but no process listens on its control port any more. A silent port
/// (a partition, a host that is gone) proves nothing and leaves the decision to the resolver.
/// </summary>
internal sealed class CrashedMemberDowning : ReceiveActor, IWithTimers
{
    /// <summary>The name this actor runs under, a child of <c>/user</c>.</summary>
    public const string ActorName = "mtcp-crash-downing";

    private readonly Akka.Cluster.Cluster _cluster;
    private readonly TimeSpan _probeTimeout;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>
    /// Members suspected (unreachable, or their control connection dropped) and not yet found crashed, each with its
    /// unique address (a restart is a new member).
    /// </summary>
    private readonly Dictionary<Address, UniqueAddress> _suspects = [];

    public CrashedMemberDowning(TimeSpan probeTimeout)
    {
        _probeTimeout = probeTimeout;
        _cluster = Akka.Cluster.Cluster.Get(Context.System);
        Receive<ClusterEvent.UnreachableMember>(unreachable =>
        {
            if (unreachable.Member.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving or MemberStatus.Joining)
            {
                _suspects[unreachable.Member.Address] = unreachable.Member.UniqueAddress;
                Probe(unreachable.Member.UniqueAddress);
            }
        });
        Receive<DisassociatedEvent>(OnDisassociated);
        Receive<ClusterEvent.ReachableMember>(reachable => Forget(reachable.Member.Address));
        Receive<ClusterEvent.MemberRemoved>(removed => Forget(removed.Member.Address));
        Receive<ClusterEvent.MemberDowned>(downed => Forget(downed.Member.Address));
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        Receive<ControlPortProbed>(Probed);
        Receive<ProbeAgain>(again =>
        {
            if (_suspects.TryGetValue(again.Member.Address, out var suspect) && suspect.Equals(again.Member))
            {
                Probe(again.Member);
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(TimeSpan probeTimeout) => Akka.Actor.Props.Create(() => new CrashedMemberDowning(probeTimeout));

    protected override void PreStart()
    {
        _cluster.Subscribe(
            Self,
            ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IReachabilityEvent),
            typeof(ClusterEvent.MemberRemoved),
            typeof(ClusterEvent.MemberDowned));
        Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
    }

    protected override void PostStop()
    {
        _cluster.Unsubscribe(Self);
        Context.System.EventStream.Unsubscribe(Self);
    }

    /// <summary>
    /// The control connection to a member dropped: one probe now. A refusal downs the member seconds before its
    /// heartbeats would be missed; anything else leaves it to the failure detector (a dropped connection alone proves
    /// nothing: Akka.Remote reconnects).
    /// </summary>
    private void OnDisassociated(DisassociatedEvent disassociated)
    {
        var member = _cluster.State.Members.FirstOrDefault(m => m.Address.Equals(disassociated.RemoteAddress));
        if (member is { Status: MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving or MemberStatus.Joining }
            && !_suspects.ContainsKey(member.Address))
        {
            _suspects[member.Address] = member.UniqueAddress;
            Probe(member.UniqueAddress);
        }
    }

    private void Forget(Address member)
    {
        _suspects.Remove(member);
        Timers.Cancel(member);
    }

    private void Probe(UniqueAddress member)
    {
        var host = member.Address.Host ?? throw new InvalidOperationException($"member {member.Address} has no host");
        var port = member.Address.Port ?? throw new InvalidOperationException($"member {member.Address} has no port");
        ProbeControlPortAsync(host, port, _probeTimeout)
            .PipeTo(Self, success: outcome => new ControlPortProbed(member, outcome));
    }

    private void Probed(ControlPortProbed probed)
    {
        if (!_suspects.TryGetValue(probed.Member.Address, out var suspect) || !suspect.Equals(probed.Member))
        {
            return;
        }

        if (probed.Outcome == ControlPortOutcome.Refused)
        {
            _suspects.Remove(probed.Member.Address);
            _log.Warning(
                "member {0} {1} and its control port refuses connections: its process is gone; downing it so that the rest of the service goes on",
                probed.Member.Address,
                _cluster.State.Unreachable.Any(m => m.UniqueAddress.Equals(probed.Member)) ? "is unreachable" : "dropped its control connection");
            _cluster.Down(probed.Member.Address);
            return;
        }

        // Silent or answering: a partition, a host that is gone, or a stalled process. Ask again while it stays
        // unreachable; a crash on a host that still runs shows up as a refusal. A member suspected only for a dropped
        // control connection, and still reachable, is forgotten (the failure detector has the last word).
        if (!_cluster.State.Unreachable.Any(m => m.UniqueAddress.Equals(probed.Member)))
        {
            _suspects.Remove(probed.Member.Address);
            return;
        }

        Timers.StartSingleTimer(probed.Member.Address, new ProbeAgain(probed.Member), _probeTimeout);
    }

    /// <summary>A TCP connect to the member's control port: refused (RST), accepted, or nothing within the timeout.</summary>
    internal static async Task<ControlPortOutcome> ProbeControlPortAsync(string host, int port, TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(host, port, cancellation.Token).ConfigureAwait(false);
            return ControlPortOutcome.Accepted;
        }
        catch (SocketException refused) when (refused.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return ControlPortOutcome.Refused;
        }
        catch (Exception failure) when (failure is SocketException or OperationCanceledException)
        {
            return ControlPortOutcome.NoAnswer;
        }
    }

    private sealed record ControlPortProbed(UniqueAddress Member, ControlPortOutcome Outcome);

    private sealed record ProbeAgain(UniqueAddress Member);
}

/// <summary>What a connect to a member's control port showed.</summary>
internal enum ControlPortOutcome
{
    /// <summary>The connection was accepted: a process listens there.</summary>
    Accepted,

    /// <summary>The host answered with a reset: nothing listens there.</summary>
    Refused,

    /// <summary>No answer within the timeout, or the host could not be reached.</summary>
    NoAnswer,
}
