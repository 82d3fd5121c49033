using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

/// <summary>
/// The authentication rules over a connection's life: set up at S1, triggered and moved to S2, then to S3,
/// each server recomputing the secret from the credential the previous one handed over.
/// </summary>
[Trait("Category", "Migration")]
public sealed class MigrationAuthenticationFlowTests
{
    private static readonly ConnectionId AtS3 = new(Client, 40000, S3.Address, S3.Port);

    private static MigrationCredential HandOver(MigrationCredential credential)
    {
        var bytes = new byte[MigrationCredential.BufferLength];
        credential.WriteTo(bytes);
        Assert.True(MigrationCredential.TryRead(bytes, out var received));
        return received.AfterMigration();
    }

    [Fact]
    public void Connection_must_migrate_twice_with_each_server_recomputing_the_secret_and_old_material_dying()
    {
        var s1 = Authenticator();
        var s2 = Authenticator();
        var s3 = Authenticator();
        var atS1 = s1.IssueCredential(Cid, ClientIsn, ServerIsn, out var clientSecret);
        var client = new ConnectionAuthenticator(clientSecret);
        uint clientEpoch = 0;
        uint clientNextAttempt = 0;

        // S1 pushes the connection to S2 with a trigger; the client verifies it and sends its special SYN.
        Assert.True(s1.TryDeriveSecret(atS1, Cid, out var s1Secret));
        var pushToS2 = new ConnectionAuthenticator(s1Secret).CreateTrigger(Cid, S1, atS1.Epoch, S2);
        Assert.Equal(TriggerCheck.Accepted, client.VerifyTrigger(pushToS2, Cid, S1, clientEpoch));
        var firstRcvNxt = new SeqNumber(5000);
        var firstSyn = Request(client.MigratedConnection(Cid, NewEndpointCid, firstRcvNxt, clientNextAttempt++), firstRcvNxt);
        Assert.Equal(MigratedConnectionCheck.Accepted, s1.VerifyStateRequest(firstSyn, atS1, out var consumedAtS1));
        var atS2 = HandOver(consumedAtS1);
        clientEpoch++;

        // The trigger and the special SYN of the first migration are dead now.
        Assert.Equal(TriggerCheck.BadAuthTrig, client.VerifyTrigger(pushToS2, Cid, S1, clientEpoch));
        Assert.Equal(MigratedConnectionCheck.Replayed, s2.VerifyStateRequest(firstSyn, atS2, out _));

        // S3 pulls the connection to itself: it asks S2, which holds it, for a trigger key and endorsement.
        Assert.True(s2.TryDeriveSecret(atS2, Cid, out var s2Secret));
        Assert.Equal(clientSecret, s2Secret);
        var holder = new ConnectionAuthenticator(s2Secret);
        var pullToS3 = new TriggerAuthenticator(holder.DeriveTriggerKey(Cid, atS2.Epoch))
            .CreateTrigger(Cid, S3, S3, holder.AuthDest(Cid, atS2.Epoch, S3));
        Assert.Equal(TriggerCheck.Accepted, client.VerifyTrigger(pullToS3, Cid, S3, clientEpoch));
        var secondRcvNxt = new SeqNumber(9000);
        var secondSyn = Request(client.MigratedConnection(Cid, AtS3, secondRcvNxt, clientNextAttempt++), secondRcvNxt, AtS3);
        Assert.Equal(MigratedConnectionCheck.Accepted, s2.VerifyStateRequest(secondSyn, atS2, out var consumedAtS2));
        var atS3 = HandOver(consumedAtS2);

        Assert.Equal(2u, atS3.Epoch);
        Assert.Equal(2u, atS3.NextAttempt);
        Assert.True(s3.TryDeriveSecret(atS3, Cid, out var s3Secret));
        Assert.Equal(clientSecret, s3Secret);
        Assert.Equal(MigratedConnectionCheck.Replayed, s3.VerifyStateRequest(firstSyn, atS3, out _));
        Assert.Equal(MigratedConnectionCheck.Replayed, s3.VerifyStateRequest(secondSyn, atS3, out _));
    }

    [Fact]
    public void Computing_and_verifying_tags_must_not_allocate()
    {
        var authenticator = Authenticator();
        var credential = authenticator.IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        var connection = new ConnectionAuthenticator(secret);
        var rcvNxt = new SeqNumber(1);
        var tag = connection.MigratedConnection(Cid, NewEndpointCid, rcvNxt, 0);
        var trigger = connection.CreateTrigger(Cid, S1, 0, S2);
        var frame = new byte[256];
        var mac = new byte[MigrationAuthenticator.ControlMacBytes];
        authenticator.SignControlMessage(frame, "a"u8, "b"u8, mac);
        Assert.True(authenticator.TryDeriveSecret(credential, Cid, out _));

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            authenticator.TryDeriveSecret(credential, Cid, out _);
            connection.VerifyMigratedConnection(Cid, NewEndpointCid, rcvNxt, tag, 0, MigrationAuthenticatorOptions.DefaultAttemptWindow, out _);
            connection.VerifyTrigger(trigger, Cid, S1, 0);
            authenticator.VerifyControlMessage(frame, "a"u8, "b"u8, mac);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
