using System.Security.Cryptography;
using Mtcp.Stack.Migration.Authentication;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

/// <summary>
/// The cluster key the runtime derives from a configured service key (<see cref="MigrationAuthenticator.FromServiceKey"/>):
/// every node configured with the same key derives the same one, another key another, and it is not the configured
/// key itself.
/// </summary>
[Trait("Category", "Migration")]
public sealed class ServiceKeyClusterAuthenticatorTests
{
    private static MigrationSecret SecretUnder(IMigrationAuthenticator authenticator)
    {
        authenticator.IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        return secret;
    }

    [Fact]
    public void Nodes_configured_with_the_same_key_must_derive_the_same_cluster_key()
    {
        var first = MigrationAuthenticator.FromServiceKey(ClusterKeyBytes());
        var second = MigrationAuthenticator.FromServiceKey(ClusterKeyBytes());

        Assert.Equal(SecretUnder(first), SecretUnder(second));
        var mac = new byte[first.ControlMacLength];
        first.SignControlMessage("frame"u8, "S1"u8, "S2"u8, mac);
        Assert.True(second.VerifyControlMessage("frame"u8, "S1"u8, "S2"u8, mac));
    }

    [Fact]
    public void Another_key_must_derive_another_cluster_key()
    {
        var ours = MigrationAuthenticator.FromServiceKey(ClusterKeyBytes());
        var theirs = MigrationAuthenticator.FromServiceKey(OtherClusterKeyBytes());

        Assert.NotEqual(SecretUnder(ours), SecretUnder(theirs));
        var mac = new byte[ours.ControlMacLength];
        theirs.SignControlMessage("frame"u8, "S1"u8, "S2"u8, mac);
        Assert.False(ours.VerifyControlMessage("frame"u8, "S1"u8, "S2"u8, mac));
    }

    [Fact]
    public void Derived_cluster_key_must_be_the_documented_HMAC_of_the_configured_key_not_the_key_itself()
    {
        var derived = MigrationAuthenticator.FromServiceKey(ClusterKeyBytes());
        var expected = MigrationAuthenticator.FromKey(HMACSHA256.HashData(ClusterKeyBytes(), "MTCP1 cluster key from service key\0"u8.ToArray()));

        Assert.Equal(SecretUnder(expected), SecretUnder(derived));
        Assert.NotEqual(SecretUnder(MigrationAuthenticator.FromKey(ClusterKeyBytes())), SecretUnder(derived));
    }
}
