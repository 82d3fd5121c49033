using System.Runtime.Serialization;
using Akka.Serialization;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class AbandonStateTransferTests : Akka.TestKit.Xunit2.TestKit
{
    public AbandonStateTransferTests()
        : base(MtcpConfig.Reference)
    {
    }

    [Fact]
    public void Notice_must_encode_to_the_documented_bytes()
    {
        var bytes = new AbandonStateTransfer(0x0102030405060708, StateTransferAbandonReason.ReplyRefused).ToArray();

        Assert.Equal(new byte[] { 1, 2, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 }, bytes);
    }

    [Theory]
    [InlineData(nameof(StateTransferAbandonReason.TimedOut))]
    [InlineData(nameof(StateTransferAbandonReason.ReplyRefused))]
    public void Notice_must_round_trip_through_the_control_serializer(string reason)
    {
        var notice = new AbandonStateTransfer(ulong.MaxValue, Enum.Parse<StateTransferAbandonReason>(reason));
        var serializer = Sys.Serialization.FindSerializerFor(notice);

        Assert.IsType<ControlMessageSerializer>(serializer);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, notice);
        Assert.Equal("SAB", manifest);
        Assert.Equal(notice, Sys.Serialization.Deserialize(serializer.ToBinary(notice), serializer.Identifier, manifest));
    }

    [Theory]
    [InlineData(new byte[] { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, ControlWireError.Truncated)]
    [InlineData(new byte[] { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, ControlWireError.TrailingBytes)]
    [InlineData(new byte[] { 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, ControlWireError.UnsupportedVersion)]
    [InlineData(new byte[] { 1, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0 }, ControlWireError.ReservedNotZero)]
    [InlineData(new byte[] { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, ControlWireError.BadRejectReason)]
    [InlineData(new byte[] { 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, ControlWireError.BadRejectReason)]
    public void Malformed_notice_must_be_refused_with_its_error(byte[] bytes, ControlWireError expected)
    {
        Assert.False(AbandonStateTransfer.TryDecode(bytes, out var notice, out var error));
        Assert.Null(notice);
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Malformed_notice_must_fail_deserialization_naming_the_manifest()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(new AbandonStateTransfer(1, StateTransferAbandonReason.TimedOut));

        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary([1], AbandonStateTransfer.SerializerManifest));

        Assert.Contains("[SAB]", error.Message);
    }
}
