using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

/// <summary>
/// Rotation with two key slots. A hitless rollout has two phases: every server first gets the new key as
/// the previous (accepted, not used) key, then every server makes it current and keeps the old one as previous.
/// </summary>
[Trait("Category", "Migration")]
public sealed class KeyRotationTests
{
    private static readonly ClusterKey Generation1 = new(1, ClusterKeyBytes());
    private static readonly ClusterKey Generation2 = new(2, OtherClusterKeyBytes());
    private static readonly ClusterKey Generation3 = new(3, Enumerable.Repeat((byte)0x5A, ClusterKey.Length).ToArray());

    private static MigrationAuthenticator Server(ClusterKey current, ClusterKey? previous = null) =>
        new(new MigrationAuthenticatorOptions(current, previous));

    private static readonly SeqNumber RcvNxt = new(1000);

    [Fact]
    public void Connection_set_up_under_the_previous_key_must_keep_migrating_after_rotation()
    {
        var before = Server(Generation1);
        var credential = before.IssueCredential(Cid, ClientIsn, ServerIsn, out var clientSecret);
        var after = Server(Generation2, Generation1);
        var request = Request(new ConnectionAuthenticator(clientSecret).MigratedConnection(Cid, NewEndpointCid, RcvNxt, 0), RcvNxt);

        Assert.Equal(1, credential.KeyGeneration);
        Assert.True(after.TryDeriveSecret(credential, Cid, out var recomputed));
        Assert.Equal(clientSecret, recomputed);
        Assert.Equal(MigratedConnectionCheck.Accepted, after.VerifyStateRequest(request, credential, out _));
    }

    [Fact]
    public void New_connections_must_use_the_current_key()
    {
        var credential = Server(Generation2, Generation1).IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        Server(Generation1).IssueCredential(Cid, ClientIsn, ServerIsn, out var oldKeySecret);

        Assert.Equal(2, credential.KeyGeneration);
        Assert.NotEqual(oldKeySecret, secret);
    }

    [Fact]
    public void Connection_from_a_key_rotated_out_twice_must_be_refused_as_unknown_generation()
    {
        var credential = Server(Generation1).IssueCredential(Cid, ClientIsn, ServerIsn, out var clientSecret);
        var twiceRotated = Server(Generation3, Generation2);
        var request = Request(new ConnectionAuthenticator(clientSecret).MigratedConnection(Cid, NewEndpointCid, RcvNxt, 0), RcvNxt);

        Assert.False(twiceRotated.TryDeriveSecret(credential, Cid, out _));
        Assert.Equal(MigratedConnectionCheck.UnknownKeyGeneration, twiceRotated.VerifyStateRequest(request, credential, out var unchanged));
        Assert.Equal(credential, unchanged);
    }

    [Fact]
    public void Control_messages_must_verify_in_both_directions_during_a_two_phase_rollout()
    {
        var frame = new byte[] { 1, 2, 3, 4, 5 };
        var phase1 = Server(Generation1, Generation2);
        var phase2 = Server(Generation2, Generation1);
        var notRolledOut = Server(Generation1);
        var macByPhase1 = new byte[MigrationAuthenticator.ControlMacBytes];
        var macByPhase2 = new byte[MigrationAuthenticator.ControlMacBytes];
        phase1.SignControlMessage(frame, "a"u8, "b"u8, macByPhase1);
        phase2.SignControlMessage(frame, "a"u8, "b"u8, macByPhase2);

        Assert.True(phase1.VerifyControlMessage(frame, "a"u8, "b"u8, macByPhase2));
        Assert.True(phase2.VerifyControlMessage(frame, "a"u8, "b"u8, macByPhase1));
        Assert.True(notRolledOut.VerifyControlMessage(frame, "a"u8, "b"u8, macByPhase1));
        Assert.False(notRolledOut.VerifyControlMessage(frame, "a"u8, "b"u8, macByPhase2));
        Assert.False(Server(Generation3, Generation2).VerifyControlMessage(frame, "a"u8, "b"u8, macByPhase1));
    }

    [Fact]
    public void Options_must_refuse_two_keys_of_one_generation_and_a_bad_window()
    {
        Assert.Throws<ArgumentException>(() => new MigrationAuthenticatorOptions(Generation1, new ClusterKey(1, OtherClusterKeyBytes())));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MigrationAuthenticatorOptions(Generation1, attemptWindow: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MigrationAuthenticatorOptions(Generation1, attemptWindow: 65));
        Assert.Throws<ArgumentException>(() => new ClusterKey(0, new byte[16]));
    }

    [Fact]
    public void One_authenticator_must_rotate_in_place_so_that_every_holder_of_it_sees_the_new_keys()
    {
        var server = Server(Generation1);
        var before = server.IssueCredential(Cid, ClientIsn, ServerIsn, out var secretBefore);

        server.UseOptions(new MigrationAuthenticatorOptions(Generation1, Generation2));
        Assert.Equal(1, server.IssueCredential(Cid, ClientIsn, ServerIsn, out _).KeyGeneration);

        server.UseOptions(new MigrationAuthenticatorOptions(Generation2, Generation1));
        var after = server.IssueCredential(Cid, ClientIsn, ServerIsn, out var secretAfter);
        Assert.Equal(2, after.KeyGeneration);
        Assert.NotEqual(secretBefore, secretAfter);
        Assert.True(server.TryDeriveSecret(before, Cid, out var recomputed));
        Assert.Equal(secretBefore, recomputed);

        server.UseOptions(new MigrationAuthenticatorOptions(Generation3, Generation2));
        Assert.False(server.TryDeriveSecret(before, Cid, out _));
        Assert.True(server.TryDeriveSecret(after, Cid, out _));
    }

    [Fact]
    public void Keys_derived_from_service_keys_must_carry_a_generation_every_node_derives_alike()
    {
        var first = ClusterKey.FromServiceKey(ClusterKeyBytes());
        var again = ClusterKey.FromServiceKey(ClusterKeyBytes());
        var expected = System.Security.Cryptography.HMACSHA256.HashData(ClusterKeyBytes(), "MTCP1 cluster key generation\0"u8.ToArray())[0];

        Assert.Equal(expected, first.Generation);
        Assert.Equal(first.Generation, again.Generation);

        // Of 64 random keys, some pairs share a generation byte (birthday bound) but most do not: it is not constant.
        var generations = Enumerable.Range(0, 64).Select(_ => ClusterKey.FromServiceKey(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).Generation).Distinct().Count();
        Assert.True(generations > 32, $"{generations} distinct generations of 64 keys");
    }
}
