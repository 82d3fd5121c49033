using System.Collections.Immutable;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

[Trait("Category", "Migration")]
public sealed class ConnectionCredentialTests
{
    private static readonly ConnectionId V6Cid = new(IpAddress.Parse("2001:db8::10"), 40000, IpAddress.Parse("2001:db8::1"), 443);

    public static TheoryData<string> Cids() => ["v4", "v6"];

    private static ConnectionId CidOf(string family) => family == "v4" ? Cid : V6Cid;

    [Theory]
    [MemberData(nameof(Cids))]
    public void Encoding_must_round_trip_and_fit_a_state_reply(string family)
    {
        var credential = new ConnectionCredential(CidOf(family), new MigrationCredential(3, ClientIsn, ServerIsn, Epoch: 5, NextAttempt: 9));

        var bytes = credential.ToBytes();

        Assert.Equal(family == "v4" ? 31 : ConnectionCredential.MaxLength, bytes.Length);
        Assert.True(bytes.Length <= StateReply.MaxMigrationCredentialLength);
        Assert.True(ConnectionCredential.TryRead(bytes, out var read));
        Assert.Equal(credential, read);
    }

    [Theory]
    [MemberData(nameof(Cids))]
    public void Every_truncation_and_any_trailing_byte_must_be_refused(string family)
    {
        var bytes = new ConnectionCredential(CidOf(family), new MigrationCredential(0, ClientIsn, ServerIsn, 0, 0)).ToBytes();

        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.False(ConnectionCredential.TryRead(bytes.AsSpan(0, length), out _), $"{length} bytes");
        }

        Assert.False(ConnectionCredential.TryRead([.. bytes, 0], out _));
    }

    [Fact]
    public void An_unknown_address_family_must_be_refused()
    {
        var bytes = new ConnectionCredential(Cid, new MigrationCredential(0, ClientIsn, ServerIsn, 0, 0)).ToBytes();
        bytes[MigrationCredential.BufferLength] = 5;

        Assert.False(ConnectionCredential.TryRead(bytes, out _));
    }

    [Fact]
    public void The_secret_must_be_recomputed_under_the_first_Cid_after_the_connection_moved()
    {
        // The request names the current Cid (client on S2 now); the secret is still the one issued for Cid on S1.
        var authenticator = Authenticator();
        var issued = ServerMigration.IssueCredential(authenticator, Cid, ClientIsn, ServerIsn, out var secret);
        var current = NewEndpointCid;
        var nextCid = new ConnectionId(Client, 40001, S3.Address, S3.Port);
        var tag = new ConnectionAuthenticator(secret).MigratedConnection(current, nextCid, new SeqNumber(77), attempt: 1);
        var request = new StateRequest(1, current, nextCid, new SeqNumber(77), AuthenticatorBytes(tag));
        var held = issued with { Credential = issued.Credential.ConsumeAttempt(0).AfterMigration() };

        Assert.Equal(MigratedConnectionCheck.Accepted, authenticator.VerifyStateRequest(request, held.Credential, held.SecretCid, out var updated));
        Assert.Equal(2u, updated.NextAttempt);
        Assert.NotEqual(MigratedConnectionCheck.Accepted, authenticator.VerifyStateRequest(request, held.Credential, out _));
        Assert.Equal(MigratedConnectionCheck.Replayed, authenticator.VerifyStateRequest(request, updated, held.SecretCid, out _));
    }

    [Fact]
    public void A_state_reply_without_a_usable_credential_must_not_be_adopted()
    {
        var authenticator = Authenticator();
        var issued = ServerMigration.IssueCredential(authenticator, Cid, ClientIsn, ServerIsn, out _);
        var rotatedAway = MigrationAuthenticator.FromKey(OtherClusterKeyBytes());

        Assert.True(ServerMigration.TryAdoptCredential(Reply(issued.ToBytes()), authenticator, out var adopted));
        Assert.Equal(issued.Credential.Epoch + 1, adopted.Credential.Epoch);
        Assert.False(ServerMigration.TryAdoptCredential(Reply(default), authenticator, out _));
        Assert.False(ServerMigration.TryAdoptCredential(Reply(issued.ToBytes().AsMemory(0, 20)), authenticator, out _));
        Assert.False(ServerMigration.TryAdoptCredential(Reply(new ConnectionCredential(Cid, issued.Credential with { KeyGeneration = 9 }).ToBytes()), rotatedAway, out _));
    }

    private static byte[] AuthenticatorBytes(ulong tag)
    {
        var bytes = new byte[sizeof(ulong)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes, tag);
        return bytes;
    }

    private static StateReply Reply(ReadOnlyMemory<byte> credential) =>
        new(1, NewEndpointCid, new SeqNumber(1), 0, new SeqNumber(1), new TcpSnapshot(TcpStateCode.Established, TcpSnapshotFlags.None, 1460, 0, 0),
            default, default, default, default, ImmutableArray<TcpStateTransition>.Empty, credential);
}
