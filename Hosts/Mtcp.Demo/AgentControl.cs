using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Mtcp.Demo;

/// <summary>A migration of a relay as the agent's status reports it.</summary>
internal sealed record AgentMigration(DateTimeOffset At, string From, string To, bool Completed, bool Triggered, double DurationMs, long AtByteFromService, string? FailureReason, string Cause, string Reason);

/// <summary>A relay as the agent's status reports it; <paramref name="Cid"/> is its connection's first Cid, the nodes' name for it.</summary>
internal sealed record AgentRelay(long Id, string Service, string Cid, long BytesFromService, List<AgentMigration> Migrations);

/// <summary>The parts of the agent's status document the demo reads.</summary>
internal sealed record AgentStatus(string Transport, List<AgentRelay> Connections, List<AgentRelay> RecentlyClosed);

/// <summary>One relay's answer to a migrate request.</summary>
internal sealed record AgentMigrateOutcome(long Relay, string From, string To, bool Completed, double DurationMs, string? FailureReason);

/// <summary>The agent's answer to a migrate request.</summary>
internal sealed record AgentMigrateResult(List<AgentMigrateOutcome> Outcomes, string? Error);

/// <summary>The running agent's control endpoint, spoken as <c>Mtcp.Agent status</c> and <c>migrate</c> speak it: one request line, one JSON answer.</summary>
internal sealed class AgentControl(IPEndPoint endpoint)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<AgentStatus> StatusAsync(CancellationToken cancellationToken) =>
        JsonSerializer.Deserialize<AgentStatus>(await AskAsync("status", cancellationToken).ConfigureAwait(false), Json)
        ?? throw new DemoFailedException("the agent answered status with null");

    public async Task<AgentMigrateResult> MigrateAsync(long relay, string destination, CancellationToken cancellationToken) =>
        JsonSerializer.Deserialize<AgentMigrateResult>(await AskAsync($"migrate {relay} {destination}", cancellationToken).ConfigureAwait(false), Json)
        ?? throw new DemoFailedException("the agent answered migrate with null");

    private async Task<string> AskAsync(string request, CancellationToken cancellationToken)
    {
        using var client = new TcpClient(endpoint.AddressFamily);
        await client.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request + "\n"), cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
    }
}
