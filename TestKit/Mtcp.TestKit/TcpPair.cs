using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>
/// A client and a server <see cref="TcpNode"/> on one <see cref="SimNetwork"/>, each end running a
/// <see cref="BulkTransferApplication"/>: the smallest complete scenario, like quinn-proto's test <c>Pair</c>.
/// </summary>
public sealed class TcpPair
{
    public const ushort ServerPort = 80;

    private const ulong ClientToServerKey = 0xC11E47;
    private const ulong ServerToClientKey = 0x5E4BE4;

    public TcpPair(
        int seed,
        LinkConditions conditions,
        TcpConfig config,
        long clientBytes,
        long serverBytes,
        SeqNumber? clientIss = null,
        SeqNumber? serverIss = null,
        Func<Random, ApplicationPacing>? pacing = null)
    {
        Network = new SimNetwork(seed, conditions);
        var random = Network.Random;
        Client = Network.Add(new TcpNode(IpAddress.Parse("10.0.0.1"), config, () => clientIss ?? new SeqNumber((uint)random.NextInt64(0, 1L << 32))));
        Server = Network.Add(new TcpNode(IpAddress.Parse("10.0.0.2"), config, () => serverIss ?? new SeqNumber((uint)random.NextInt64(0, 1L << 32))));
        ClientApp = new BulkTransferApplication(clientBytes, ClientToServerKey, ServerToClientKey, pacing: pacing?.Invoke(random));
        ServerApp = new BulkTransferApplication(serverBytes, ServerToClientKey, ClientToServerKey, pacing: pacing?.Invoke(random));
        Client.Application = (now, c) => ClientApp.Pump(now, c);
        Server.Application = (now, c) => ServerApp.Pump(now, c);
        Server.Listen(ServerPort);
        ClientConnection = Client.Connect(Network.Now, Server.Address, ServerPort);
    }

    public SimNetwork Network { get; }

    public TcpNode Client { get; }

    public TcpNode Server { get; }

    public BulkTransferApplication ClientApp { get; }

    public BulkTransferApplication ServerApp { get; }

    public TcpConnection ClientConnection { get; }

    /// <summary>The server's end once the SYN arrived.</summary>
    public TcpConnection? ServerConnection => Server.Connections.Count > 0 ? Server.Connections[0] : null;

    public bool BothClosed => ClientConnection.State == TcpState.Closed && ServerConnection?.State == TcpState.Closed;

    /// <summary>
    /// Runs until both ends are CLOSED or the virtual time limit passes, then lets each application read what it
    /// left unread (a paced application may have closed before reading everything).
    /// </summary>
    public bool DriveToClose(TimeSpan timeLimit)
    {
        var closed = Network.Drive(() => BothClosed, timeLimit);
        ClientApp.FinishReading(Network.Now, ClientConnection);
        if (ServerConnection is { } server)
        {
            ServerApp.FinishReading(Network.Now, server);
        }

        return closed;
    }

    /// <summary>A one-line account of the run, for assertion messages (with the seed, so a failure can be replayed).</summary>
    public string Describe()
    {
        var server = ServerConnection;
        return $"seed={Network.Seed} now={Network.Now} client[{ClientConnection.State} wrote={ClientApp.BytesWritten} read={ClientApp.BytesRead} mismatch={ClientApp.FirstMismatch} events={string.Join(',', ClientApp.Events)}] "
            + $"server[{server?.State} wrote={ServerApp.BytesWritten} read={ServerApp.BytesRead} mismatch={ServerApp.FirstMismatch} events={string.Join(',', ServerApp.Events)}] "
            + $"net[sent={Network.Stats.Sent} lost={Network.Stats.Lost} dup={Network.Stats.Duplicated} reordered={Network.Stats.Reordered}]";
    }
}
