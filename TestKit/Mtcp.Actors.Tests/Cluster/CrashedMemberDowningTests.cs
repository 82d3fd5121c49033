using System.Net;
using System.Net.Sockets;
using Mtcp.Actors.Cluster;

namespace Mtcp.Actors.Tests.Cluster;

/// <summary>
/// The evidence <see cref="CrashedMemberDowning"/> downs a member on: a connect to its control port that the host
/// refuses. The whole decision (a SIGKILLed node of a pair downed by the survivor, which keeps running and takes its
/// connections over) is tested with real processes in ServerCrashTests.
/// </summary>
[Trait("Category", "Actors")]
public sealed class CrashedMemberDowningTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_port_nothing_listens_on_any_more_must_be_reported_refused()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        Assert.Equal(ControlPortOutcome.Refused, await CrashedMemberDowning.ProbeControlPortAsync("127.0.0.1", port, Timeout));
    }

    [Fact]
    public async Task A_port_a_process_listens_on_must_be_reported_accepted_even_when_the_process_never_accepts()
    {
        // A stalled process (a long GC pause) still has its listening socket: the kernel completes the handshake.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;

        Assert.Equal(ControlPortOutcome.Accepted, await CrashedMemberDowning.ProbeControlPortAsync("127.0.0.1", port, Timeout));
    }
}
