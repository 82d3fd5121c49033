using System.Diagnostics;
using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Hosting;

namespace Mtcp.Bench;

/// <summary>
/// What one control round trip costs on this host: two actor systems of this process on a loopback address, each with
/// the server nodes' Akka.Remote settings (the reference configuration: frame and buffer sizes, batching) over mutual
/// TLS with certificates of a CA made here, and a message of the size of a small sealed replica update sent from one
/// to an actor of the other and back, one at a time. Replication's ack delay is this round trip plus the actor hops
/// and the sealing on either side; "at most one control round trip added" is held against it.
/// </summary>
internal static class ControlRoundTrip
{
    /// <summary>About a sealed read-log update of a few bytes, or its ack, as the control connection carries it.</summary>
    public const int MessageBytes = 256;

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Round trips in microseconds, after <paramref name="warmUp"/> unmeasured; then the bulk rate in bytes per second:
    /// <paramref name="bulkBytes"/> in messages of <paramref name="bulkMessageBytes"/> (a read log), <paramref name="bulkWindow"/>
    /// unacknowledged at most, each acknowledged by a small message, as replication sends an upload's bytes.
    /// </summary>
    public static async Task<(double[] RoundTripsUs, double BulkBytesPerSecond)> MeasureAsync(
        string scratch, IPAddress address, int count, int warmUp, long bulkBytes, int bulkMessageBytes, int bulkWindow, CancellationToken cancellationToken)
    {
        var certificates = Directory.CreateDirectory(Path.Combine(scratch, "control-round-trip")).FullName;
        ClusterCertificates.CreateAuthority(certificates, "mtcp-bench-control-round-trip-ca", TimeSpan.FromDays(1));
        var asking = Start(certificates, address, "asking");
        var answering = Start(certificates, address, "answering");
        try
        {
            answering.ActorOf(Props.Create(() => new Echo()), "echo");
            var echoPath = new RootActorPath(((ExtendedActorSystem)answering).Provider.DefaultAddress) / "user" / "echo";
            var echo = await asking.ActorSelection(echoPath).ResolveOne(Patience, cancellationToken);
            var message = new byte[MessageBytes];
            var roundTrips = new List<double>(count);
            for (var i = 0; i < warmUp + count; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await echo.Ask<byte[]>(message, Patience, cancellationToken);
                if (i >= warmUp)
                {
                    roundTrips.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                }
            }

            var bulk = new byte[bulkMessageBytes];
            var messages = (int)(bulkBytes / bulkMessageBytes);
            var inFlight = new Queue<Task<byte[]>>();
            var bulkStarted = Stopwatch.GetTimestamp();
            for (var i = 0; i < messages; i++)
            {
                if (inFlight.Count == bulkWindow)
                {
                    await inFlight.Dequeue();
                }

                inFlight.Enqueue(echo.Ask<byte[]>(bulk, Patience, cancellationToken));
            }

            await Task.WhenAll(inFlight);
            return ([.. roundTrips], (double)messages * bulkMessageBytes / Stopwatch.GetElapsedTime(bulkStarted).TotalSeconds);
        }
        finally
        {
            await Task.WhenAll(asking.Terminate(), answering.Terminate());
        }
    }

    private static ActorSystem Start(string certificates, IPAddress address, string name)
    {
        var config = NodeConfig(certificates, address, name);
        return HostActorSystem.Create("mtcp", ControlPlaneSecurity.Read(config).SystemSetup(config));
    }

    /// <summary>A node's configuration as the benchmark's nodes have it, with a certificate <paramref name="name"/> of the CA in <paramref name="certificates"/>.</summary>
    internal static Config NodeConfig(string certificates, IPAddress address, string name)
    {
        var certificate = ClusterCertificates.IssueNode(certificates, name, [address.ToString()], certificates, TimeSpan.FromDays(1));

        // Untrusted mode would refuse the selection of an actor outside the nodes' trusted paths; it changes nothing on the wire.
        return MtcpConfig.WithFallback(ConfigurationFactory.ParseString($$"""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp { hostname = "{{address}}", port = {{ListenPorts.PickUnused(address)}} }
            akka.remote.untrusted-mode = off
            akka.loglevel = WARNING
            {{ClusterCertificates.SecurityConfig(certificates, certificate)}}
            """));
    }

    private sealed class Echo : ReceiveActor
    {
        private static readonly byte[] Ack = new byte[MessageBytes];

        /// <summary>A small message comes back as it is; a larger one (bulk) is answered by a small one, as a replica ack.</summary>
        public Echo() => Receive<byte[]>(message => Sender.Tell(message.Length <= MessageBytes ? message : Ack));
    }
}
