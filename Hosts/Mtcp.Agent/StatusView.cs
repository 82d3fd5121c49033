using System.Globalization;
using Humanizer;
using Spectre.Console;

namespace Mtcp.Agent;

/// <summary>
/// How <c>status</c> shows relays and migrations to a person: within 80 columns (no table borders, sizes in
/// human units), one migration per two lines. <c>status --json</c> has every figure exact.
/// </summary>
internal static class StatusView
{
    public static Table Relays(IReadOnlyList<RelayStatus> relays)
    {
        var table = new Table().Border(TableBorder.None).AddColumns("id", "client", "service", "since", "sent", "received", "moves");
        foreach (var column in table.Columns)
        {
            column.Padding(0, 0, 2, 0);
        }

        foreach (var relay in relays)
        {
            var completed = relay.Migrations.Count(migration => migration.Completed);
            var failed = relay.Migrations.Count - completed;
            table.AddRow(
                relay.Id.ToString(CultureInfo.InvariantCulture),
                relay.Client,
                relay.Service,
                relay.Since.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                Size(relay.BytesToService),
                Size(relay.BytesFromService),
                failed > 0 ? $"{completed}+{failed} failed" : completed.ToString(CultureInfo.InvariantCulture));
        }

        return table;
    }

    /// <summary>
    /// A line for each relay whose server announced no other server of its service: that server has no buddy, so
    /// the connection runs unreplicated (the server logs it and counts it in mtcp.replication.unreplicated).
    /// </summary>
    public static IEnumerable<string> Unreplicated(IReadOnlyList<RelayStatus> relays) =>
        relays.Where(relay => relay.Alternates == 0).Select(relay => string.Create(
            CultureInfo.InvariantCulture,
            $"relay {relay.Id}: unreplicated (no other server of port {relay.Service[(relay.Service.LastIndexOf(':') + 1)..]}): dies with its server"));

    public static string Migration(long relay, MigrationStatus migration) => string.Create(
        CultureInfo.InvariantCulture,
        $"{relay,4} {migration.At.ToLocalTime():HH:mm:ss.fff} {migration.From} -> {migration.To} {(migration.Completed ? "ok" : "FAILED")} {migration.DurationMs:0.0} ms, at {Size(migration.AtByteFromService)}\n"
        + $"     {migration.Cause}: {(migration.Completed ? migration.Reason : $"{migration.Reason}; {migration.FailureReason}")}");

    /// <summary>Bytes in binary units with one decimal, e.g. "12.4 MB" (Humanizer's units are 1024-based).</summary>
    public static string Size(long bytes) => bytes.Bytes().Humanize("0.#", CultureInfo.InvariantCulture);
}
