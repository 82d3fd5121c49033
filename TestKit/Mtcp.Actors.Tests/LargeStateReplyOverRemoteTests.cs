using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.Serialization;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// Two ActorSystems on loopback talking over Akka.Remote with the reference configuration: the origin
/// server (S1) sends state replies to an actor on the new server (S2, the TestKit's system).
/// </summary>
[Trait("Category", "Actors")]
public sealed class LargeStateReplyOverRemoteTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan TransferTimeout = TimeSpan.FromSeconds(20);

    private readonly ActorSystem _origin;
    private readonly ControlSettings _settings;

    public LargeStateReplyOverRemoteTests()
        : base(NodeConfig(), "destination")
    {
        _origin = ActorSystem.Create("origin", OriginConfig().WithFallback(NodeConfig()).WithFallback(DefaultConfig));
        _settings = ControlSettings.Create(Sys);
    }

    private static Config NodeConfig() => MtcpConfig.WithFallback(ConfigurationFactory.ParseString("""
        akka.actor.provider = remote
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        """));

    /// <summary>The origin can also send <see cref="Truncated"/> messages: a control frame cut short under the real id and manifest.</summary>
    private static Config OriginConfig() => ConfigurationFactory.ParseString($$"""
        akka.actor.serializers.truncating = "{{typeof(TruncatingSerializer).AssemblyQualifiedName}}"
        akka.actor.serialization-bindings { "{{typeof(Truncated).AssemblyQualifiedName}}" = truncating }
        """);

    protected override void AfterAll()
    {
        Shutdown(_origin, verifySystemShutdown: true);
        base.AfterAll();
    }

    /// <summary>Starts the receiver on S2 and returns S1's remote reference to it.</summary>
    private async Task<IActorRef> RemoteReceiverAsync(params ulong[] expectedRequests)
    {
        // The control actor's path: untrusted mode lets a remote system select only trusted paths.
        const string Name = "mtcp-control";
        Sys.ActorOf(Props.Create(() => new ReassemblingReceiver(TestActor, _settings, expectedRequests)), Name);
        var address = ((ExtendedActorSystem)Sys).Provider.DefaultAddress;
        return await _origin.ActorSelection(new RootActorPath(address) / "user" / Name).ResolveOne(TransferTimeout);
    }

    [Fact]
    public async Task State_reply_with_1_MB_of_application_state_must_arrive_intact_in_chunks()
    {
        var appState = ControlSamples.RandomBytes(1 << 20, seed: 253);
        var reply = ControlSamples.Replying(42, appState);
        var receiver = await RemoteReceiverAsync(42);

        var messages = StateReplyTransfer.ToMessages(reply, _settings);
        foreach (var message in messages)
        {
            receiver.Tell(message, ActorRefs.NoSender);
        }

        var received = await ExpectMsgAsync<StateReply>(TransferTimeout);
        Assert.True(messages.Count > 1, "a 1 MB reply must travel in chunks");
        Assert.True(appState.AsSpan().SequenceEqual(received.AppState.Span), "application state bytes differ");
        Assert.Equal(reply, received);
    }

    [Fact]
    public async Task State_reply_with_1_MB_of_application_state_sent_whole_must_be_dropped_by_akka_remote()
    {
        var reply = ControlSamples.Replying(42, ControlSamples.RandomBytes(1 << 20, seed: 254));
        var receiver = await RemoteReceiverAsync(42);

        await CreateEventFilter(_origin).Error(contains: "Discarding oversized payload").ExpectOneAsync(
            () =>
            {
                receiver.Tell(reply, ActorRefs.NoSender);
                return Task.CompletedTask;
            });
        receiver.Tell(ControlSamples.Ack, ActorRefs.NoSender);

        // One association delivers in order: had the reply arrived, it would come before the ack.
        Assert.Equal(ControlSamples.Ack, await ExpectMsgAsync<StateAck>(TransferTimeout));
    }

    [Fact]
    public async Task Every_control_message_must_cross_the_remote_boundary_unchanged()
    {
        var receiver = await RemoteReceiverAsync();
        ControlMessage[] messages = [ControlSamples.Request, ControlSamples.Reply, ControlSamples.Ack, ControlSamples.Reject];

        foreach (var message in messages)
        {
            receiver.Tell(message, ActorRefs.NoSender);
        }

        foreach (var message in messages)
        {
            var received = await ExpectMsgAsync<ControlMessage>(TransferTimeout);
            Assert.Equal(message.GetType(), received.GetType());
            Assert.Equal(message, received);
        }
    }

    [Fact]
    public async Task Chunk_for_a_request_not_expected_must_be_refused_on_arrival()
    {
        var reply = ControlSamples.Replying(7, ControlSamples.RandomBytes(300_000, seed: 255));
        var receiver = await RemoteReceiverAsync(42);

        receiver.Tell(StateReplyTransfer.ToMessages(reply, _settings)[0], ActorRefs.NoSender);

        var result = await ExpectMsgAsync<AssemblyResult>(TransferTimeout);
        Assert.Equal(AssemblyStatus.UnexpectedRequest, result.Status);
    }

    [Fact]
    public async Task Malformed_control_frame_must_be_dropped_and_leave_the_association_and_receiver_working()
    {
        var receiver = await RemoteReceiverAsync();

        // Akka.Remote logs the serializer's exception, which names the wire error, and drops that one message.
        await EventFilter.Custom(logEvent =>
            logEvent is Warning { Cause: SerializationException cause }
            && logEvent.Message.ToString()!.Contains("serializer id [253] and manifest [SRP]", StringComparison.Ordinal)
            && cause.Message.Contains(nameof(ControlWireError.BodyLengthMismatch), StringComparison.Ordinal)).ExpectOneAsync(() =>
        {
            receiver.Tell(new Truncated(ControlSamples.Reply), ActorRefs.NoSender);
            return Task.CompletedTask;
        });
        receiver.Tell(ControlSamples.Ack, ActorRefs.NoSender);

        Assert.Equal(ControlSamples.Ack, await ExpectMsgAsync<StateAck>(TransferTimeout));
    }

    /// <summary>A control message to be sent damaged.</summary>
    public sealed record Truncated(ControlMessage Inner);

    /// <summary>
    /// Writes a <see cref="Truncated"/> message as its inner frame minus the last byte, under
    /// <see cref="ControlMessageSerializer"/>'s identifier and the inner manifest, so the receiver's
    /// <see cref="ControlMessageSerializer"/> is handed a malformed frame.
    /// </summary>
    public sealed class TruncatingSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
    {
        public override int Identifier => ControlMessageSerializerIdentifier;

        public override string Manifest(object o) => ((Truncated)o).Inner.Manifest;

        public override byte[] ToBinary(object obj) => ((Truncated)obj).Inner.ToArray()[..^1];

        public override object FromBinary(byte[] bytes, string manifest) =>
            throw new NotSupportedException("only the sending side uses this serializer");
    }

    private const int ControlMessageSerializerIdentifier = 253;

    /// <summary>
    /// The receiving half of a control connection, reduced to what these tests need: whole control messages
    /// pass through, chunks go through a <see cref="StateReplyAssembler"/>, and the completed reply or the
    /// rejection goes to <c>target</c>.
    /// </summary>
    private sealed class ReassemblingReceiver : ReceiveActor
    {
        public ReassemblingReceiver(IActorRef target, ControlSettings settings, IReadOnlyList<ulong> expectedRequests)
        {
            var assembler = new StateReplyAssembler(settings);
            foreach (var requestId in expectedRequests)
            {
                assembler.Expect(requestId);
            }

            Receive<StateReplyChunk>(chunk =>
            {
                var result = assembler.Add(chunk);
                if (result.Reply is not null)
                {
                    target.Tell(result.Reply);
                }
                else if (result.IsRejection)
                {
                    target.Tell(result);
                }
            });
            Receive<ControlMessage>(target.Tell);
        }
    }
}
