using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Every state of RFC 9293 §3.3.2 reached by a scripted fixture, and "sanity" tests that drive two real engines
/// over the simulated network to the same state and compare, so the fixtures cannot drift from the machine.
/// </summary>
[Trait("Category", "Stack")]
public sealed class TcpStateFixtureTests
{
    public static TheoryData<TcpState> FixtureStates => new()
    {
        TcpState.Listen,
        TcpState.SynSent,
        TcpState.SynReceived,
        TcpState.Established,
        TcpState.FinWait1,
        TcpState.FinWait2,
        TcpState.CloseWait,
        TcpState.Closing,
        TcpState.LastAck,
        TcpState.TimeWait,
    };

    [Theory]
    [MemberData(nameof(FixtureStates))]
    public void Fixture_must_reach_its_state(TcpState state) => Assert.Equal(state, ScriptedPeer.For(state).State);

    [Fact]
    public void Established_fixture_must_hold_the_negotiated_parameters()
    {
        var peer = ScriptedPeer.Established();
        var c = peer.Connection;
        Assert.Equal(ScriptedPeer.LocalIss + 1, c.SendUnacknowledged);
        Assert.Equal(ScriptedPeer.LocalIss + 1, c.SendNext);
        Assert.Equal(ScriptedPeer.RemoteIss + 1, c.ReceiveNext);
        Assert.Equal(1000, c.SendMss);
        Assert.Equal(3, c.SendWindowShift);
        Assert.Equal(2, c.ReceiveWindowShift);
        Assert.Equal(20000, c.SendWindow);
        Assert.Equal(10 * 1000, c.CongestionWindow);
    }

    [Fact]
    public void Closed_state_must_follow_abort()
    {
        var peer = ScriptedPeer.Established();
        peer.Connection.Abort(peer.Now);
        Assert.Equal(TcpState.Closed, peer.State);
        var rst = peer.Single();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(ScriptedPeer.LocalIss + 1, rst.Seq);
        Assert.Equal([TcpEvent.Closed], peer.Events());
    }

    [Fact]
    public void Sanity_handshake_on_a_real_pair_must_match_the_established_fixture()
    {
        var sim = new SimulatedPair(ScriptedPeer.DefaultConfig);
        Assert.True(sim.Network.Drive(() => sim.Server is { State: TcpState.Established } && sim.Client.State == TcpState.Established, TimeSpan.FromSeconds(5)));
        var fixture = ScriptedPeer.Established().Connection;

        // Same configuration and ISS on our side; the simulated peer announced MSS 1000 and WS 2 where the
        // fixture's remote announced WS 3, so only the send shift and the window differ by construction.
        Assert.Equal(fixture.State, sim.Client.State);
        Assert.Equal(fixture.SendUnacknowledged, sim.Client.SendUnacknowledged);
        Assert.Equal(fixture.SendNext, sim.Client.SendNext);
        Assert.Equal(fixture.ReceiveNext, sim.Client.ReceiveNext);
        Assert.Equal(fixture.SendMss, sim.Client.SendMss);
        Assert.Equal(fixture.ReceiveWindowShift, sim.Client.ReceiveWindowShift);
        Assert.Equal(fixture.CongestionWindow, sim.Client.CongestionWindow);

        // The peer's SYN,ACK is the only segment seen so far: its window is unscaled and capped at 65,535 (RFC 7323 §2.2).
        Assert.Equal(ushort.MaxValue, sim.Client.SendWindow);
    }

    [Fact]
    public void Sanity_first_steps_of_a_real_pair_must_match_the_syn_fixtures()
    {
        var sim = new SimulatedPair(ScriptedPeer.DefaultConfig);
        sim.Network.CollectTransmissions();
        AssertSameSequenceState(ScriptedPeer.SynSent().Connection, sim.Client);
        Assert.True(sim.Network.Drive(() => sim.Server is not null, TimeSpan.FromSeconds(1)));
        Assert.Equal(TcpState.SynReceived, sim.Server!.State);
        Assert.Equal(ScriptedPeer.SynReceived().Connection.ReceiveNext - ScriptedPeer.RemoteIss, sim.Server.ReceiveNext - ScriptedPeer.LocalIss);
        sim.Network.CollectTransmissions();
        Assert.Equal(sim.Server.InitialSendSequence + 1, sim.Server.SendNext);
    }

    [Fact]
    public void Sanity_active_close_on_a_real_pair_must_pass_through_the_fixture_states()
    {
        var sim = SimulatedPair.Established(ScriptedPeer.DefaultConfig);
        sim.Client.Close(sim.Network.Now);

        Assert.Equal(TcpState.FinWait1, sim.Client.State);
        Assert.True(sim.Network.Drive(() => sim.Client.State == TcpState.FinWait2, TimeSpan.FromSeconds(5)));
        Assert.Equal(TcpState.CloseWait, sim.Server!.State);
        AssertSameSequenceState(ScriptedPeer.FinWait2().Connection, sim.Client);
        AssertSameSequenceState(ScriptedPeer.CloseWait().Connection, sim.Server);

        sim.Server.Close(sim.Network.Now);
        Assert.Equal(TcpState.LastAck, sim.Server.State);
        Assert.True(sim.Network.Drive(() => sim.Client.State == TcpState.TimeWait, TimeSpan.FromSeconds(5)));
        AssertSameSequenceState(ScriptedPeer.TimeWait().Connection, sim.Client);

        Assert.True(sim.Network.Drive(() => sim.Client.State == TcpState.Closed && sim.Server.State == TcpState.Closed, TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public void Sanity_simultaneous_close_on_a_real_pair_must_pass_through_closing()
    {
        var sim = SimulatedPair.Established(ScriptedPeer.DefaultConfig);
        sim.Client.Close(sim.Network.Now);
        sim.Server!.Close(sim.Network.Now);
        var sawClosing = false;
        Assert.True(sim.Network.Drive(
            () =>
            {
                sawClosing |= sim.Client.State == TcpState.Closing && sim.Server.State == TcpState.Closing;
                return sim.Client.State == TcpState.TimeWait && sim.Server.State == TcpState.TimeWait;
            },
            TimeSpan.FromSeconds(5)));
        Assert.True(sawClosing);
        AssertSameSequenceState(ScriptedPeer.Closing().Connection, sim.Client, afterOwnFinAcked: true);

        var timeWaitStarted = sim.Network.Now;
        Assert.True(sim.Network.Drive(() => sim.Client.State == TcpState.Closed && sim.Server.State == TcpState.Closed, TimeSpan.FromMinutes(5)));
        Assert.True(sim.Network.Now - timeWaitStarted >= ScriptedPeer.DefaultConfig.TwoMsl - TimeSpan.FromMilliseconds(20));
    }

    [Fact]
    public void Sanity_simultaneous_open_on_a_real_pair_must_reach_established()
    {
        var network = new SimNetwork(7, LinkConditions.Perfect);
        var a = network.Add(new TcpNode(IpAddress.Parse("10.0.0.1"), ScriptedPeer.DefaultConfig, () => ScriptedPeer.LocalIss));
        var b = network.Add(new TcpNode(IpAddress.Parse("10.0.0.2"), ScriptedPeer.DefaultConfig, () => ScriptedPeer.RemoteIss));
        var ca = a.Connect(network.Now, b.Address, 5001, localPort: 5000);
        var cb = b.Connect(network.Now, a.Address, 5000, localPort: 5001);
        var sawSynReceived = false;

        Assert.True(network.Drive(
            () =>
            {
                sawSynReceived |= ca.State == TcpState.SynReceived && cb.State == TcpState.SynReceived;
                return ca.State == TcpState.Established && cb.State == TcpState.Established;
            },
            TimeSpan.FromSeconds(5)));
        Assert.True(sawSynReceived);
        Assert.Equal(ScriptedPeer.LocalIss + 1, ca.SendUnacknowledged);
        Assert.Equal(ScriptedPeer.RemoteIss + 1, ca.ReceiveNext);
        Assert.Equal(ScriptedPeer.RemoteIss + 1, cb.SendUnacknowledged);
        Assert.Equal(ScriptedPeer.LocalIss + 1, cb.ReceiveNext);
    }

    /// <summary>
    /// Compares positions relative to each side's ISS/IRS: the scripted fixtures send no data, like the real pair here.
    /// </summary>
    private static void AssertSameSequenceState(TcpConnection fixture, TcpConnection real, bool afterOwnFinAcked = false)
    {
        Assert.Equal(fixture.State == TcpState.Closing && afterOwnFinAcked ? TcpState.TimeWait : fixture.State, real.State);
        Assert.Equal(fixture.SendNext - fixture.InitialSendSequence, real.SendNext - real.InitialSendSequence);
        Assert.Equal(fixture.ReceiveNext - fixture.InitialReceiveSequence, real.ReceiveNext - real.InitialReceiveSequence);
        var fixtureUnacked = fixture.SendNext - fixture.SendUnacknowledged;
        var realUnacked = real.SendNext - real.SendUnacknowledged;
        Assert.Equal(afterOwnFinAcked ? 0 : fixtureUnacked, realUnacked);
    }
}
