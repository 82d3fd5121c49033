using System.Globalization;
using System.Net.Sockets;

namespace Mtcp.TestKit.Netns;

/// <summary>Where a <see cref="PacketLoss"/> drops packets: on the way out of the namespace, on the way in, or both.</summary>
[Flags]
public enum LossHooks
{
    Output = 1,
    Input = 2,
    Both = Output | Input,
}

/// <summary>
/// Random packet loss in a test namespace, with nftables (there is no netem here): a rule on each chosen hook drops
/// <c>numgen random mod 10000 &lt; percent x 100</c> of the IPv4 (or IPv6) packets that match (so down to 0.01 %), and counts them. On the output hook the
/// sender sees the drop as a failed sendmsg (EPERM, from raw and UDP sockets alike); on the input hook the
/// packet vanishes silently, as on a lossy wire. The rules live in the table <c>ip mtcp_loss</c> (<c>ip6 mtcp_loss</c>) of that namespace
/// only; dispose removes it (deleting the namespace removes it too).
/// </summary>
public sealed class PacketLoss : IDisposable
{
    public const string TableName = "mtcp_loss";

    private readonly NetworkNamespace _namespace;

    // One family, not inet: the rules drop the family the segments travel in, and for IPv6 spare ICMPv6 (neighbour
    // discovery, MLD), which no transport sends and without which no IPv6 packet is delivered on the link at all.
    private readonly string _family;
    private bool _removed;

    /// <summary>The rule draws a number below this; percent x 100 of them drop.</summary>
    private const int Draws = 10_000;

    private PacketLoss(NetworkNamespace ns, string family, double percent, LossHooks hooks)
    {
        _namespace = ns;
        _family = family;
        Percent = percent;
        Hooks = hooks;
    }

    public double Percent { get; }

    public LossHooks Hooks { get; }

    /// <summary>Installs the rules.</summary>
    /// <param name="match">an nftables match the dropped packets must also satisfy, such as <c>ip protocol 253</c> or
    /// <c>udp dport 5253</c>; empty drops from every packet. On the input hook an interface match is written
    /// <c>iifname</c>, on the output hook <c>oifname</c>: see <see cref="InstallOnInterface"/>.</param>
    /// <param name="family">the packets' family: IPv4 (the default) or IPv6.</param>
    public static PacketLoss Install(NetworkNamespace ns, double percent, LossHooks hooks, string match = "", AddressFamily family = AddressFamily.InterNetwork) =>
        Install(ns, percent, hooks, _ => match, family);

    /// <summary>Installs the rules for the packets of <paramref name="family"/> that leave (output) or arrive (input) by one interface only.</summary>
    public static PacketLoss InstallOnInterface(NetworkNamespace ns, string interfaceName, double percent, LossHooks hooks = LossHooks.Both, AddressFamily family = AddressFamily.InterNetwork) =>
        Install(ns, percent, hooks, hook => hook == LossHooks.Output ? $"oifname \"{interfaceName}\"" : $"iifname \"{interfaceName}\"", family);

    /// <summary>
    /// Drops every ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201) that leaves
    /// <paramref name="ns"/>, as a router behind a filter that eats them: a link there narrower than a sender's packets
    /// becomes a PMTU black hole (RFC 2923 §2.1). <see cref="DroppedOutgoing"/> counts the reports dropped.
    /// </summary>
    public static PacketLoss DropPacketTooBig(NetworkNamespace ns, AddressFamily family) => Install(
        ns,
        percent: 100,
        LossHooks.Output,
        _ => family == AddressFamily.InterNetworkV6 ? "icmpv6 type packet-too-big" : "icmp type destination-unreachable icmp code frag-needed",
        family,
        spareIcmpV6: false);

    private static PacketLoss Install(NetworkNamespace ns, double percent, LossHooks hooks, Func<LossHooks, string> match, AddressFamily family, bool spareIcmpV6 = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 100);
        NetnsPrerequisites.RequireRoot();
        var (tableFamily, spared) = family switch
        {
            AddressFamily.InterNetwork => ("ip", ""),
            AddressFamily.InterNetworkV6 => ("ip6", spareIcmpV6 ? " meta l4proto != ipv6-icmp" : ""),
            _ => throw new ArgumentOutOfRangeException(nameof(family), family, "IPv4 or IPv6"),
        };
        ns.Exec("nft", "add", "table", tableFamily, TableName);
        var loss = new PacketLoss(ns, tableFamily, percent, hooks);
        try
        {
            foreach (var hook in new[] { LossHooks.Output, LossHooks.Input })
            {
                if ((hooks & hook) == 0)
                {
                    continue;
                }

                var chain = ChainOf(hook);
                ns.Exec("nft", $"add chain {tableFamily} {TableName} {chain} {{ type filter hook {chain} priority 0; policy accept; }}");
                // nftables refuses "numgen random mod N < N" (the value must lie in 0..N-1): 100 % needs no draw at all.
                var draw = percent >= 100 ? "" : string.Create(CultureInfo.InvariantCulture, $" numgen random mod {Draws} < {Math.Round(percent * Draws / 100)}");
                ns.Exec("nft", $"add rule {tableFamily} {TableName} {chain} {match(hook)}{spared}{draw} counter drop");
            }
        }
        catch
        {
            loss.Dispose();
            throw;
        }

        return loss;
    }

    /// <summary>Packets dropped so far on the way out.</summary>
    public long DroppedOutgoing => Dropped(LossHooks.Output);

    /// <summary>Packets dropped so far on the way in.</summary>
    public long DroppedIncoming => Dropped(LossHooks.Input);

    private long Dropped(LossHooks hook)
    {
        if ((Hooks & hook) == 0)
        {
            return 0;
        }

        ObjectDisposedException.ThrowIf(_removed, this);
        var listing = _namespace.Exec("nft", "list", "chain", _family, TableName, ChainOf(hook)).StandardOutput;
        const string Marker = "counter packets ";
        var at = listing.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0)
        {
            throw new InvalidOperationException($"the nft listing of {TableName} {ChainOf(hook)} in {_namespace} has no counter:\n{listing}");
        }

        var digits = listing.AsSpan(at + Marker.Length);
        return long.Parse(digits[..digits.IndexOf(' ')], NumberStyles.None, CultureInfo.InvariantCulture);
    }

    private static string ChainOf(LossHooks hook) => hook == LossHooks.Output ? "output" : "input";

    public void Dispose()
    {
        if (_removed)
        {
            return;
        }

        _removed = true;
        try
        {
            _namespace.TryExec("nft", "delete", "table", _family, TableName);
        }
        catch (ObjectDisposedException)
        {
            // The namespace is gone already, and the table with it.
        }
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Percent}% loss ({Hooks}) in {_namespace}");
}
