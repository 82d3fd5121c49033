using Akka.Actor;
using Mtcp.Actors.Cluster;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class ServiceDirectoryStateTests
{
    private static readonly Address Self = new("akka.tcp", "mtcp", "127.0.0.1", 2551);
    private static readonly Address Peer1 = new("akka.tcp", "mtcp", "127.0.0.1", 2552);
    private static readonly Address Peer2 = new("akka.tcp", "mtcp", "127.0.0.1", 2553);

    private static ServerEndpoint Endpoint(string address, ushort port) => new(IpAddress.Parse(address), port);

    private static readonly ServerEndpoint SelfEndpoint = Endpoint("10.0.0.1", 80);
    private static readonly ServerEndpoint Peer1Endpoint = Endpoint("10.0.0.2", 80);
    private static readonly ServerEndpoint Peer1SecondEndpoint = Endpoint("2001:db8::2", 8080);
    private static readonly ServerEndpoint Peer2Endpoint = Endpoint("10.0.0.3", 80);

    private static ServiceAnnouncement Announcement(Address node, params ServerEndpoint[] endpoints) => new(endpoints, node, replyRequested: false);

    private static ServiceDirectoryState Initial() => ServiceDirectoryState.Initial(Announcement(Self, SelfEndpoint)).WithMemberUp(Self);

    /// <summary>Both peers Up and announced, peer 2 first so that ordering is by address, not by arrival.</summary>
    private static ServiceDirectoryState Full() => Initial()
        .WithMemberUp(Peer2).WithAnnouncement(Announcement(Peer2, Peer2Endpoint))
        .WithMemberUp(Peer1).WithAnnouncement(Announcement(Peer1, Peer1Endpoint, Peer1SecondEndpoint));

    [Fact]
    public void Alone_node_must_have_no_alternates_and_map_only_itself()
    {
        var state = Initial();

        Assert.Equal(AlternateServerList.Empty, state.Alternates);
        Assert.True(state.ControlMappings.TryGetControlAddress(SelfEndpoint, out var control));
        Assert.Equal(Self, control);
        Assert.Equal(1, state.ControlMappings.Count);
    }

    [Fact]
    public void Up_and_announced_members_must_be_alternates_in_address_order_without_this_node()
    {
        var state = Full();

        Assert.Equal([Peer1Endpoint, Peer1SecondEndpoint, Peer2Endpoint], state.Alternates.Servers);
        Assert.Equal(4, state.ControlMappings.Count);
        Assert.True(state.ControlMappings.TryGetControlAddress(Peer1SecondEndpoint, out var control));
        Assert.Equal(Peer1, control);
    }

    [Fact]
    public void Replication_channel_ports_must_be_those_of_visible_members_that_announce_one()
    {
        var state = Full().WithAnnouncement(new ServiceAnnouncement([Peer2Endpoint], Peer2, replyRequested: false, replicationChannelPort: 7355));

        Assert.Equal(new Dictionary<Address, ushort> { [Peer2] = 7355 }, state.ControlMappings.ReplicationChannelPorts);
        Assert.NotEqual(Full().ControlMappings, state.ControlMappings);
        Assert.Empty(state.WithUnreachable(Peer2).ControlMappings.ReplicationChannelPorts);
        Assert.Empty(state.WithMemberGone(Peer2).ControlMappings.ReplicationChannelPorts);
    }

    [Fact]
    public void Announcement_before_member_up_must_stay_hidden_until_up()
    {
        var state = Initial().WithAnnouncement(Announcement(Peer1, Peer1Endpoint));

        Assert.Equal(0, state.Alternates.Count);
        Assert.Equal([Peer1Endpoint], state.WithMemberUp(Peer1).Alternates.Servers);
    }

    [Fact]
    public void Member_up_without_announcement_must_be_silent_and_hidden()
    {
        var state = Initial().WithMemberUp(Peer1);

        Assert.Equal(0, state.Alternates.Count);
        Assert.Equal([Peer1], state.SilentMembers);
        Assert.Empty(state.WithAnnouncement(Announcement(Peer1, Peer1Endpoint)).SilentMembers);
    }

    [Fact]
    public void Unreachable_member_must_be_hidden_and_reappear_when_reachable()
    {
        var unreachable = Full().WithUnreachable(Peer1);

        Assert.Equal([Peer2Endpoint], unreachable.Alternates.Servers);
        Assert.False(unreachable.ControlMappings.TryGetControlAddress(Peer1Endpoint, out _));
        Assert.Equal(Full().Alternates, unreachable.WithReachable(Peer1).Alternates);
    }

    [Fact]
    public void Gone_member_must_disappear_and_its_announcement_be_forgotten()
    {
        var gone = Full().WithMemberGone(Peer1);

        Assert.Equal([Peer2Endpoint], gone.Alternates.Servers);
        Assert.False(gone.HasAnnouncementFrom(Peer1));
        Assert.Equal(0, gone.WithMemberUp(Peer1).Alternates.Servers.Count(endpoint => endpoint == Peer1Endpoint));
    }

    [Fact]
    public void This_node_leaving_must_not_forget_its_own_announcement()
    {
        var state = Full().WithMemberGone(Self);

        Assert.True(state.HasAnnouncementFrom(Self));
        Assert.False(state.ControlMappings.TryGetControlAddress(SelfEndpoint, out _));
    }

    [Fact]
    public void Another_node_announcing_this_node_address_must_change_nothing()
    {
        var state = Full();

        Assert.Same(state, state.WithAnnouncement(Announcement(Self, Endpoint("192.0.2.1", 80))));
    }

    [Fact]
    public void New_announcement_from_a_member_must_replace_its_endpoints()
    {
        var state = Full().WithAnnouncement(Announcement(Peer1, Endpoint("10.0.0.22", 81)));

        Assert.Equal([Endpoint("10.0.0.22", 81), Peer2Endpoint], state.Alternates.Servers);
    }

    [Fact]
    public void Repeated_announcement_and_events_must_keep_the_same_state()
    {
        var state = Full();

        Assert.Same(state, state.WithAnnouncement(Announcement(Peer1, Peer1Endpoint, Peer1SecondEndpoint).WithReplyRequested(true)));
        Assert.Same(state, state.WithMemberUp(Peer1));
        Assert.Same(state, state.WithReachable(Peer1));
    }

    [Fact]
    public void Alternate_list_must_become_a_tcp_migrate_option_that_fits()
    {
        var option = Full().Alternates.ToOption(bytesAvailable: 40, out var dropped);

        Assert.NotNull(option);
        Assert.Equal(Peer1Endpoint, option.Servers[0]);
        Assert.Equal(3 - option.Servers.Count, dropped);
    }
}
