using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Stack.Tests.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Attacks on client-stored state: the client holds the sealed blob, so it (or anyone who reaches a node) may present
/// a forged one, one altered in a single bit, one of another connection, an old one after a newer, or any garbage.
/// Each is refused with its reason, throws nothing, and changes nothing: the next honest presentation is answered as
/// if the attack never happened. The client keeps only what its current server sent.
/// </summary>
[Trait("Category", "Security")]
public sealed class ClientStateSecurityTests
{
    private const int MaxBlob = ClientStoredStateTests.MaxBlob;
    private static readonly ConnectionId OtherCid = new(Client, 40002, S1.Address, S1.Port);

    [Fact]
    public void A_blob_sealed_under_another_cluster_key_must_be_refused()
    {
        var forger = MigrationAuthenticator.FromKey(OtherClusterKeyBytes());
        var forged = ClientStateSealing.Seal(forger, Cid, 1, new SeqNumber(1234), ClientStoredStateTests.SampleState(), ClientStoredStateTests.Nonce(1));

        AssertRefusedThenHonestAnswered(forged, ClientStateRefusal.BadTag);
    }

    [Fact]
    public void A_blob_with_any_one_bit_flipped_must_be_refused()
    {
        var blob = Seal(Cid, sequence: 1);
        var opener = new ClientStateOpener(MaxBlob);
        for (var bit = 0; bit < blob.Length * 8; bit++)
        {
            var altered = blob.ToArray();
            altered[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.Null(opener.Answer(Request(attempt: 0), altered, Authenticator(), out var refusal));
            Assert.True(refusal is ClientStateRefusal.BadTag or ClientStateRefusal.Malformed or ClientStateRefusal.UnknownKeyGeneration, $"bit {bit}: {refusal}");
        }

        Assert.NotNull(opener.Answer(Request(attempt: 0), blob, Authenticator(), out _));
    }

    [Fact]
    public void A_blob_of_another_connection_must_be_refused()
    {
        var foreign = Seal(OtherCid, sequence: 1);

        AssertRefusedThenHonestAnswered(foreign, ClientStateRefusal.BadTag);
    }

    [Fact]
    public void An_old_blob_replayed_after_a_newer_one_must_be_refused()
    {
        var opener = new ClientStateOpener(MaxBlob);
        var old = Seal(Cid, sequence: 4);
        var newer = Seal(Cid, sequence: 5);
        Assert.NotNull(opener.Answer(Request(attempt: 0), newer, Authenticator(), out _));

        Assert.Null(opener.Answer(Request(attempt: 1), old, Authenticator(), out var refusal));

        Assert.Equal(ClientStateRefusal.Stale, refusal);
        Assert.NotNull(opener.Answer(Request(attempt: 1), newer, Authenticator(), out _));
    }

    [Fact]
    public void The_same_special_SYN_presented_twice_must_be_refused_the_second_time()
    {
        var opener = new ClientStateOpener(MaxBlob);
        var blob = Seal(Cid, sequence: 1);
        Assert.NotNull(opener.Answer(Request(attempt: 0), blob, Authenticator(), out _));

        Assert.Null(opener.Answer(Request(attempt: 0), blob, Authenticator(), out var refusal));

        Assert.Equal(ClientStateRefusal.AuthenticatorFailed, refusal);
    }

    [Fact]
    public void Garbage_of_every_length_must_be_refused_without_an_exception()
    {
        var opener = new ClientStateOpener(MaxBlob);
        var random = new Random(31);
        var refusals = new HashSet<ClientStateRefusal>();
        for (var length = 0; length <= 2_048; length++)
        {
            var garbage = new byte[length];
            random.NextBytes(garbage);
            if (length > 0 && length % 2 == 0)
            {
                // Half of them pass the header checks, so that the tag is what refuses them.
                garbage[0] = ClientStateBlob.CurrentVersion;
                garbage[1] = 0;
            }

            Assert.Null(opener.Answer(Request(attempt: 0), garbage, Authenticator(), out var refusal));
            refusals.Add(refusal);
        }

        Assert.Null(opener.Answer(Request(attempt: 0), new byte[MaxBlob + 1], Authenticator(), out var tooLong));
        Assert.Equal(ClientStateRefusal.Malformed, tooLong);
        Assert.Equal([ClientStateRefusal.Malformed, ClientStateRefusal.UnknownKeyGeneration, ClientStateRefusal.BadTag], refusals.Order());
        Assert.NotNull(opener.Answer(Request(attempt: 0), Seal(Cid, sequence: 1), Authenticator(), out _));
    }

    [Fact]
    public void A_special_SYN_whose_authenticator_does_not_verify_must_be_refused_even_with_a_good_blob()
    {
        var opener = new ClientStateOpener(MaxBlob);
        var blob = Seal(Cid, sequence: 1);

        Assert.Null(opener.Answer(AuthenticationFixture.Request(0x0BAD_F00D, new SeqNumber(99)), blob, Authenticator(), out var refusal));

        Assert.Equal(ClientStateRefusal.AuthenticatorFailed, refusal);
        Assert.NotNull(opener.Answer(Request(attempt: 0), blob, Authenticator(), out _));
    }

    [Fact]
    public void A_client_must_keep_only_states_from_its_current_server_in_window_and_newer_than_the_one_it_holds()
    {
        var config = TcpConfig.Default with { RetainReadLog = true };
        var now = Instant.FromMilliseconds(1_000);
        var origin = new MtcpServerEndpoint<string>(config, Cid, ServerIsn, Authenticator(), () => [S2], plan: null);
        var client = MtcpClientConnection.Connect(config, Client, Cid.ClientPort, S1, ClientIsn, now);
        var payload = new byte[64 * 1024];
        for (var round = 0; round < 4; round++)
        {
            while (client.PollTransmit(now, payload, out _, out var header, out var length))
            {
                origin.HandleSegment(now, header, payload.AsSpan(0, length));
            }

            while (origin.PollTransmit(now, payload, out _, out var header, out var length))
            {
                client.HandleSegment(now, S1, header, payload.AsSpan(0, length));
            }
        }

        var good = ClientStateSealer.Segment(Cid, origin.Connection);
        var newer = Seal(Cid, sequence: 5);
        client.HandleSegment(now, S1, good, newer);
        Assert.Equal(5ul, client.HeldClientState!.Value.Sequence);

        client.HandleSegment(now, S1, good, Seal(Cid, sequence: 4));
        client.HandleSegment(now, S2, good with { SourcePort = S2.Port }, Seal(Cid, sequence: 6));
        client.HandleSegment(now, S1, good with { SequenceNumber = good.SequenceNumber - 1 }, Seal(Cid, sequence: 7));
        client.HandleSegment(now, S1, good with { AcknowledgmentNumber = good.AcknowledgmentNumber + 1 }, Seal(Cid, sequence: 8));
        client.HandleSegment(now, S1, good, [1, 2, 3]);

        Assert.Equal(5ul, client.HeldClientState!.Value.Sequence);
        Assert.Equal(5, client.Stats.ClientStatesIgnored);
        Assert.Equal(TcpState.Established, client.State);
    }

    private static void AssertRefusedThenHonestAnswered(byte[] attack, ClientStateRefusal expected)
    {
        var opener = new ClientStateOpener(MaxBlob);

        Assert.Null(opener.Answer(Request(attempt: 0), attack, Authenticator(), out var refusal));

        Assert.Equal(expected, refusal);
        Assert.NotNull(opener.Answer(Request(attempt: 0), Seal(Cid, sequence: 1), Authenticator(), out _));
    }

    private static byte[] Seal(ConnectionId cid, ulong sequence) =>
        ClientStateSealing.Seal(Authenticator(), cid, sequence, new SeqNumber(1234), ClientStoredStateTests.SampleState(), ClientStoredStateTests.Nonce((int)sequence));

    /// <summary>A state request for <see cref="AuthenticationFixture.Cid"/> whose MIGRATED_CONN authenticator is the client's own, for attempt <paramref name="attempt"/>.</summary>
    private static StateRequest Request(uint attempt)
    {
        var rcvNxt = new SeqNumber(99);
        return AuthenticationFixture.Request(new ConnectionAuthenticator(Secret()).MigratedConnection(Cid, NewEndpointCid, rcvNxt, attempt), rcvNxt);
    }
}
