using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mtcp.Hosting;

/// <summary>
/// TCP ports for the nodes and agents a launcher (the demo, a benchmark, a test) is about to start, each of which binds
/// its port itself. Asking the kernel for port 0 and closing the probe hands back a port of the ephemeral range, which
/// any outgoing connection on the machine may take before the node binds it (a test's agent failed so, "Address
/// already in use"). So ports come from just below the ephemeral range (<c>net.ipv4.ip_local_port_range</c>), which
/// the kernel never picks by itself, starting at a point spread by process id, and each is checked free on its address.
/// </summary>
public static class ListenPorts
{
    private const int Span = 12_000;
    private const int LowestPort = 1024;
    private const string EphemeralRangePath = "/proc/sys/net/ipv4/ip_local_port_range";

    private static readonly (int First, int Count) Range = BelowEphemeralRange();
    private static int _next = Environment.ProcessId * 7919 % Range.Count;

    /// <summary>A port no socket holds on <paramref name="address"/> now, and that this process has not handed out before.</summary>
    public static int PickUnused(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        for (var attempt = 0; attempt < Range.Count; attempt++)
        {
            var port = Range.First + (int)((uint)Interlocked.Increment(ref _next) % (uint)Range.Count);
            if (IsFree(address, port))
            {
                return port;
            }
        }

        throw new InvalidOperationException(
            $"no free TCP port on {address} in {Range.First}-{Range.First + Range.Count - 1} (below the ephemeral range)");
    }

    private static bool IsFree(IPAddress address, int port)
    {
        using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            probe.Bind(new IPEndPoint(address, port));
            probe.Listen();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The <see cref="Span"/> ports below the first ephemeral port (32768 unless the machine says otherwise).</summary>
    private static (int First, int Count) BelowEphemeralRange()
    {
        var firstEphemeral = 32_768;
        if (File.Exists(EphemeralRangePath))
        {
            var bounds = File.ReadAllText(EphemeralRangePath).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            firstEphemeral = int.Parse(bounds[0], CultureInfo.InvariantCulture);
        }

        var first = Math.Max(LowestPort, firstEphemeral - Span);
        return firstEphemeral - first >= 1_000
            ? (first, firstEphemeral - first)
            : throw new InvalidOperationException(
                $"the ephemeral port range starts at {firstEphemeral} ({EphemeralRangePath}): too low to leave ports for the nodes");
    }
}
