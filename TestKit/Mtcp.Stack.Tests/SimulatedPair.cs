using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>Two <see cref="TcpNode"/>s with no application, for tests that steer the connections themselves.</summary>
internal sealed class SimulatedPair
{
    public SimulatedPair(TcpConfig config, LinkConditions? conditions = null, int seed = 1)
    {
        Network = new SimNetwork(seed, conditions ?? LinkConditions.Perfect);
        ClientNode = Network.Add(new TcpNode(IpAddress.Parse("10.0.0.1"), config, () => ScriptedPeer.LocalIss));
        ServerNode = Network.Add(new TcpNode(IpAddress.Parse("10.0.0.2"), config, () => ScriptedPeer.RemoteIss));
        ServerNode.Listen(ScriptedPeer.RemotePort);
        Client = ClientNode.Connect(Network.Now, ServerNode.Address, ScriptedPeer.RemotePort, localPort: ScriptedPeer.LocalPort);
    }

    public SimNetwork Network { get; }

    public TcpNode ClientNode { get; }

    public TcpNode ServerNode { get; }

    public TcpConnection Client { get; }

    public TcpConnection? Server => ServerNode.Connections.Count > 0 ? ServerNode.Connections[0] : null;

    public static SimulatedPair Established(TcpConfig config, LinkConditions? conditions = null)
    {
        var pair = new SimulatedPair(config, conditions);
        Assert.True(pair.Network.Drive(() => pair.Server is { State: TcpState.Established } && pair.Client.State == TcpState.Established, TimeSpan.FromSeconds(30)));
        return pair;
    }
}
