using System.Runtime.Serialization;
using Akka.Configuration;
using Akka.Serialization;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class ControlMessageSerializerTests : Akka.TestKit.Xunit2.TestKit
{
    private const int ExpectedIdentifier = 253;

    public ControlMessageSerializerTests()
        : base(MtcpConfig.WithFallback(ConfigurationFactory.Empty), nameof(ControlMessageSerializerTests))
    {
    }

    private ControlMessageSerializer Ours => (ControlMessageSerializer)Sys.Serialization.FindSerializerForType(typeof(StateAck));

    private object RoundTripThroughAkka(object message)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        var manifest = Serialization.ManifestFor(serializer, message);
        var bytes = serializer.ToBinary(message);
        return Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);
    }

    [Theory]
    [MemberData(nameof(ControlSamples.Manifests), MemberType = typeof(ControlSamples))]
    public void Control_message_must_be_bound_to_our_serializer_by_the_reference_config(string manifest)
    {
        var message = ControlSamples.ByManifest(manifest);

        var serializer = Sys.Serialization.FindSerializerFor(message);

        Assert.IsType<ControlMessageSerializer>(serializer);
        Assert.Equal(ExpectedIdentifier, serializer.Identifier);
        Assert.Equal(manifest, Serialization.ManifestFor(serializer, message));
    }

    [Theory]
    [MemberData(nameof(ControlSamples.Manifests), MemberType = typeof(ControlSamples))]
    public void Control_message_must_round_trip_through_the_serialization_extension(string manifest)
    {
        var message = ControlSamples.ByManifest(manifest);

        var decoded = RoundTripThroughAkka(message);

        Assert.Equal(message.GetType(), decoded.GetType());
        Assert.Equal(message, decoded);
    }

    [Theory]
    [MemberData(nameof(ControlSamples.Manifests), MemberType = typeof(ControlSamples))]
    public void Control_message_must_be_written_in_the_wire_control_encoding(string manifest)
    {
        var message = ControlSamples.ByManifest(manifest);

        Assert.Equal(Convert.ToHexString(message.ToArray()), Convert.ToHexString(Ours.ToBinary(message)));
    }

    [Fact]
    public void Large_state_reply_must_round_trip_byte_for_byte()
    {
        var reply = ControlSamples.Replying(9, ControlSamples.RandomBytes(1 << 20, seed: 1));

        var decoded = Assert.IsType<StateReply>(RoundTripThroughAkka(reply));

        Assert.True(reply.AppState.Span.SequenceEqual(decoded.AppState.Span));
        Assert.Equal(reply, decoded);
    }

    [Fact]
    public void State_reply_chunk_must_be_bound_to_our_serializer_and_round_trip()
    {
        var chunk = StateReplyChunk.Split(5, ControlSamples.RandomBytes(1000, seed: 2), 300)[2];

        var serializer = Sys.Serialization.FindSerializerFor(chunk);
        var decoded = RoundTripThroughAkka(chunk);

        Assert.IsType<ControlMessageSerializer>(serializer);
        Assert.Equal(StateReplyChunk.SerializerManifest, Serialization.ManifestFor(serializer, chunk));
        Assert.Equal(chunk, decoded);
    }

    [Fact]
    public void Sealed_control_message_must_be_bound_to_our_serializer_and_round_trip_its_envelope()
    {
        var sealedMessage = new SealedControlMessage(ControlSamples.RandomBytes(600, seed: 3));

        var serializer = Sys.Serialization.FindSerializerFor(sealedMessage);
        var decoded = Assert.IsType<SealedControlMessage>(RoundTripThroughAkka(sealedMessage));

        Assert.IsType<ControlMessageSerializer>(serializer);
        Assert.Equal(SealedControlMessage.SerializerManifest, Serialization.ManifestFor(serializer, sealedMessage));
        Assert.Equal(sealedMessage.Envelope.ToArray(), decoded.Envelope.ToArray());
    }

    [Fact]
    public void A_message_without_a_binding_must_not_be_serialized_nor_deserialized()
    {
        var serializer = Sys.Serialization.FindSerializerFor(new UnboundMessage(1, "x"));

        Assert.IsType<UnboundMessageSerializer>(serializer);
        var refused = Assert.Throws<SerializationException>(() => serializer.ToBinary(new UnboundMessage(1, "x")));
        Assert.Contains(typeof(UnboundMessage).FullName!, refused.Message, StringComparison.Ordinal);
        Assert.Throws<SerializationException>(() => serializer.FromBinary([1, 2, 3], typeof(UnboundMessage)));
    }

    [Fact]
    public async Task Kill_and_poison_pill_from_another_node_must_not_be_deserialized_while_identify_still_is()
    {
        // A node's system (Akka.Remote's bindings): identifier 16 is what a remote message names to be read by
        // Akka.NET's miscellaneous-message serializer, and Kill is bound to it.
        var node = Akka.Actor.ActorSystem.Create("node", TestNodes.Remote());
        try
        {
            var misc = Assert.IsType<RemoteSafeMiscMessageSerializer>(node.Serialization.FindSerializerFor(Akka.Actor.Kill.Instance));
            Assert.Equal(16, misc.Identifier);
            foreach (var harmful in new object[] { Akka.Actor.Kill.Instance, Akka.Actor.PoisonPill.Instance })
            {
                Assert.Throws<SerializationException>(() => node.Serialization.Deserialize(misc.ToBinary(harmful), misc.Identifier, misc.Manifest(harmful)));
            }

            var bytes = misc.ToBinary(new Akka.Actor.Identify(7));
            var identify = Assert.IsType<Akka.Actor.Identify>(node.Serialization.Deserialize(bytes, misc.Identifier, misc.Manifest(new Akka.Actor.Identify(7))));
            Assert.Equal(7, identify.MessageId);
        }
        finally
        {
            await node.Terminate();
        }
    }

    [Fact]
    public void Akka_json_serializer_must_not_be_registered()
    {
        // Identifier 1 is Akka.NET's JSON serializer, which would instantiate any type a payload names.
        var json = "{\"$type\":\"System.Version, System.Private.CoreLib\"}"u8.ToArray();

        Assert.ThrowsAny<SerializationException>(() => Sys.Serialization.Deserialize(json, 1, typeof(Version)));
    }

    [Theory]
    [MemberData(nameof(ControlSamples.Manifests), MemberType = typeof(ControlSamples))]
    public void Truncated_bytes_must_raise_a_serialization_exception_naming_the_wire_error(string manifest)
    {
        var bytes = ControlSamples.ByManifest(manifest).ToArray();

        var error = Assert.Throws<SerializationException>(() => Sys.Serialization.Deserialize(bytes[..^1], ExpectedIdentifier, manifest));

        Assert.Contains($"[{manifest}]", error.Message);
        Assert.Contains(nameof(ControlWireError.BodyLengthMismatch), error.Message);
    }

    [Fact]
    public void Header_cut_short_must_raise_a_serialization_exception_naming_truncation()
    {
        var error = Assert.Throws<SerializationException>(() => Ours.FromBinary(new byte[3], StateAck.SerializerManifest));

        Assert.Contains(nameof(ControlWireError.Truncated), error.Message);
    }

    [Fact]
    public void Bytes_of_another_message_type_must_be_refused()
    {
        var error = Assert.Throws<SerializationException>(() => Ours.FromBinary(ControlSamples.Ack.ToArray(), StateReply.SerializerManifest));

        Assert.Contains(nameof(ControlWireError.UnexpectedMessageType), error.Message);
    }

    [Fact]
    public void Unknown_manifest_must_be_refused()
    {
        var error = Assert.Throws<SerializationException>(() => Ours.FromBinary(ControlSamples.Ack.ToArray(), "XYZ"));

        Assert.Contains("[XYZ]", error.Message);
        Assert.Contains(nameof(ControlWireError.UnknownManifest), error.Message);
    }

    [Fact]
    public void Malformed_chunk_must_be_refused()
    {
        var bytes = StateReplyChunk.Split(5, new byte[100], 40)[0].ToArray();
        bytes[0] = 2;

        var error = Assert.Throws<SerializationException>(() => Ours.FromBinary(bytes, StateReplyChunk.SerializerManifest));

        Assert.Contains(nameof(ControlWireError.UnsupportedVersion), error.Message);
    }

    [Fact]
    public void Serializer_must_refuse_to_write_a_type_it_does_not_own()
    {
        Assert.Throws<ArgumentException>(() => Ours.ToBinary(new UnboundMessage(1, "x")));
        Assert.Throws<ArgumentException>(() => Ours.Manifest(new UnboundMessage(1, "x")));
    }

    public sealed record UnboundMessage(int Number, string Text);
}
