using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

[Trait("Category", "Migration")]
public sealed class ControlMessageSealingTests
{
    private static readonly byte[] S1Identity = "akka.tcp://mtcp@10.1.0.1:4053"u8.ToArray();
    private static readonly byte[] S2Identity = "akka.tcp://mtcp@10.1.0.2:4053"u8.ToArray();
    private static readonly byte[] S3Identity = "akka.tcp://mtcp@10.1.0.3:4053"u8.ToArray();

    private static readonly StateRequest Message = Request(0x0123456789ABCDEF, new SeqNumber(1000));

    [Fact]
    public void A_sealed_message_must_open_at_its_receiver_as_the_same_message()
    {
        var envelope = ControlMessageSealing.Seal(Authenticator(), Message, S2Identity, S1Identity);

        Assert.Equal(ControlOpenResult.Opened, ControlMessageSealing.TryOpen(Authenticator(), envelope, S2Identity, S1Identity, out var opened));
        Assert.Equal(Message, opened);
    }

    [Fact]
    public void Any_flipped_bit_must_keep_the_message_closed()
    {
        var envelope = ControlMessageSealing.Seal(Authenticator(), Message, S2Identity, S1Identity);

        for (var bit = 0; bit < envelope.Length * 8; bit++)
        {
            envelope[bit / 8] ^= (byte)(0x80 >> (bit % 8));
            var result = ControlMessageSealing.TryOpen(Authenticator(), envelope, S2Identity, S1Identity, out var opened);
            envelope[bit / 8] ^= (byte)(0x80 >> (bit % 8));

            Assert.NotEqual(ControlOpenResult.Opened, result);
            Assert.Null(opened);
        }
    }

    [Fact]
    public void A_message_replayed_on_another_association_or_reflected_must_be_refused_before_its_MAC_is_checked()
    {
        var envelope = ControlMessageSealing.Seal(Authenticator(), Message, S2Identity, S1Identity);

        Assert.Equal(ControlOpenResult.WrongPeer, ControlMessageSealing.TryOpen(Authenticator(), envelope, S2Identity, S3Identity, out _));
        Assert.Equal(ControlOpenResult.WrongPeer, ControlMessageSealing.TryOpen(Authenticator(), envelope, S1Identity, S2Identity, out _));
    }

    [Fact]
    public void A_message_sealed_without_the_cluster_key_must_fail_its_MAC()
    {
        var envelope = ControlMessageSealing.Seal(MigrationAuthenticator.FromKey(OtherClusterKeyBytes()), Message, S2Identity, S1Identity);

        Assert.Equal(ControlOpenResult.BadMac, ControlMessageSealing.TryOpen(Authenticator(), envelope, S2Identity, S1Identity, out _));
    }

    [Fact]
    public void After_a_key_rotation_messages_sealed_with_the_previous_key_must_still_open()
    {
        var old = new ClusterKey(0, ClusterKeyBytes());
        var rotated = new MigrationAuthenticator(new MigrationAuthenticatorOptions(new ClusterKey(1, OtherClusterKeyBytes()), old));
        var envelope = ControlMessageSealing.Seal(new MigrationAuthenticator(new MigrationAuthenticatorOptions(old)), Message, S2Identity, S1Identity);

        Assert.Equal(ControlOpenResult.Opened, ControlMessageSealing.TryOpen(rotated, envelope, S2Identity, S1Identity, out _));
    }

    [Fact]
    public void Sealing_into_a_short_buffer_must_fail_without_throwing()
    {
        var length = ControlEnvelope.GetEncodedLength(S2Identity.Length, S1Identity.Length, Message.GetEncodedLength());
        var buffer = new byte[length - 1];

        Assert.False(ControlMessageSealing.TrySeal(Authenticator(), Message, S2Identity, S1Identity, buffer, out _));
    }
}
