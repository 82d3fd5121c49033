using System.Net;
using Mtcp.Actors.Api;
using Mtcp.Wire;

namespace Mtcp.Agent;

/// <summary>Who asked for one migration and why, as <c>status</c>, <c>fetch</c> and the log show it.</summary>
/// <param name="Cause"><c>policy</c> (the agent's client policy), <c>operator</c> (<c>migrate</c>, <c>--migrate-every-mib</c>), <c>server</c> (a MIGRATE_TRIGGER, thesis 3.2.1) or <c>failover</c> (the client's own, after its server fell silent).</param>
/// <param name="Reason">The policy's reason and evidence, or what the operator or server asked.</param>
public sealed record MigrationCause(string Cause, string Reason)
{
    public const string Policy = "policy";
    public const string Operator = "operator";
    public const string Server = "server";
    public const string Failover = "failover";

    public override string ToString() => $"{Cause}: {Reason}";
}

/// <summary>
/// The causes of one MTCP connection's migrations. Whoever asks for a migration notes it here first; the client's
/// <see cref="MigrationReport"/> is then matched to the latest request for its destination. A report nobody asked
/// for is a server's MIGRATE_TRIGGER, or the client's own failover when the report says so. Thread-safe: requests come from the policy's actor and the control endpoint,
/// reports from the connection's actor.
/// </summary>
internal sealed class MigrationCauses
{
    private readonly List<(ServerEndpoint To, MigrationCause Cause)> _requested = [];

    public static ServerEndpoint Endpoint(IPEndPoint endPoint) => new(IpAddress.FromIPAddress(endPoint.Address), (ushort)endPoint.Port);

    public void Requested(ServerEndpoint to, MigrationCause cause)
    {
        lock (_requested)
        {
            _requested.Add((to, cause));
        }
    }

    /// <summary>A request that never started (a migration was already in progress): it will have no report.</summary>
    public void Withdrawn(ServerEndpoint to, MigrationCause cause)
    {
        lock (_requested)
        {
            _requested.Remove((to, cause));
        }
    }

    public MigrationCause Of(MigrationReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.FailedOver)
        {
            return new MigrationCause(MigrationCause.Failover, $"{report.From} fell silent; the client moved on its own");
        }

        lock (_requested)
        {
            var index = _requested.FindLastIndex(request => request.To == report.To);
            if (index < 0 || report.Triggered)
            {
                return new MigrationCause(MigrationCause.Server, "MIGRATE_TRIGGER from " + report.From);
            }

            var cause = _requested[index].Cause;

            // Older requests for any destination were overtaken by this one (they never started).
            _requested.RemoveRange(0, index + 1);
            return cause;
        }
    }
}
