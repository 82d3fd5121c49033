using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Remote;
using Akka.Remote.Transport;
using Akka.TestKit;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Control;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests;

/// <summary>
/// Server nodes in separate ActorSystems on loopback forming an Akka.Cluster with the reference timings: the
/// service directories' alternate lists and control mappings follow members joining, leaving and crashing, and
/// the control connections fail requests to a crashed node promptly.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class ClusterDiscoveryTests : Akka.TestKit.Xunit2.TestKit
{
    /// <summary>Bound on forming a 3-node cluster and on a change reaching every view (measured: a few seconds).</summary>
    private static readonly TimeSpan Convergence = TimeSpan.FromSeconds(20);

    /// <summary>A node that lost its peers may wait on their associations while it stops.</summary>
    private static readonly TimeSpan ShutdownPatience = TimeSpan.FromSeconds(20);

    private readonly ITestOutputHelper _output;
    private readonly List<Node> _nodes = [];

    public ClusterDiscoveryTests(ITestOutputHelper output)
        : base(TestNodes.ClusterMember(["127.0.0.11:7001"]), TestNodes.ClusterSystemName, output)
    {
        _output = output;
        _nodes.Add(new Node(Sys, new ServerEndpoint(IpAddress.Parse("127.0.0.11"), 7001), this));
    }

    protected override void AfterAll()
    {
        foreach (var node in _nodes.Skip(1))
        {
            Shutdown(node.System, ShutdownPatience, verifySystemShutdown: true);
        }

        base.AfterAll();
    }

    private Node StartNode(int index, string overrides = "")
    {
        var endpoint = new ServerEndpoint(IpAddress.Parse($"127.0.0.{10 + index}"), (ushort)(7000 + index));
        var system = ActorSystem.Create(TestNodes.ClusterSystemName, TestNodes.ClusterMember([endpoint.ToString()], overrides).WithFallback(DefaultConfig));
        var node = new Node(system, endpoint, this);
        _nodes.Add(node);
        return node;
    }

    /// <summary>Starts nodes 2 and 3, joins all three through node 1, and waits until every view lists the other two.</summary>
    private async Task<TimeSpan> FormThreeNodeClusterAsync(string overrides = "")
    {
        StartNode(2, overrides);
        StartNode(3, overrides);
        var started = Stopwatch.GetTimestamp();
        var seed = _nodes[0].Address;
        foreach (var node in _nodes)
        {
            Akka.Cluster.Cluster.Get(node.System).JoinSeedNodes([seed]);
        }

        foreach (var node in _nodes)
        {
            await node.AwaitViewAsync(_nodes);
        }

        return Stopwatch.GetElapsedTime(started);
    }

    [Fact]
    public async Task Three_nodes_must_form_a_cluster_whose_views_converge()
    {
        var formation = await FormThreeNodeClusterAsync();
        _output.WriteLine($"3-node cluster formed and views converged in {formation.TotalMilliseconds:F0} ms");

        foreach (var node in _nodes)
        {
            var view = await node.CurrentViewAsync();
            Assert.DoesNotContain(node.ServiceEndpoint, view.Alternates.Servers);
            Assert.Equal(3, view.ControlMappings.Count);
            foreach (var member in _nodes)
            {
                Assert.True(view.ControlMappings.TryGetControlAddress(member.ServiceEndpoint, out var control));
                Assert.Equal(member.Address, control);
            }
        }
    }

    [Fact]
    public async Task Node_that_leaves_must_disappear_and_a_joiner_must_appear()
    {
        await FormThreeNodeClusterAsync();
        var leaver = _nodes[1];

        var started = Stopwatch.GetTimestamp();
        await Akka.Cluster.Cluster.Get(leaver.System).LeaveAsync();
        var remaining = _nodes.Where(node => node != leaver).ToList();
        foreach (var node in remaining)
        {
            await node.AwaitViewAsync(remaining);
        }

        _output.WriteLine($"left node gone from every view in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");

        var joiner = StartNode(4);
        started = Stopwatch.GetTimestamp();
        Akka.Cluster.Cluster.Get(joiner.System).JoinSeedNodes([_nodes[0].Address]);
        remaining.Add(joiner);
        foreach (var node in remaining)
        {
            await node.AwaitViewAsync(remaining);
        }

        _output.WriteLine($"joiner in every view in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task Killed_node_must_disappear_from_the_views_and_fail_the_requests_in_flight_to_it()
    {
        // A timeout far beyond the test's patience: the failure must come from losing the peer.
        const string LongTimeout = "mtcp.control.state-request-timeout = 60s";
        var requesterRegistry = CreateTestProbe();
        var requesterManager = Sys.StartControlConnectionManager(requesterRegistry.Ref);
        await FormThreeNodeClusterAsync(LongTimeout);
        var victim = _nodes[2];
        var victimRegistry = CreateTestProbe(victim.System);
        victim.System.StartControlConnectionManager(victimRegistry.Ref);
        var endpoint = CreateTestProbe();

        var request = new StateRequest(9, ControlSamples.MigratingCid, ControlSamples.NewEndpointCid, new SeqNumber(1), ReadOnlyMemory<byte>.Empty);
        requesterManager.Tell(new RequestState(victim.Address, request, endpoint.Ref));
        await victimRegistry.ExpectMsgAsync<StateRequestReceived>(Convergence);

        var killed = Stopwatch.GetTimestamp();
        await victim.System.Terminate();

        var failed = await endpoint.ExpectMsgAsync<StateRequestFailed>(Convergence);
        _output.WriteLine($"request in flight to the killed node failed ({failed.Reason}) after {Stopwatch.GetElapsedTime(killed).TotalMilliseconds:F0} ms");
        Assert.Equal(9UL, failed.RequestId);
        Assert.Equal(victim.Address, failed.Peer);

        var survivors = _nodes.Where(node => node != victim).ToList();
        foreach (var node in survivors)
        {
            await node.AwaitViewAsync(survivors);
        }

        _output.WriteLine($"killed node gone from every view after {Stopwatch.GetElapsedTime(killed).TotalMilliseconds:F0} ms");

        requesterManager.Tell(new RequestState(victim.Address, request, endpoint.Ref));
        var refused = await endpoint.ExpectMsgAsync<StateRequestFailed>(TimeSpan.FromSeconds(3));
        Assert.Contains(refused.Reason, new[] { StateRequestFailure.PeerUnreachable, StateRequestFailure.PeerRemoved });
    }

    [Fact]
    public async Task Unreachable_node_must_fail_the_requests_in_flight_to_it_and_refuse_new_ones()
    {
        // The throttler transport adapter can blackhole one association without closing it, so the peer is
        // lost only through the failure detector (no disassociation), as behind a network partition.
        const string Partitionable = """
            mtcp.control.state-request-timeout = 60s
            akka.remote.dot-netty.tcp.applied-adapters = [trttl]
            """;
        var requester = StartNode(5, Partitionable);
        var victim = StartNode(6, Partitionable);
        var requesterManager = requester.System.StartControlConnectionManager(CreateTestProbe(requester.System).Ref);
        var victimRegistry = CreateTestProbe(victim.System);
        victim.System.StartControlConnectionManager(victimRegistry.Ref);
        Akka.Cluster.Cluster.Get(requester.System).Join(requester.Address);
        Akka.Cluster.Cluster.Get(victim.System).Join(requester.Address);
        await requester.AwaitViewAsync([requester, victim]);
        var endpoint = CreateTestProbe(requester.System);
        var request = new StateRequest(10, ControlSamples.MigratingCid, ControlSamples.NewEndpointCid, new SeqNumber(1), ReadOnlyMemory<byte>.Empty);
        requesterManager.Tell(new RequestState(victim.Address, request, endpoint.Ref));
        await victimRegistry.ExpectMsgAsync<StateRequestReceived>(Convergence);

        var partitioned = Stopwatch.GetTimestamp();
        Assert.True(await ((IRemoteActorRefProvider)((ExtendedActorSystem)requester.System).Provider).Transport.ManagementCommand(
            new SetThrottle(victim.Address, ThrottleTransportAdapter.Direction.Both, Blackhole.Instance)));

        var failed = await endpoint.ExpectMsgAsync<StateRequestFailed>(Convergence);
        _output.WriteLine($"request in flight to the unreachable node failed ({failed.Reason}) after {Stopwatch.GetElapsedTime(partitioned).TotalMilliseconds:F0} ms");
        Assert.Equal(StateRequestFailure.PeerUnreachable, failed.Reason);
        await requester.AwaitViewAsync([requester]);

        requesterManager.Tell(new RequestState(victim.Address, request, endpoint.Ref));
        Assert.Equal(StateRequestFailure.PeerUnreachable, (await endpoint.ExpectMsgAsync<StateRequestFailed>(TimeSpan.FromSeconds(3))).Reason);

        // Heal the partition so that both systems can shut down without waiting on a blackholed association.
        await ((IRemoteActorRefProvider)((ExtendedActorSystem)requester.System).Provider).Transport.ManagementCommand(
            new SetThrottle(victim.Address, ThrottleTransportAdapter.Direction.Both, Unthrottled.Instance));
    }

    /// <summary>One server node: its system, the endpoint it announces, and a probe subscribed to its directory.</summary>
    private sealed class Node
    {
        public Node(ActorSystem system, ServerEndpoint serviceEndpoint, Akka.TestKit.Xunit2.TestKit kit)
        {
            System = system;
            ServiceEndpoint = serviceEndpoint;
            Address = Akka.Cluster.Cluster.Get(system).SelfAddress;
            Directory = system.StartServiceDirectory();
            Subscriber = kit.CreateTestProbe(system);
            Directory.Tell(new SubscribeAlternateServers(Subscriber.Ref));
        }

        public ActorSystem System { get; }

        public ServerEndpoint ServiceEndpoint { get; }

        public Address Address { get; }

        public IActorRef Directory { get; }

        public TestProbe Subscriber { get; }

        /// <summary>Waits for the view in which exactly <paramref name="members"/> are this node's cluster, in address order.</summary>
        public async Task AwaitViewAsync(IReadOnlyCollection<Node> members)
        {
            var expected = new AlternateServerList(
                members.Where(member => member != this).OrderBy(member => member.Address, Member.AddressOrdering).Select(member => member.ServiceEndpoint));
            await Subscriber.FishForMessageAsync<AlternateServersChanged>(
                view => view.Alternates.Equals(expected) && view.ControlMappings.Count == members.Count,
                Convergence);
        }

        public async Task<AlternateServersChanged> CurrentViewAsync()
        {
            Directory.Tell(GetAlternateServers.Instance, Subscriber.Ref);
            return await Subscriber.FishForMessageAsync<AlternateServersChanged>(_ => true, Convergence);
        }
    }
}
