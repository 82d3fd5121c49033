using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Akka.Actor;
using Mtcp.Actors.Control;
using Mtcp.Actors.Replication;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// Attacks on the direct replication channel's port (docs/threat-model.md, docs/failover.md): a stranger without a
/// certificate, a certificate of another CA, a member's certificate naming a member of another address, garbage frames,
/// a flood of connections, forged and replayed frames. Each is refused, counted in the buddy's refusal log, and changes
/// nothing: the buddy holds no replica from it and takes no channel from it, and the serving node's own channel works
/// after it.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "Security")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class ReplicationChannelAttackTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Patience = ReplicationChannelTests.Patience;
    private static readonly MigrationAuthenticator OtherKey = MigrationAuthenticator.FromKey("a key of some other cluster, 32b"u8);

    private readonly ReplicationChannelTests.ChannelPair _pair;

    public ReplicationChannelAttackTests()
        : base(TestNodes.Remote(ReplicationChannelTests.ChannelConfig), "serving")
    {
        _pair = new ReplicationChannelTests.ChannelPair(this, Sys, TestNodes.Remote(ReplicationChannelTests.ChannelConfig));
    }

    protected override void AfterAll()
    {
        _pair.Dispose();
        base.AfterAll();
    }

    [Fact]
    public async Task A_stranger_without_a_certificate_must_be_refused()
    {
        var (stream, _) = await _pair.ConnectAsync(security: null);
        await RefusedAsync(stream, AnUpdateOfTheServingNode());
        await NothingChangedAsync(refusals: 1);
    }

    [Fact]
    public async Task A_certificate_of_another_CA_must_be_refused()
    {
        var (stream, _) = await _pair.ConnectAsync(_pair.Security("another-cluster", "intruder"));
        await RefusedAsync(stream, AnUpdateOfTheServingNode());
        await NothingChangedAsync(refusals: 1);
    }

    [Fact]
    public async Task A_members_certificate_used_from_another_address_must_be_refused()
    {
        // A member of the cluster whose host is 127.0.0.9: the frame names it, the connection comes from 127.0.0.1.
        var elsewhere = new Address(_pair.Serving.Protocol, _pair.Serving.System, "127.0.0.9", 4053);
        _pair.Members.Add(elsewhere);
        var envelope = ReplicationChannelTests.ChannelPair.Sealed(ReplicationChannelTests.ClusterKey, ReplicationChannelTests.ChannelPair.WholeState(1), elsewhere, _pair.Buddy);

        await RefusedFromAMemberCertificateAsync(Frame((uint)envelope.Length, envelope));
        await NothingChangedAsync(refusals: 1);
    }

    [Fact]
    public async Task A_frame_naming_no_member_must_be_refused()
    {
        var stranger = new Address(_pair.Serving.Protocol, _pair.Serving.System, "127.0.0.1", 1);
        var envelope = ReplicationChannelTests.ChannelPair.Sealed(ReplicationChannelTests.ClusterKey, ReplicationChannelTests.ChannelPair.WholeState(1), stranger, _pair.Buddy);

        await RefusedFromAMemberCertificateAsync(Frame((uint)envelope.Length, envelope));
        await NothingChangedAsync(refusals: 1);
    }

    [Fact]
    public async Task Garbage_frames_must_be_refused()
    {
        var random = new Random(0x47415242);
        var garbage = new byte[600];
        random.NextBytes(garbage);
        var frames = new List<byte[]>
        {
            garbage,
            Frame(0, []),
            Frame(uint.MaxValue, []),
            Frame(600, garbage),
        };

        foreach (var frame in frames)
        {
            await RefusedFromAMemberCertificateAsync(frame);
        }

        await NothingChangedAsync(refusals: frames.Count);
    }

    [Fact]
    public async Task Forged_and_replayed_frames_must_be_refused()
    {
        var update = ReplicationChannelTests.ChannelPair.WholeState(1);
        var altered = ReplicationChannelTests.ChannelPair.Sealed(ReplicationChannelTests.ClusterKey, update, _pair.Serving, _pair.Buddy);
        altered[^1] ^= 1;
        var envelopes = new[]
        {
            // Under another cluster's key.
            ReplicationChannelTests.ChannelPair.Sealed(OtherKey, update, _pair.Serving, _pair.Buddy),

            // A frame of the serving node's channel to another node, replayed here.
            ReplicationChannelTests.ChannelPair.Sealed(ReplicationChannelTests.ClusterKey, update, _pair.Serving, new Address(_pair.Buddy.Protocol, _pair.Buddy.System, "127.0.0.1", 1)),

            // An ack the buddy sent the serving node, replayed to the buddy as if it were an update.
            ReplicationChannelTests.ChannelPair.Sealed(ReplicationChannelTests.ClusterKey, new ReplicaAck(1, update.Cid, ReplicaAckStatus.Held), _pair.Serving, _pair.Buddy),
            altered,
        };

        foreach (var envelope in envelopes)
        {
            await RefusedFromAMemberCertificateAsync(Frame((uint)envelope.Length, envelope));
        }

        await NothingChangedAsync(refusals: envelopes.Length);
    }

    [Fact]
    public async Task A_flood_of_connections_must_be_bounded_and_leave_the_members_channel_working()
    {
        const int Flood = 40;
        var sockets = new List<Socket>();
        try
        {
            for (var i = 0; i < Flood; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(socket);
                await socket.ConnectAsync(IPAddress.Loopback, _pair.Listener.Port);
            }

            // At most max-handshakes (4) wait for their handshake; the others are closed at once, each counted.
            await AwaitConditionAsync(() => Task.FromResult(_pair.BuddyRefusals >= Flood - 4), Patience);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        await AwaitConditionAsync(() => Task.FromResult(_pair.BuddyRefusals >= Flood), Patience);
        await NothingChangedAsync(refusals: Flood);
    }

    private static byte[] Frame(uint length, byte[] envelope)
    {
        var frame = new byte[ReplicationChannelFrame.HeaderLength + envelope.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, length);
        envelope.CopyTo(frame, ReplicationChannelFrame.HeaderLength);
        return frame;
    }

    private byte[] AnUpdateOfTheServingNode() =>
        ReplicationChannelTests.ChannelPair.Sealed(ReplicationChannelTests.ClusterKey, ReplicationChannelTests.ChannelPair.WholeState(1), _pair.Serving, _pair.Buddy);

    /// <summary>
    /// <paramref name="bytes"/> sent on a connection of its own with a certificate of the cluster's CA (its handshake
    /// completes): the buddy must close it.
    /// </summary>
    private async Task RefusedFromAMemberCertificateAsync(byte[] bytes)
    {
        var (stream, refused) = await _pair.ConnectAsync(_pair.Security("cluster", "intruder"));
        Assert.True(stream is not null, $"a certificate of the cluster's CA was refused at the handshake: {refused}");
        await RefusedRawAsync(stream, bytes);
    }

    /// <summary>Sends <paramref name="envelope"/> in a frame; the buddy must close the connection (a refused handshake shows here too).</summary>
    private static Task RefusedAsync(SslStream? stream, byte[] envelope) => RefusedRawAsync(stream, Frame((uint)envelope.Length, envelope));

    private static async Task RefusedRawAsync(SslStream? stream, byte[] bytes)
    {
        if (stream is null)
        {
            // Refused at the handshake already.
            return;
        }

        await using (stream)
        {
            var closed = await Task.Run(async () =>
            {
                try
                {
                    await stream.WriteAsync(bytes);
                    await stream.FlushAsync();
                    return await stream.ReadAsync(new byte[1]) == 0;
                }
                catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
                {
                    return true;
                }
            }).WaitAsync(Patience);
            Assert.True(closed, "the buddy answered a refused connection");
        }
    }

    /// <summary>
    /// The buddy counted <paramref name="refusals"/> refusals, holds no replica and took no channel from the serving
    /// node; the serving node's own channel then opens and carries an update and its ack.
    /// </summary>
    private async Task NothingChangedAsync(int refusals)
    {
        await AwaitConditionAsync(() => Task.FromResult(_pair.BuddyRefusals >= refusals), Patience);
        Assert.Equal(refusals, _pair.BuddyRefusals);
        Assert.Empty((await _pair.BuddyReplicas()).HeldByOrigin);
        Assert.False((await _pair.BuddyChannels()).FromPeer);

        _pair.AnnounceBuddyPort(_pair.Listener.Port);
        var endpoint = CreateTestProbe();
        _pair.Replicate(ReplicationChannelTests.ChannelPair.WholeState(1), endpoint);
        await endpoint.ExpectMsgAsync<ReplicaAckReceived>(Patience);
        await AwaitConditionAsync(async () => (await _pair.ServingChannels()).ToPeer, Patience);
        _pair.Replicate(ReplicationChannelTests.ChannelPair.ReadLog(2, ReplicationChannelTests.ChannelPair.StateEnd, [7]), endpoint);
        Assert.Equal(ReplicaAckStatus.Held, (await endpoint.ExpectMsgAsync<ReplicaAckReceived>(Patience)).Ack.Status);
        await AwaitConditionAsync(async () => (await _pair.BuddyChannels()).FromPeer, Patience);
        Assert.Equal(refusals, _pair.BuddyRefusals);
    }
}
