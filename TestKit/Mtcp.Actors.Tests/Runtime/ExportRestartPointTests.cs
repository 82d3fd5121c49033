using Mtcp.Actors.Api;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Packets;
using Mtcp.Stack;
using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// export_state (thesis 3.3.2) through the runtime's application stream: the application's call only tells the endpoint
/// actor, while the actor completes reads and writes from its own mailbox as segments come. The restart point the
/// endpoint records must be where the application stood when it exported, whatever the actor served meanwhile: a
/// snapshot that counts bytes the application read after its export makes the next server replay from the wrong place
/// (it skips them, and takes as many of the client's later bytes in their stead). The endpoint actor is a probe here,
/// the engine and the stream are the real ones, so each step happens in the order the test gives.
/// </summary>
[Trait("Category", "Actors")]
public sealed class ExportRestartPointTests : Akka.TestKit.Xunit2.TestKit
{
    private const ushort ServerPort = 7000;
    private const int Command = 9;
    private const int Request = 4096;
    private const uint ClientIss = 0xFFFF_F000;
    private const uint ServerIss = 0x1000;

    [Fact]
    public async Task A_read_asked_after_an_export_must_not_be_served_before_the_endpoint_took_the_export()
    {
        var (server, channel, stream) = Established(Command + Request);
        var connection = new MtcpConnection(channel);

        // The application reads its command and exports the state that says so: the restart point is after the command.
        var command = new byte[Command];
        var reading = connection.Stream.ReadAsync(command);
        ExpectMsg<ReadRequested>();
        stream.ServeRead();
        Assert.Equal(Command, await reading);
        connection.ExportState([1, 2, 3]);
        var export = ExpectMsg<ExportRequested>();

        // Its next read is asked before the endpoint has taken the export from its mailbox, where a segment that came
        // earlier makes the engine readable: the read waits for the export.
        var request = new byte[Request];
        reading = connection.Stream.ReadAsync(request);
        ExpectMsg<ReadRequested>();
        stream.Serve(TcpEvent.Readable);
        Assert.False(reading.IsCompleted, "a read asked after the export was served before the endpoint took the export");

        // The endpoint takes the export (as its actor does), then serves what waited.
        var snapshot = server.ExportState(export.AppState);
        stream.ExportTaken();
        Assert.Equal(Command, snapshot.RcvSeqSnapshot - new SeqNumber(ClientIss + 1));
        Assert.Equal(Request, await reading.AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_write_asked_after_an_export_must_not_be_served_before_the_endpoint_took_the_export()
    {
        var (server, channel, stream) = Established(Command);
        var connection = new MtcpConnection(channel);
        connection.ExportState([1, 2, 3]);
        var export = ExpectMsg<ExportRequested>();

        // The answer is written before the endpoint has taken the export, where an ACK that came earlier makes the
        // engine writable: the write waits for the export, or the snapshot would count an answer its state has not given.
        var answer = new byte[32];
        var writing = connection.Stream.WriteAsync(answer);
        ExpectMsg<WriteRequested>();
        stream.Serve(TcpEvent.Writable);
        Assert.False(writing.IsCompleted, "a write asked after the export was served before the endpoint took the export");

        var snapshot = server.ExportState(export.AppState);
        stream.ExportTaken();
        Assert.Equal(new SeqNumber(ServerIss + 1), snapshot.SndSeqSnapshot);
        await writing.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(new SeqNumber(ServerIss + 1) + answer.Length, server.ExportState([4]).SndSeqSnapshot);
    }

    [Fact]
    public async Task Reads_must_go_on_once_every_export_is_taken_even_one_the_endpoint_refused()
    {
        var (server, channel, stream) = Established(Command);
        var connection = new MtcpConnection(channel);
        connection.ExportState([1]);
        connection.ExportState([2]);
        var first = ExpectMsg<ExportRequested>();
        ExpectMsg<ExportRequested>();
        var command = new byte[Command];
        var reading = connection.Stream.ReadAsync(command);
        ExpectMsg<ReadRequested>();

        server.ExportState(first.AppState);
        stream.ExportTaken();
        Assert.False(reading.IsCompleted, "a read was served while an export was still in flight");

        // The second is refused (the actor logs it): taken all the same, and the read goes on.
        stream.ExportTaken();
        Assert.Equal(Command, await reading.AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
    }

    /// <summary>A server engine with <paramref name="clientBytes"/> of the client's bytes received and unread, and its application stream.</summary>
    private (TcpConnection Server, EndpointChannel Channel, StreamEvents Stream) Established(int clientBytes)
    {
        var config = TcpConfig.Default with { RetainReadLog = true };
        var network = new SimNetwork(1, LinkConditions.Perfect);
        var client = network.Add(new TcpNode(IpAddress.Parse("10.0.0.9"), config, () => new SeqNumber(ClientIss)));
        var serverNode = network.Add(new TcpNode(IpAddress.Parse("10.0.0.2"), config, () => new SeqNumber(ServerIss)));
        serverNode.Listen(ServerPort);
        var clientConnection = client.Connect(network.Now, serverNode.Address, ServerPort, localPort: 45000);
        Assert.True(network.Drive(() => clientConnection.State == TcpState.Established, TimeSpan.FromSeconds(5)));
        var data = new byte[clientBytes];
        StreamPattern.Fill(1, 0, data);
        Assert.Equal(clientBytes, clientConnection.Write(data));
        var server = serverNode.Connections[0];
        Assert.True(network.Drive(() => server.BytesReadable == clientBytes, TimeSpan.FromSeconds(5)));
        while (server.PollEvent(out _))
        {
        }

        var channel = new EndpointChannel(TestActor, serverNode.Address, new ConnectionKey(client.Address, 45000, ServerPort), new ConnectionId(client.Address, 45000, serverNode.Address, ServerPort));
        return (server, channel, new StreamEvents(channel, new TcpConnectionBuffers(server)));
    }
}
