using Akka.Configuration;
using Mtcp.Actors.Api;

namespace Mtcp.Actors.Tests.Runtime;

/// <summary>
/// <c>mtcp.migration.cluster-key</c> and <c>accepted-cluster-key</c>: the keys a server node puts in force at start and
/// on each step of a rotation (docs/threat-model.md).
/// </summary>
[Trait("Category", "Actors")]
public sealed class MigrationKeyTests
{
    private static readonly string OldKey = new('a', 64);
    private static readonly string NewKey = new('b', 64);

    private static Config Keys(string current, string accepted) =>
        ConfigurationFactory.ParseString($"mtcp.migration {{ cluster-key = \"{current}\", accepted-cluster-key = \"{accepted}\" }}");

    [Fact]
    public void An_accepted_key_must_be_in_force_beside_the_current_one_and_each_must_keep_its_generation()
    {
        var alone = MigrationKey.ReadOptions(Keys(OldKey, ""))!;
        var phase1 = MigrationKey.ReadOptions(Keys(OldKey, NewKey))!;
        var phase2 = MigrationKey.ReadOptions(Keys(NewKey, OldKey))!;

        Assert.Null(alone.PreviousKey);
        Assert.Equal(alone.CurrentKey.Generation, phase1.CurrentKey.Generation);
        Assert.Equal(phase1.PreviousKey!.Generation, phase2.CurrentKey.Generation);
        Assert.Equal(phase1.CurrentKey.Generation, phase2.PreviousKey!.Generation);
    }

    [Fact]
    public void No_keys_must_mean_no_migration()
    {
        Assert.Null(MigrationKey.ReadOptions(Keys("", "")));
        Assert.Null(MigrationKey.ReadAuthenticator(ConfigurationFactory.Empty));
    }

    [Theory]
    [InlineData("", "bbbb", "accepted-cluster-key is set but mtcp.migration.cluster-key is empty")]
    [InlineData("same", "same", "accepted-cluster-key repeats mtcp.migration.cluster-key")]
    [InlineData("aaaa", "00ff", "mtcp.migration.accepted-cluster-key must be 32 bytes")]
    public void A_key_setting_that_cannot_be_in_force_must_be_refused_naming_the_key(string current, string accepted, string expected)
    {
        static string Expand(string value) => value switch { "same" => OldKey, "aaaa" => OldKey, "bbbb" => NewKey, _ => value };

        var refusal = Assert.Throws<ConfigurationException>(() => MigrationKey.ReadOptions(Keys(Expand(current), Expand(accepted))));
        Assert.Contains(expected, refusal.Message, StringComparison.Ordinal);
    }
}
