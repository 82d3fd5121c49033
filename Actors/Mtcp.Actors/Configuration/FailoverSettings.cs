using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Stack.Migration;

namespace Mtcp.Actors.Configuration;

/// <summary>
/// The <c>mtcp.migration.failover</c> section: how a migrating client leaves a server that stopped answering, and
/// <c>mtcp.migration.destination-timeout</c>, how long it waits for a planned migration's destination; read once into
/// the engine's <see cref="ClientFailover"/> and validated by it.
/// </summary>
internal static class FailoverSettings
{
    public const string Section = "mtcp.migration.failover";
    public const string DestinationTimeoutPath = "mtcp.migration.destination-timeout";

    public static ClientFailover Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var failover = new ClientFailover
        {
            ProbeInterval = HoconValues.Duration(config, Section + ".probe-interval", allowZero: true),
            SilentAfter = HoconValues.Integer(config, Section + ".silent-after", 0, 100),
            SpecialSynTimeout = HoconValues.Duration(config, Section + ".special-syn-timeout", allowZero: false),
            GiveUpAfter = HoconValues.Duration(config, Section + ".give-up-after", allowZero: false),
            DestinationTimeout = HoconValues.Duration(config, DestinationTimeoutPath, allowZero: false),
        };

        try
        {
            return failover.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ConfigurationException($"{Section}: {e.Message}", e);
        }
    }
}
