using System.Globalization;
using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.TestKit;

/// <summary>The reference service the servers of a <see cref="MigrationTestbed"/> run.</summary>
public enum ReferenceService
{
    /// <summary>Thesis ch. 5: the server pushes a stream; snapshot = chunk number.</summary>
    Stream,

    /// <summary>Thesis ch. 6: the client names a file, the server sends it; snapshot = (name, offset).</summary>
    File,

    /// <summary>Thesis fig. 3.5: the server reads messages and answers each; snapshot = messages read.</summary>
    RequestResponse,

    /// <summary>
    /// A half-close by the server: it sends a greeting of one chunk, shuts down its sending side, then reads the client's
    /// upload of <see cref="TestbedOptions.SessionBytes"/> to its FIN; snapshot = (bytes read, digest).
    /// </summary>
    Upload,
}

/// <summary>Shape of one simulated session.</summary>
public sealed record TestbedOptions
{
    public ReferenceService Service { get; init; } = ReferenceService.Stream;

    /// <summary>Bytes the server sends (stream, file) or the client sends and gets back (request/response).</summary>
    public int SessionBytes { get; init; } = 64 * 1024;

    public int ChunkSize { get; init; } = 1024;

    public int MessageSize { get; init; } = 64;

    /// <summary>Export a snapshot every this many chunks or messages (thesis 3.3.2: the application's choice).</summary>
    public int SnapshotEvery { get; init; } = 4;

    public TimeSpan ControlLatency { get; init; } = TimeSpan.FromMilliseconds(2);

    public int ServerCount { get; init; } = 3;

    /// <summary>The client's address.</summary>
    public IpAddress ClientAddress { get; init; } = IpAddress.Parse("10.0.0.1");

    /// <summary>Server i's address: 10.0.0.(11 + i) (<see cref="MigrationTestbed.EndpointOf"/>) unless a test puts the servers elsewhere (IPv6, other subnets).</summary>
    public Func<int, IpAddress> ServerAddress { get; init; } = index => MigrationTestbed.EndpointOf(index).Address;

    /// <summary>Servers answer every SYN but a special one with a SYN cookie (<see cref="MtcpServerHost.SynCookies"/>), each under its own secret.</summary>
    public bool SynCookies { get; init; }

    /// <summary>
    /// Buddy replication: each server keeps its connections' state on the next server (in index order, skipping those
    /// it knows lost), acknowledges the client's bytes once that buddy holds them, and takes over from its replicas.
    /// </summary>
    public bool Replication { get; init; }

    /// <summary>With <see cref="Replication"/>: when a new snapshot goes to the buddy as a whole state (older ones and the read log since otherwise serve).</summary>
    public ReplicaStateSchedule ReplicaStates { get; init; } = ReplicaStateSchedule.EverySnapshot;

    /// <summary>With <see cref="Replication"/>: most read logs of a connection unacknowledged at once (the client's bytes that come meanwhile go together).</summary>
    public int ReplicaReadLogsInFlight { get; init; } = 4;

    /// <summary>Servers' TCP settings; the read log is switched on for them and off for the client.</summary>
    public TcpConfig Tcp { get; init; } = TcpConfig.Default with
    {
        SendBufferSize = 64 * 1024,
        ReceiveBufferSize = 64 * 1024,
        MaximumSegmentLifetime = TimeSpan.FromMilliseconds(500),
        MaxSynRetransmissions = 20,
        MaxRetransmissions = 40,
        ConnectTimeout = TimeSpan.FromMinutes(10),
    };
}

/// <summary>
/// The multi-host migration simulator: a client and cooperating servers S1, S2, S3 on one <see cref="SimNetwork"/>,
/// control connections between the servers on a <see cref="ControlChannel"/>, and one of the reference services.
/// The client connects to S1; tests and property runs then migrate it at chosen or random moments.
/// </summary>
public sealed class MigrationTestbed
{
    public const ushort ServicePort = 80;

    /// <summary>The simulated cluster's key (32 bytes, generation 0).</summary>
    public static ReadOnlySpan<byte> ClusterKeyBytes => "mtcp-simulated-cluster-key-00001"u8;

    private readonly List<SimulatedServerNode> _servers = [];
    private readonly ServerEndpoint[] _endpoints;
    private readonly Func<SeqNumber> _issSource;

    public MigrationTestbed(int seed, LinkConditions conditions, TestbedOptions options)
    {
        Options = options;
        Network = new SimNetwork(seed, conditions);
        var random = Network.Random;
        SeqNumber NextIss() => new((uint)random.NextInt64(0, 1L << 32));

        Authenticator = MigrationAuthenticator.FromKey(ClusterKeyBytes);
        Control = Network.Add(new ControlChannel(IpAddress.Parse("10.0.255.254"), options.ControlLatency));
        _endpoints = [.. Enumerable.Range(0, options.ServerCount).Select(Endpoint)];
        _issSource = NextIss;
        for (var i = 0; i < options.ServerCount; i++)
        {
            var index = i;
            _servers.Add(Network.Add(new SimulatedServerNode(CreateHost(i), Control, CreateSession, () => CreateReplication(index))));
        }

        byte[] toSend;
        byte[] expected;
        var closeFirst = false;
        switch (options.Service)
        {
            case ReferenceService.Stream:
                toSend = [];
                expected = StreamServerSession.Reference(options.SessionBytes / options.ChunkSize, options.ChunkSize, StreamKey);
                break;
            case ReferenceService.File:
                toSend = new byte[FileServerSession.NameLength];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(toSend, FileName);
                expected = FileServerSession.Reference(FileName, options.SessionBytes);
                break;
            case ReferenceService.Upload:
                toSend = new byte[options.SessionBytes];
                StreamPattern.Fill(RequestKey, 0, toSend);
                expected = new byte[options.ChunkSize];
                StreamPattern.Fill(StreamKey, 0, expected);
                break;
            default:
                (toSend, expected) = RequestResponseServerSession.Reference(options.SessionBytes / options.MessageSize, options.MessageSize, RequestKey);
                closeFirst = true;
                break;
        }

        Expected = expected;
        Client = Network.Add(new MtcpClientNode(options.ClientAddress, NextIss));
        ClientApp = new ClientApplication(toSend, expected, closeFirst);
        Client.Application = ClientApp;
        Client.Connect(Network.Now, options.Tcp with { RetainReadLog = false }, _endpoints[0]);
    }

    /// <summary>Largest replicated state a buddy accepts (the runtime's <c>mtcp.control.max-state-reply-size</c> default).</summary>
    public const int MaxReplicaLength = 16 * 1024 * 1024;

    /// <summary>Most bytes in one replica update (so that each fits one control frame, as in the runtime).</summary>
    public const int ReplicaPiece = 60 * 1024;

    /// <summary>How long a replica update waits for its ack before the whole state goes again (the runtime's <c>mtcp.migration.buddy-ack-timeout</c> default).</summary>
    public static readonly TimeSpan ReplicaAckTimeout = TimeSpan.FromMilliseconds(500);

    public const ulong StreamKey = 0x5354524541;

    public const ulong FileName = 0x66696C652E62696E;

    public const ulong RequestKey = 0x5245515545535453;

    public TestbedOptions Options { get; }

    public SimNetwork Network { get; }

    public ControlChannel Control { get; }

    /// <summary>What every server starts with; a test may rotate keys through <see cref="MtcpServerHost.Authenticator"/>.</summary>
    public MigrationAuthenticator Authenticator { get; }

    public MtcpClientNode Client { get; }

    public ClientApplication ClientApp { get; }

    public byte[] Expected { get; }

    public IReadOnlyList<SimulatedServerNode> Servers => _servers;

    public MtcpClientConnection Connection => Client.Connection!;

    public IEnumerable<ServerSession> Sessions => _servers.SelectMany(s => s.Sessions);

    /// <summary>Client closed after its application closed, and no server holds a live endpoint (none half-open).</summary>
    public bool Finished =>
        ClientApp.CloseCalled && Connection.State == TcpState.Closed && !Connection.IsMigrating && _servers.All(s => s.Host.LiveEndpoints == 0);

    private static byte[] RandomSecret(Random random)
    {
        var secret = new byte[Stack.SynCookies.SecretLength];
        random.NextBytes(secret);
        return secret;
    }

    /// <summary>Server <paramref name="index"/>'s endpoint with the default addresses.</summary>
    public static ServerEndpoint EndpointOf(int index) => new(IpAddress.Parse($"10.0.0.{11 + index}"), ServicePort);

    /// <summary>Server <paramref name="index"/>'s endpoint in this testbed (<see cref="TestbedOptions.ServerAddress"/>).</summary>
    public ServerEndpoint Endpoint(int index) => new(Options.ServerAddress(index), ServicePort);
    /// <summary>
    /// Server <paramref name="index"/> dies now (SIGKILL): its endpoints, sessions, replicas and the packets and control
    /// messages in flight from or to it are lost. No server notices until <see cref="DetectCrash"/>.
    /// </summary>
    public void Crash(int index)
    {
        _servers[index].Crash(CreateHost(index));
        Network.DiscardInFlight(_servers[index].Address);
    }

    /// <summary>The other servers' failure detector marks server <paramref name="index"/> lost: its buddy takes its connections over.</summary>
    public void DetectCrash(int index)
    {
        foreach (var server in _servers.Where(s => !s.IsDown && s.Replication is not null))
        {
            server.Replication!.Lose(server.Host, _servers[index].Address);
        }
    }

    /// <summary>A crashed server comes back blank, and the others see it rejoin.</summary>
    public void Restart(int index)
    {
        _servers[index].Restart();
        foreach (var server in _servers.Where(s => s.Replication is not null))
        {
            server.Replication!.Rejoined(_servers[index].Address);
        }
    }

    /// <summary>Starts a migration to server <paramref name="index"/> now; false if the connection cannot migrate at this moment.</summary>
    public bool Migrate(int index) => Client.TryMigrate(Network.Now, Endpoint(index));

    public int IndexOf(ServerEndpoint server) => _servers.FindIndex(s => s.Host.Service == server);

    public bool RunUntil(Func<bool> condition, TimeSpan limit) => Network.Drive(condition, limit);

    public bool RunToFinish(TimeSpan limit) => Network.Drive(() => Finished, limit);

    public string Describe()
    {
        var c = Connection;
        var servers = string.Join(" ", _servers.Select(s =>
            $"S{IndexOf(s.Host.Service) + 1}[live={s.Host.LiveEndpoints} in={s.Host.Stats.MigrationsIn} out={s.Host.Stats.MigrationsOut} refused={s.Host.Stats.MigrationsRefused} "
            + $"sessions={string.Join(',', s.Sessions.Select(x => $"{x.Connection.State}{(x.Emigrated ? "/EMIGRATED" : string.Empty)}"))}]"));
        return string.Create(
            CultureInfo.InvariantCulture,
            $"seed={Network.Seed} now={Network.Now} client[{c.State} on S{IndexOf(c.CurrentServer) + 1} migrating={c.IsMigrating} sent={ClientApp.Sent} received={ClientApp.Received}/{Expected.Length} "
            + $"mismatch={ClientApp.FirstMismatch} closed={ClientApp.CloseCalled} started={c.Stats.MigrationsStarted} completed={c.Stats.MigrationsCompleted} failed={c.Stats.MigrationsFailed}] {servers} "
            + $"net[sent={Network.Stats.Sent} lost={Network.Stats.Lost} dup={Network.Stats.Duplicated} reordered={Network.Stats.Reordered}]");
    }

    private MtcpServerHost CreateHost(int index) =>
        new(_endpoints[index], Options.Tcp with { RetainReadLog = true }, Authenticator, _issSource, _endpoints.Where((_, j) => j != index).ToArray())
        {
            SynCookies = Options.SynCookies ? new SynCookies(RandomSecret(Network.Random), Stack.SynCookies.DefaultPeriod) : null,
        };

    /// <summary>Server <paramref name="index"/>'s buddy: the next server after it, wrapping round, that it does not know lost.</summary>
    private SimulatedBuddyReplication? CreateReplication(int index) => Options.Replication
        ? new SimulatedBuddyReplication(
            _endpoints[index].Address,
            lost => Enumerable.Range(1, _endpoints.Length - 1).Select(step => _endpoints[(index + step) % _endpoints.Length].Address).Where(a => !lost.Contains(a)).Select(a => (IpAddress?)a).FirstOrDefault(),
            MaxReplicaLength,
            ReplicaPiece,
            Options.ReplicaReadLogsInFlight,
            Options.ReplicaStates,
            ReplicaAckTimeout)
        : null;

    private ServerSession CreateSession(TcpConnection connection, ImportedState imported) => Options.Service switch
    {
        ReferenceService.Stream => new StreamServerSession(connection, imported, Options.SessionBytes / Options.ChunkSize, Options.ChunkSize, StreamKey, Options.SnapshotEvery),
        ReferenceService.File => new FileServerSession(connection, imported, Options.SessionBytes, Options.ChunkSize, Options.SnapshotEvery),
        ReferenceService.Upload => new UploadServerSession(connection, imported, Options.ChunkSize, Options.ChunkSize, Options.SnapshotEvery),
        _ => new RequestResponseServerSession(connection, imported, Options.MessageSize, Options.SnapshotEvery),
    };
}
