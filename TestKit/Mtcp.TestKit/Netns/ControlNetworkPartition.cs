using System.Globalization;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// A partition of the control network of a <see cref="ControlNetworkTopology"/>: nftables in the hub namespace drops
/// every frame the control bridge would forward from or to one server's port, both directions, as a switch whose port
/// failed. The server stays alive and keeps its service network: the client reaches it as before, and only the other
/// servers (the cluster) lose it. Frames are dropped silently (no reset, no ICMP), so a probe of its control port
/// finds it silent, not refusing. The rules live in the table <c>bridge mtcp_partition</c> of the hub namespace only;
/// dispose removes it (deleting the namespace removes it too).
/// </summary>
public sealed class ControlNetworkPartition : IDisposable
{
    public const string TableName = "mtcp_partition";
    private const string Family = "bridge";
    private const string Chain = "forward";

    private readonly NetworkNamespace _hub;
    private bool _removed;

    private ControlNetworkPartition(NetworkNamespace hub, ServerHost isolated)
    {
        _hub = hub;
        Isolated = isolated;
    }

    /// <summary>The server cut off from the others.</summary>
    public ServerHost Isolated { get; }

    /// <summary>Cuts <paramref name="isolated"/>'s control link from the rest of the control network, both directions.</summary>
    public static ControlNetworkPartition Isolate(ControlNetworkTopology topology, ServerHost isolated)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(isolated);
        NetnsPrerequisites.RequireRoot();
        var port = ControlNetworkTopology.ControlPortName(isolated);
        var hub = topology.Hub;
        hub.Exec("nft", "add", "table", Family, TableName);
        var partition = new ControlNetworkPartition(hub, isolated);
        try
        {
            hub.Exec("nft", $"add chain {Family} {TableName} {Chain} {{ type filter hook {Chain} priority 0; policy accept; }}");
            hub.Exec("nft", $"add rule {Family} {TableName} {Chain} iifname \"{port}\" counter drop");
            hub.Exec("nft", $"add rule {Family} {TableName} {Chain} oifname \"{port}\" counter drop");
        }
        catch
        {
            partition.Dispose();
            throw;
        }

        return partition;
    }

    /// <summary>Frames dropped so far: from the isolated server, and to it.</summary>
    public (long FromIsolated, long ToIsolated) Dropped
    {
        get
        {
            ObjectDisposedException.ThrowIf(_removed, this);
            var listing = _hub.Exec("nft", "list", "chain", Family, TableName, Chain).StandardOutput;
            var counters = listing.Split('\n').Select(line => line.Trim())
                .Where(line => line.Contains("counter packets ", StringComparison.Ordinal))
                .Select(line =>
                {
                    var digits = line.AsSpan(line.IndexOf("counter packets ", StringComparison.Ordinal) + "counter packets ".Length);
                    return long.Parse(digits[..digits.IndexOf(' ')], NumberStyles.None, CultureInfo.InvariantCulture);
                })
                .ToList();
            return counters is [var from, var to]
                ? (from, to)
                : throw new InvalidOperationException($"the nft listing of {TableName} {Chain} in {_hub} has {counters.Count} counters, not 2:\n{listing}");
        }
    }

    /// <summary>Heals the partition: the control link forwards again.</summary>
    public void Dispose()
    {
        if (_removed)
        {
            return;
        }

        _removed = true;
        try
        {
            _hub.TryExec("nft", "delete", "table", Family, TableName);
        }
        catch (ObjectDisposedException)
        {
            // The namespace is gone already, and the table with it.
        }
    }

    public override string ToString() => $"control network partition: {Isolated.ControlAddress} ({ControlNetworkTopology.ControlPortName(Isolated)}) cut off in {_hub}";
}
