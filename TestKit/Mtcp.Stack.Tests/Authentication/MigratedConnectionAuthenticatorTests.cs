using System.Buffers.Binary;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

[Trait("Category", "Migration")]
public sealed class MigratedConnectionAuthenticatorTests
{
    private const int Window = MigrationAuthenticatorOptions.DefaultAttemptWindow;

    private static readonly SeqNumber RcvNxt = new(0x8000_0000);

    /// <summary>The bound fields laid out as bytes, so each of their bits can be flipped in turn.</summary>
    private static byte[] Fields(ConnectionId migrating, ConnectionId newEndpoint, SeqNumber rcvNxt)
    {
        var bytes = new byte[28];
        Write(bytes, migrating);
        Write(bytes.AsSpan(12), newEndpoint);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(24), rcvNxt.Value);
        return bytes;

        static void Write(Span<byte> at, ConnectionId cid)
        {
            cid.ClientAddress.WriteTo(at);
            BinaryPrimitives.WriteUInt16BigEndian(at[4..], cid.ClientPort);
            cid.ServerAddress.WriteTo(at[6..]);
            BinaryPrimitives.WriteUInt16BigEndian(at[10..], cid.ServerPort);
        }
    }

    private static (ConnectionId Migrating, ConnectionId NewEndpoint, SeqNumber RcvNxt) Parse(byte[] bytes)
    {
        return (Read(bytes), Read(bytes.AsSpan(12)), new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(24))));

        static ConnectionId Read(ReadOnlySpan<byte> at) => new(
            IpAddress.FromIPv4(at),
            BinaryPrimitives.ReadUInt16BigEndian(at[4..]),
            IpAddress.FromIPv4(at[6..]),
            BinaryPrimitives.ReadUInt16BigEndian(at[10..]));
    }

    [Fact]
    public void Authenticator_made_by_the_client_must_verify_at_the_origin_and_return_its_attempt()
    {
        var authenticator = new ConnectionAuthenticator(Secret());
        var tag = authenticator.MigratedConnection(Cid, NewEndpointCid, RcvNxt, attempt: 0);

        var check = authenticator.VerifyMigratedConnection(Cid, NewEndpointCid, RcvNxt, tag, nextAttempt: 0, Window, out var attempt);

        Assert.Equal(MigratedConnectionCheck.Accepted, check);
        Assert.Equal(0u, attempt);
    }

    [Fact]
    public void Flipping_any_bit_of_any_bound_field_must_fail_verification()
    {
        var authenticator = new ConnectionAuthenticator(Secret());
        var tag = authenticator.MigratedConnection(Cid, NewEndpointCid, RcvNxt, attempt: 5);
        var fields = Fields(Cid, NewEndpointCid, RcvNxt);
        Assert.Equal((Cid, NewEndpointCid, RcvNxt), Parse(fields));

        for (var bit = 0; bit < fields.Length * 8; bit++)
        {
            var altered = (byte[])fields.Clone();
            altered[bit / 8] ^= (byte)(0x80 >> (bit % 8));
            var (migrating, newEndpoint, rcvNxt) = Parse(altered);

            var check = authenticator.VerifyMigratedConnection(migrating, newEndpoint, rcvNxt, tag, nextAttempt: 0, Window, out _);

            Assert.True(check == MigratedConnectionCheck.Forged, $"bit {bit} of the bound fields flipped: {check}");
        }
    }

    [Fact]
    public void Flipping_any_bit_of_the_tag_must_fail_verification()
    {
        var authenticator = new ConnectionAuthenticator(Secret());
        var tag = authenticator.MigratedConnection(Cid, NewEndpointCid, RcvNxt, attempt: 0);

        for (var bit = 0; bit < 64; bit++)
        {
            var check = authenticator.VerifyMigratedConnection(Cid, NewEndpointCid, RcvNxt, tag ^ (1UL << bit), nextAttempt: 0, Window, out _);

            Assert.True(check == MigratedConnectionCheck.Forged, $"tag bit {bit} flipped: {check}");
        }
    }

    [Fact]
    public void Secret_of_another_connection_or_cluster_key_must_not_verify()
    {
        var tag = new ConnectionAuthenticator(Secret()).MigratedConnection(Cid, NewEndpointCid, RcvNxt, attempt: 0);
        MigrationAuthenticator.FromKey(OtherClusterKeyBytes()).IssueCredential(Cid, ClientIsn, ServerIsn, out var otherKeySecret);
        Authenticator().IssueCredential(Cid, ClientIsn, ServerIsn + 1, out var otherIncarnationSecret);
        Authenticator().IssueCredential(Cid, ClientIsn + 1, ServerIsn, out var otherClientIsnSecret);

        foreach (var secret in new[] { otherKeySecret, otherIncarnationSecret, otherClientIsnSecret })
        {
            Assert.NotEqual(Secret(), secret);
            Assert.Equal(
                MigratedConnectionCheck.Forged,
                new ConnectionAuthenticator(secret).VerifyMigratedConnection(Cid, NewEndpointCid, RcvNxt, tag, 0, Window, out _));
        }
    }

    [Fact]
    public void A_state_request_replayed_after_its_attempt_was_consumed_must_be_rejected_as_replayed()
    {
        var server = Authenticator();
        var credential = server.IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        var request = Request(new ConnectionAuthenticator(secret).MigratedConnection(Cid, NewEndpointCid, RcvNxt, attempt: 0), RcvNxt);

        Assert.Equal(MigratedConnectionCheck.Accepted, server.VerifyStateRequest(request, credential, out var consumed));
        Assert.Equal(1u, consumed.NextAttempt);

        Assert.Equal(MigratedConnectionCheck.Replayed, server.VerifyStateRequest(request, consumed, out var unchanged));
        Assert.Equal(consumed, unchanged);
    }

    [Fact]
    public void Attempts_whose_syn_never_arrived_must_not_block_the_next_one_within_the_window()
    {
        var server = Authenticator();
        var credential = server.IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        var client = new ConnectionAuthenticator(secret);
        var lastInWindow = (uint)Window - 1;

        var check = server.VerifyStateRequest(Request(client.MigratedConnection(Cid, NewEndpointCid, RcvNxt, lastInWindow), RcvNxt), credential, out var consumed);

        Assert.Equal(MigratedConnectionCheck.Accepted, check);
        Assert.Equal(lastInWindow + 1, consumed.NextAttempt);
        for (var earlier = 0u; earlier <= lastInWindow; earlier++)
        {
            var replay = Request(client.MigratedConnection(Cid, NewEndpointCid, RcvNxt, earlier), RcvNxt);
            Assert.Equal(MigratedConnectionCheck.Replayed, server.VerifyStateRequest(replay, consumed, out _));
        }
    }

    [Fact]
    public void An_attempt_beyond_the_window_must_be_rejected()
    {
        var server = Authenticator();
        var credential = server.IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        var tooFar = Request(new ConnectionAuthenticator(secret).MigratedConnection(Cid, NewEndpointCid, RcvNxt, (uint)Window), RcvNxt);

        Assert.Equal(MigratedConnectionCheck.Forged, server.VerifyStateRequest(tooFar, credential, out var unchanged));
        Assert.Equal(credential, unchanged);
    }

    [Fact]
    public void Window_must_not_wrap_past_the_largest_attempt_number()
    {
        var authenticator = new ConnectionAuthenticator(Secret());
        var wrapped = authenticator.MigratedConnection(Cid, NewEndpointCid, RcvNxt, attempt: 0);

        Assert.Equal(
            MigratedConnectionCheck.Forged,
            authenticator.VerifyMigratedConnection(Cid, NewEndpointCid, RcvNxt, wrapped, nextAttempt: uint.MaxValue - 1, Window, out _));
    }

    [Fact]
    public void A_captured_syn_redirected_to_another_server_must_be_rejected()
    {
        var server = Authenticator();
        var credential = server.IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        var tag = new ConnectionAuthenticator(secret).MigratedConnection(Cid, NewEndpointCid, RcvNxt, attempt: 0);
        var atS3 = new ConnectionId(Client, 40000, S3.Address, S3.Port);

        Assert.Equal(MigratedConnectionCheck.Forged, server.VerifyStateRequest(Request(tag, RcvNxt, atS3), credential, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(9)]
    [InlineData(32)]
    public void A_state_request_whose_authenticator_is_not_eight_bytes_must_be_malformed(int length)
    {
        var server = Authenticator();
        var credential = server.IssueCredential(Cid, ClientIsn, ServerIsn, out _);
        var request = new Wire.Control.StateRequest(1, Cid, NewEndpointCid, RcvNxt, new byte[length]);

        Assert.Equal(MigratedConnectionCheck.Malformed, server.VerifyStateRequest(request, credential, out _));
    }

    [Fact]
    public void Credential_must_round_trip_through_its_seventeen_bytes_and_reject_other_lengths()
    {
        var credential = new MigrationCredential(KeyGeneration: 9, ClientIsn, ServerIsn, Epoch: 0x0102_0304, NextAttempt: 0xA0B0_C0D0);
        var bytes = new byte[MigrationCredential.BufferLength + 1];
        bytes.AsSpan().Fill(0xEE);

        Assert.Equal(MigrationCredential.BufferLength, credential.WriteTo(bytes));
        Assert.Equal(FromHex("09fffffff07f00000101020304a0b0c0d0ee"), bytes);
        Assert.True(MigrationCredential.TryRead(bytes.AsSpan(0, MigrationCredential.BufferLength), out var read));
        Assert.Equal(credential, read);
        Assert.False(MigrationCredential.TryRead(bytes, out _));
        Assert.False(MigrationCredential.TryRead(bytes.AsSpan(0, MigrationCredential.BufferLength - 1), out _));
    }

    [Fact]
    public void Secret_must_be_recomputable_at_another_server_from_the_transferred_credential()
    {
        var origin = Authenticator();
        var credential = origin.IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        var bytes = new byte[MigrationCredential.BufferLength];
        credential.WriteTo(bytes);

        Assert.True(MigrationCredential.TryRead(bytes, out var transferred));
        Assert.True(Authenticator().TryDeriveSecret(transferred.AfterMigration(), Cid, out var recomputed));
        Assert.Equal(secret, recomputed);
        Assert.Equal("MigrationSecret(redacted)", recomputed.ToString());
    }

    [Fact]
    public void An_unset_secret_or_trigger_key_must_be_refused_rather_than_used_as_a_zero_key()
    {
        Assert.Throws<ArgumentException>(() => new ConnectionAuthenticator(default));
        Assert.Throws<ArgumentException>(() => new TriggerAuthenticator(default));
        Assert.Throws<InvalidOperationException>(() => default(ConnectionAuthenticator).MigratedConnection(Cid, NewEndpointCid, RcvNxt, 0));
        Assert.Throws<InvalidOperationException>(() => default(TriggerAuthenticator).AuthTrig(Cid, null, 0));
    }
}
