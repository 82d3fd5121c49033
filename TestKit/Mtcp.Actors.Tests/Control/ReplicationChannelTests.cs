using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Diagnostics;
using Mtcp.Actors.Replication;
using Mtcp.Hosting;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// The direct replication channel between two nodes of one process (docs/failover.md): a serving node's replica
/// updates reach the buddy's replica keeper, and its acks the endpoint, on the channel once it is open (over the control
/// connection before); when the channel cannot be opened or breaks, updates go over the control connection and the
/// endpoints with updates in flight are told to send the whole state again. On loopback, with the TLS options of the
/// nodes' <see cref="ControlPlaneSecurity"/>, certificates of a test CA.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class ReplicationChannelTests : Akka.TestKit.Xunit2.TestKit
{
    internal static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    internal static readonly MigrationAuthenticator ClusterKey = MigrationAuthenticator.FromKey("replication channel test key 32b"u8);

    /// <summary>Generous for a loaded machine: the channel's own handshakes must finish within it.</summary>
    internal const string ChannelConfig = """
        mtcp.migration.buddy-channel.transport = direct
        mtcp.migration.buddy-channel.handshake-timeout = 5s
        mtcp.migration.buddy-channel.retry-interval = 60s
        mtcp.migration.buddy-channel.max-handshakes = 4

        """;

    private readonly ChannelPair _pair;

    /// <summary>The serving node on 127.0.0.3, the buddy on 127.0.0.2: a channel must leave from its node's own host.</summary>
    public ReplicationChannelTests()
        : base(OnHost("127.0.0.3"), "serving")
    {
        _pair = new ChannelPair(this, Sys, OnHost("127.0.0.2"));
    }

    /// <summary>A node of these tests with its control address on <paramref name="host"/>.</summary>
    internal static Config OnHost(string host) =>
        ConfigurationFactory.ParseString($"akka.remote.dot-netty.tcp.hostname = \"{host}\"").WithFallback(TestNodes.Remote(ChannelConfig));

    protected override void AfterAll()
    {
        _pair.Dispose();
        base.AfterAll();
    }

    [Fact]
    public async Task Updates_and_acks_must_go_on_the_channel_once_it_is_open()
    {
        _pair.AnnounceBuddyPort(_pair.Listener.Port);
        var endpoint = CreateTestProbe();

        // The first update opens the channel; it goes over the control connection meanwhile.
        _pair.Replicate(ChannelPair.WholeState(1), endpoint);
        Assert.Equal(ReplicaAckStatus.Held, (await endpoint.ExpectMsgAsync<ReplicaAckReceived>(Patience)).Ack.Status);
        await AwaitConditionAsync(async () => (await _pair.ServingChannels()).ToPeer, Patience);

        var before = await _pair.ServingChannels();
        _pair.Replicate(ChannelPair.ReadLog(2, ChannelPair.StateEnd, "the client's bytes"u8.ToArray()), endpoint);
        var ack = await endpoint.ExpectMsgAsync<ReplicaAckReceived>(Patience);

        Assert.Equal((2UL, ReplicaAckStatus.Held), (ack.Ack.RequestId, ack.Ack.Status));
        var serving = await _pair.ServingChannels();
        var buddy = await _pair.BuddyChannels();
        Assert.True(serving.FramesSent > before.FramesSent, "the read log did not go on the channel");
        Assert.True(serving.FramesReceived > before.FramesReceived, "its ack did not come back on the channel");
        Assert.True(buddy.FromPeer);
        Assert.Equal(1, (await _pair.BuddyReplicas()).HeldByOrigin[_pair.Serving]);
        Assert.Equal(0, _pair.BuddyRefusals);
    }

    [Fact]
    public async Task Updates_must_go_over_the_control_connection_when_the_channel_cannot_be_opened()
    {
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Parse(_pair.Buddy.Host!), 0));
        _pair.AnnounceBuddyPort((ushort)((IPEndPoint)closed.LocalEndPoint!).Port);
        var endpoint = CreateTestProbe();

        _pair.Replicate(ChannelPair.WholeState(1), endpoint);
        await endpoint.ExpectMsgAsync<ReplicaAckReceived>(Patience);
        for (ulong update = 2; update <= 4; update++)
        {
            _pair.Replicate(ChannelPair.ReadLog(update, ChannelPair.StateEnd + (int)(update - 2), [(byte)update]), endpoint);
            var ack = await endpoint.ExpectMsgAsync<ReplicaAckReceived>(Patience);
            Assert.Equal((update, ReplicaAckStatus.Held), (ack.Ack.RequestId, ack.Ack.Status));
        }

        Assert.False((await _pair.ServingChannels()).ToPeer);
    }

    [Fact]
    public async Task A_channel_that_breaks_with_updates_in_flight_must_have_them_sent_again_over_the_control_connection()
    {
        using var proxy = new CuttableProxy(IPAddress.Parse(_pair.Serving.Host!), new IPEndPoint(IPAddress.Parse(_pair.Buddy.Host!), _pair.Listener.Port));
        _pair.AnnounceBuddyPort(proxy.Port);
        var endpoint = CreateTestProbe();
        _pair.Replicate(ChannelPair.WholeState(1), endpoint);
        await endpoint.ExpectMsgAsync<ReplicaAckReceived>(Patience);
        await AwaitConditionAsync(async () => (await _pair.ServingChannels()).ToPeer, Patience);

        // The buddy's acks stop on the way back; the update's ack is lost with the channel.
        proxy.HoldAnswers();
        _pair.Replicate(ChannelPair.ReadLog(2, ChannelPair.StateEnd, [42]), endpoint);
        await AwaitConditionAsync(async () => (await _pair.BuddyChannels()).FramesSent > 0, Patience);
        proxy.Cut();

        var lost = await endpoint.ExpectMsgAsync<ReplicationPathLost>(Patience);
        Assert.Equal(_pair.Buddy, lost.Buddy);
        await AwaitConditionAsync(async () => !(await _pair.ServingChannels()).ToPeer, Patience);

        // The endpoint's whole state of a new generation goes over the control connection and is held.
        _pair.Replicate(ChannelPair.WholeState(3, generation: 2), endpoint);
        var ack = await endpoint.FishForMessageAsync<ReplicaAckReceived>(received => received.Ack.RequestId == 3, Patience);
        Assert.Equal(ReplicaAckStatus.Held, ack.Ack.Status);
    }

    [Fact]
    public void Settings_must_read_the_reference_and_refuse_an_unknown_transport()
    {
        var reference = ReplicationChannelSettings.Create(MtcpConfig.Reference);
        Assert.Equal(ReplicationTransport.Direct, reference.Transport);
        Assert.Equal(0, reference.Port);
        Assert.Equal(ControlSettings.Create(MtcpConfig.Reference).MaximumFrameSize, reference.MaxFrameLength);

        Assert.Throws<ConfigurationException>(() => ReplicationChannelSettings.Create(
            ConfigurationFactory.ParseString("mtcp.migration.buddy-channel.transport = carrier-pigeon").WithFallback(MtcpConfig.Reference)));
    }

    /// <summary>
    /// Two nodes: this test's system serving, a second one as buddy with the channel's listener, each with its control
    /// connection manager, the cluster key and TLS of one test CA; the buddy's members are the two.
    /// </summary>
    internal sealed class ChannelPair : IDisposable
    {
        public static readonly SeqNumber StateEnd = ControlSamples.Reply.LastAckSent;

        private readonly Akka.TestKit.Xunit2.TestKit _test;
        private readonly DirectoryInfo _certificates = Directory.CreateTempSubdirectory("mtcp-replication-channel-");
        private readonly IActorRef _servingManager;
        private readonly IActorRef _buddyManager;
        private readonly Dictionary<(string Cluster, string Name), ControlPlaneSecurity> _securities = [];

        public ChannelPair(Akka.TestKit.Xunit2.TestKit test, ActorSystem serving, Config buddy)
        {
            _test = test;
            BuddySystem = ActorSystem.Create("buddy", buddy);
            Serving = TestNodes.AddressOf(serving);
            Buddy = TestNodes.AddressOf(BuddySystem);
            var settings = ReplicationChannelSettings.Create(serving.Settings.Config);
            _servingManager = serving.StartControlConnectionManager(test.CreateTestProbe().Ref, direct: new DirectReplication(settings, Security("cluster", "serving").ReplicationChannel!));
            BuddyDirect = new DirectReplication(settings, Security("cluster", "buddy").ReplicationChannel!);
            _buddyManager = BuddySystem.StartControlConnectionManager(test.CreateTestProbe(BuddySystem).Ref, direct: BuddyDirect);
            foreach (var manager in new[] { _servingManager, _buddyManager })
            {
                manager.Ask<ControlAuthenticatorInUse>(new UseControlAuthenticator(ClusterKey), Patience).Wait();
            }

            Members = [Serving, Buddy];
            Listener = ReplicationChannelListener.Start(BuddySystem, Buddy, BuddyDirect, ClusterKey, _buddyManager, address => Members.Contains(address));
        }

        public ActorSystem BuddySystem { get; }

        public Address Serving { get; }

        public Address Buddy { get; }

        public DirectReplication BuddyDirect { get; }

        public ReplicationChannelListener Listener { get; }

        /// <summary>Who the buddy's listener takes for a member.</summary>
        public HashSet<Address> Members { get; }

        public long BuddyRefusals => RefusalLog.Get(BuddySystem).Total(RefusalClass.ReplicationChannelRefused);

        /// <summary>A node's security of the CA <paramref name="cluster"/> (made at its first use), certificate <paramref name="name"/> for 127.0.0.1.</summary>
        public ControlPlaneSecurity Security(string cluster, string name)
        {
            if (_securities.TryGetValue((cluster, name), out var known))
            {
                return known;
            }

            var certificates = Path.Combine(_certificates.FullName, cluster);
            if (!File.Exists(ClusterCertificates.FilesOf(certificates, ClusterCertificates.AuthorityName).CertificatePath))
            {
                ClusterCertificates.CreateAuthority(certificates, $"mtcp-test-{cluster}-ca", TimeSpan.FromDays(1));
            }

            var node = ClusterCertificates.IssueNode(certificates, name, ["127.0.0.1", "127.0.0.2", "127.0.0.3"], certificates, TimeSpan.FromDays(1));
            return _securities[(cluster, name)] = ControlPlaneSecurity.Read(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(ClusterCertificates.SecurityConfig(certificates, node))));
        }

        public void AnnounceBuddyPort(ushort port) =>
            _servingManager.Tell(new AlternateServersChanged(AlternateServerList.Empty, new ControlMappings([], [new(Buddy, port)])));

        /// <summary>An update from an endpoint (the probe) to the buddy, through the serving node's manager.</summary>
        public void Replicate(ControlMessage update, TestProbe endpoint) => _servingManager.Tell(new ReplicateTo(Buddy, update), endpoint.Ref);

        public Task<ReplicationChannelState> ServingChannels() => ChannelsOf(_servingManager, Buddy);

        public Task<ReplicationChannelState> BuddyChannels() => ChannelsOf(_buddyManager, Serving);

        public Task<ReplicaStatistics> BuddyReplicas() => _buddyManager.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, Patience);

        /// <summary>A whole state in one piece, as a connection's first update (the sample reply's encoding).</summary>
        public static ReplicaState WholeState(ulong requestId, uint generation = 1)
        {
            var state = ControlSamples.Reply.ToArray();
            return new ReplicaState(requestId, ControlSamples.MigratingCid, generation, (uint)state.Length, 0, state);
        }

        public static ReplicaReadLog ReadLog(ulong requestId, SeqNumber from, byte[] bytes, uint generation = 1) =>
            new(requestId, ControlSamples.MigratingCid, generation, from, bytes);

        /// <summary>The envelope a node seals for <paramref name="message"/> from <paramref name="sender"/> to <paramref name="receiver"/>.</summary>
        public static byte[] Sealed(IMigrationAuthenticator key, ControlMessage message, Address sender, Address receiver) =>
            ControlMessageSealing.Seal(key, message, Encoding.UTF8.GetBytes(sender.ToString()), Encoding.UTF8.GetBytes(receiver.ToString()));

        /// <summary>
        /// A TLS client of the channel's port presenting <paramref name="security"/>'s certificate (none when null): the
        /// stream once the client's side of the handshake is done, or the exception that ended it.
        /// </summary>
        public async Task<(SslStream? Stream, Exception? Refused)> ConnectAsync(ControlPlaneSecurity? security)
        {
            var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Parse(Buddy.Host!), Listener.Port);
            var stream = security is null
                ? new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true)
                : new SslStream(tcp.GetStream());
            try
            {
                await stream.AuthenticateAsClientAsync(security?.ReplicationChannel!.Client("127.0.0.1") ?? new SslClientAuthenticationOptions { TargetHost = "127.0.0.1" });
                return (stream, null);
            }
            catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException)
            {
                await stream.DisposeAsync();
                return (null, e);
            }
        }

        public void Dispose()
        {
            Listener.Dispose();
            Assert.True(BuddySystem.Terminate().Wait(Patience), "the buddy node did not stop");
            _certificates.Delete(recursive: true);
        }

        private static async Task<ReplicationChannelState> ChannelsOf(IActorRef manager, Address peer)
        {
            var connection = (await manager.Ask<ControlConnectionFor>(new GetControlConnection(peer), Patience)).Connection;
            return await connection.Ask<ReplicationChannelState>(GetReplicationChannelState.Instance, Patience);
        }
    }

    /// <summary>
    /// A TCP relay on loopback between the serving node and the buddy's channel port: it can stop passing the buddy's
    /// bytes back (they are dropped) and cut every connection, as a network that fails between the two.
    /// </summary>
    private sealed class CuttableProxy : IDisposable
    {
        private readonly TcpListener _listener;
        private readonly IPAddress _from;
        private readonly IPEndPoint _target;
        private readonly List<TcpClient> _connections = [];
        private volatile bool _holdAnswers;

        /// <summary>Listens on <paramref name="target"/>'s host and relays to it from <paramref name="from"/> (the serving node's host, which the buddy admits).</summary>
        public CuttableProxy(IPAddress from, IPEndPoint target)
        {
            _from = from;
            _target = target;
            _listener = new TcpListener(target.Address, 0);
            _listener.Start(4);
            _ = Task.Run(AcceptAsync);
        }

        public ushort Port => (ushort)((IPEndPoint)_listener.LocalEndpoint).Port;

        public void HoldAnswers() => _holdAnswers = true;

        public void Cut()
        {
            lock (_connections)
            {
                foreach (var connection in _connections)
                {
                    connection.Client.LingerState = new LingerOption(true, 0);
                    connection.Dispose();
                }

                _connections.Clear();
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            Cut();
        }

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var accepted = await _listener.AcceptTcpClientAsync();
                    var upstream = new TcpClient(new IPEndPoint(_from, 0));
                    await upstream.ConnectAsync(_target);
                    lock (_connections)
                    {
                        _connections.Add(accepted);
                        _connections.Add(upstream);
                    }

                    _ = RelayAsync(accepted.GetStream(), upstream.GetStream(), answers: false);
                    _ = RelayAsync(upstream.GetStream(), accepted.GetStream(), answers: true);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                // The proxy stopped.
            }
        }

        private async Task RelayAsync(NetworkStream from, NetworkStream to, bool answers)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                int read;
                while ((read = await from.ReadAsync(buffer)) > 0)
                {
                    if (!(answers && _holdAnswers))
                    {
                        await to.WriteAsync(buffer.AsMemory(0, read));
                    }
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
            {
                // Cut.
            }
        }
    }
}
