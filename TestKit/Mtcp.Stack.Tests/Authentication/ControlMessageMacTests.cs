using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire.Control;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

[Trait("Category", "Migration")]
public sealed class ControlMessageMacTests
{
    private static readonly byte[] S1Identity = "akka.tcp://mtcp@10.1.0.1:4053"u8.ToArray();
    private static readonly byte[] S2Identity = "akka.tcp://mtcp@10.1.0.2:4053"u8.ToArray();

    private static byte[] StateAckFrame()
    {
        var ack = new StateAck(requestId: 42, Cid);
        var frame = new byte[ack.GetEncodedLength()];
        ack.Encode(frame);
        return frame;
    }

    private static byte[] Sign(MigrationAuthenticator authenticator, byte[] frame, byte[] sender, byte[] receiver)
    {
        var mac = new byte[authenticator.ControlMacLength];
        authenticator.SignControlMessage(frame, sender, receiver, mac);
        return mac;
    }

    [Fact]
    public void Signed_control_frame_must_verify_at_the_receiver()
    {
        var frame = StateAckFrame();
        var mac = Sign(Authenticator(), frame, S2Identity, S1Identity);

        Assert.True(Authenticator().VerifyControlMessage(frame, S2Identity, S1Identity, mac));
    }

    [Fact]
    public void Flipping_any_bit_of_the_frame_the_identities_or_the_mac_must_fail()
    {
        var frame = StateAckFrame();
        var mac = Sign(Authenticator(), frame, S2Identity, S1Identity);
        var verifier = Authenticator();

        foreach (var (name, field) in new[] { ("frame", frame), ("sender", S2Identity), ("receiver", S1Identity), ("mac", mac) })
        {
            for (var bit = 0; bit < field.Length * 8; bit++)
            {
                field[bit / 8] ^= (byte)(0x80 >> (bit % 8));
                var verified = verifier.VerifyControlMessage(frame, S2Identity, S1Identity, mac);
                field[bit / 8] ^= (byte)(0x80 >> (bit % 8));

                Assert.False(verified, $"bit {bit} of the {name} flipped");
            }
        }

        Assert.True(verifier.VerifyControlMessage(frame, S2Identity, S1Identity, mac));
    }

    [Fact]
    public void A_message_reflected_back_to_its_sender_must_fail()
    {
        var frame = StateAckFrame();
        var mac = Sign(Authenticator(), frame, S2Identity, S1Identity);

        Assert.False(Authenticator().VerifyControlMessage(frame, S1Identity, S2Identity, mac));
    }

    [Fact]
    public void Mac_under_another_cluster_key_or_of_the_wrong_length_must_fail()
    {
        var frame = StateAckFrame();
        var forged = Sign(MigrationAuthenticator.FromKey(OtherClusterKeyBytes()), frame, S2Identity, S1Identity);
        var good = Sign(Authenticator(), frame, S2Identity, S1Identity);

        Assert.False(Authenticator().VerifyControlMessage(frame, S2Identity, S1Identity, forged));
        Assert.False(Authenticator().VerifyControlMessage(frame, S2Identity, S1Identity, good.AsSpan(0, 8)));
        Assert.False(Authenticator().VerifyControlMessage(frame, S2Identity, S1Identity, []));
        Assert.Throws<ArgumentException>(() => Authenticator().SignControlMessage(frame, S2Identity, S1Identity, new byte[8]));
    }

    [Fact]
    public void Frames_of_any_size_must_be_macced_without_a_size_limit()
    {
        var large = Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 31)).ToArray();
        var mac = Sign(Authenticator(), large, S1Identity, S2Identity);

        Assert.True(Authenticator().VerifyControlMessage(large, S1Identity, S2Identity, mac));
        large[^1] ^= 1;
        Assert.False(Authenticator().VerifyControlMessage(large, S1Identity, S2Identity, mac));
    }

    [Fact]
    public void Identity_longer_than_255_bytes_must_be_refused()
    {
        Assert.Throws<ArgumentException>(() => Sign(Authenticator(), StateAckFrame(), new byte[256], S1Identity));
    }
}
