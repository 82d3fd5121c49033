using Akka.Actor;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Tests.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests;

/// <summary>
/// Service announcements signed under the cluster key: only an announcement signed under the same key, naming the node
/// it came from, changes a directory's view; every other one is dropped and counted with its reason.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "Security")]
public sealed class SignedServiceAnnouncementTests(ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(TestNodes.ClusterMember(["127.0.0.12:7001"]), TestNodes.ClusterSystemName, output)
{
    private static readonly MigrationAuthenticator ClusterKey = MigrationAuthenticator.FromServiceKey(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
    private static readonly MigrationAuthenticator OtherKey = MigrationAuthenticator.FromServiceKey(new byte[32]);
    private static readonly Address Stranger = Address.Parse("akka.ssl.tcp://mtcp@127.0.0.99:2552");
    private static readonly ServiceAnnouncement Fake = new([new ServerEndpoint(IpAddress.Parse("127.0.0.99"), 8080)], Stranger, replyRequested: false);

    [Fact]
    public void A_signed_announcement_must_open_under_the_same_key_only()
    {
        var signed = SignedServiceAnnouncement.Sign(ClusterKey, Fake);

        Assert.True(signed.TryOpen(ClusterKey, out var opened, out _));
        Assert.Equal(Fake, opened);
        Assert.False(signed.TryOpen(OtherKey, out _, out var refusal));
        Assert.Equal(AnnouncementRefusal.BadMac, refusal);
    }

    [Fact]
    public void Any_altered_byte_or_truncation_must_be_refused()
    {
        var bytes = SignedServiceAnnouncement.Sign(ClusterKey, Fake).Bytes.ToArray();

        for (var index = 0; index < bytes.Length; index++)
        {
            var altered = bytes.ToArray();
            altered[index] ^= 0x01;
            Assert.False(new SignedServiceAnnouncement(altered).TryOpen(ClusterKey, out _, out _), $"byte {index} altered");
        }

        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.False(new SignedServiceAnnouncement(bytes[..length]).TryOpen(ClusterKey, out _, out _), $"truncated to {length}");
        }
    }

    [Fact]
    public async Task A_keyed_directory_must_drop_and_count_unsigned_forged_and_misattributed_announcements()
    {
        using var refused = new MigrationMeasurements("mtcp.cluster.announcement.refused", tagKey: "reason");
        var directory = Sys.StartServiceDirectory(ClusterKey);
        var attacker = CreateTestProbe();

        directory.Tell(Fake, attacker.Ref);
        directory.Tell(SignedServiceAnnouncement.Sign(OtherKey, Fake), attacker.Ref);

        // Correctly signed (a node holding the key), but it names another node than the one it came from.
        directory.Tell(SignedServiceAnnouncement.Sign(ClusterKey, Fake), attacker.Ref);

        await AwaitConditionAsync(() => Task.FromResult(refused.Tags.Length >= 3), TimeSpan.FromSeconds(10));
        Assert.Contains(nameof(AnnouncementRefusal.Unsigned), refused.Tags);
        Assert.Contains(nameof(AnnouncementRefusal.BadMac), refused.Tags);
        Assert.Contains(nameof(AnnouncementRefusal.NotFromItsNode), refused.Tags);
        var view = await directory.Ask<AlternateServersChanged>(GetAlternateServers.Instance, TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(view.Alternates.Servers, server => server.Address == IpAddress.Parse("127.0.0.99"));
    }
}
