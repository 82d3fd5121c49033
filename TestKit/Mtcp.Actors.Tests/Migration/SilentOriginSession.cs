using Akka.Actor;
using Mtcp.Actors.Replication;
using Mtcp.Stack;
using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Migration;

/// <summary>
/// A request session (the upload reference application) on node 0 of a two-node <see cref="MigrationCluster"/> with
/// buddy replication, driven by a <see cref="SansIoClientDriver"/> so that a test chooses each migration's local port
/// and may alter its special SYNs: the setting of the takeover-from-a-silent-origin tests.
/// </summary>
internal static class SilentOriginSession
{
    public const TestTransport Transport = TestTransport.Memory;
    public static readonly IpAddress ClientAddress = IpAddress.Parse("10.0.0.9");
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>A session of <paramref name="requests"/> requests, one answered, whose replica node 1 holds: the client, its server and the buddy.</summary>
    public static async Task<(SansIoClientDriver Driver, ServerEndpoint Origin, ServerEndpoint Buddy)> StartAsync(MigrationCluster cluster, ushort localPort, int requests = 2)
    {
        var transport = cluster.Fabric.Attach(ClientAddress);
        var driver = new SansIoClientDriver(transport, ClientAddress);
        var origin = MigrationCluster.Service(Transport, 0);
        driver.Open(origin, localPort);
        driver.RunUntil(() => driver.Client.State == TcpState.Established && driver.Client.CanMigrate, Patience, "the handshake with the origin");
        driver.Write(ReferenceApps.Command(ReferenceApps.Upload, requests * ReferenceApps.RequestLength));
        SendRequest(driver, 0);
        driver.RunUntil(() => driver.BytesRead == ReferenceApps.DigestLength, Patience, "the first answer");
        await AwaitHeldFromOriginAsync(cluster);
        return (driver, origin, MigrationCluster.Service(Transport, 1));
    }

    /// <summary>The client sends request number <paramref name="index"/> of the session.</summary>
    public static void SendRequest(SansIoClientDriver driver, long index)
    {
        var request = new byte[ReferenceApps.RequestLength];
        StreamPattern.Fill(ReferenceApps.UploadKey, index * ReferenceApps.RequestLength, request);
        driver.Write(request);
    }

    /// <summary>Waits until node 1 holds a replica node 0 sent (within <see cref="Patience"/>).</summary>
    public static async Task AwaitHeldFromOriginAsync(MigrationCluster cluster)
    {
        var originAddress = Akka.Cluster.Cluster.Get(cluster.Servers[0].System).SelfAddress;
        using var patience = new CancellationTokenSource(Patience);
        while (!(await StatisticsAsync(cluster)).HeldByOrigin.ContainsKey(originAddress))
        {
            await Task.Delay(50, patience.Token);
        }
    }

    /// <summary>
    /// Waits until node 1 counts <paramref name="count"/> connections taken over from a silent origin (within
    /// <see cref="Patience"/>): it counts one on its new endpoint's state ack, which may follow the client's completion.
    /// </summary>
    public static async Task AwaitTakenOverFromSilentOriginsAsync(MigrationCluster cluster, int count)
    {
        using var patience = new CancellationTokenSource(Patience);
        while ((await StatisticsAsync(cluster)).TakenOverFromSilentOrigins != count)
        {
            await Task.Delay(50, patience.Token);
        }
    }

    public static Task<ReplicaStatistics> StatisticsAsync(MigrationCluster cluster, int node = 1) =>
        cluster.Servers[node].Control.Ask<ReplicaStatistics>(GetReplicaStatistics.Instance, Patience);
}
