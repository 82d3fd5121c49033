using System.Diagnostics;
using System.Net;

namespace Mtcp.Demo;

/// <summary>
/// IPv6 addresses the demo adds to the loopback interface for its run, and removes when disposed (also after Ctrl-C or
/// SIGTERM: Program disposes the scenario, which disposes this). Why addresses on <c>lo</c>: IPv6 loopback holds only
/// ::1 (there is no ::1/8 as there is 127/8), and every node needs an address of its own, since every raw socket of a
/// protocol sees every packet of it and a node keeps the ones sent to its address. A /128 on <c>lo</c> is local at
/// once (no duplicate address detection there), reachable from the host's own processes only, and routed with
/// loopback's MTU, so the nodes run as on 127.0.0.x, and the user's own curl or shell reaches them as the demo's does.
/// A network namespace of its own would keep them out of the user's reach (every command through <c>ip netns exec</c>),
/// and UDP on ::1 with a port per node would not do: service endpoints, alternates and Cids name a node by address.
/// </summary>
internal sealed class LoopbackAddresses : IDisposable
{
    private const string Interface = "lo";
    private readonly List<IPAddress> _added = [];

    /// <summary>Adds each address as a /128 on <c>lo</c>; on a failure removes those added and throws.</summary>
    /// <exception cref="DemoSetupException">not root, <c>ip</c> missing, IPv6 off on <c>lo</c>, or an address already there.</exception>
    public static LoopbackAddresses Add(IEnumerable<IPAddress> addresses)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new DemoSetupException("over IPv6 the demo adds addresses to the loopback interface for its run, which needs root (sudo)");
        }

        var added = new LoopbackAddresses();
        try
        {
            foreach (var address in addresses)
            {
                // An address already there belongs to someone else (another demo, or one killed with SIGKILL, which
                // could not clean up): taking it over, or removing it at exit, could break its owner.
                var (exit, error) = Ip("-6", "addr", "add", $"{address}/128", "dev", Interface, "nodad");
                if (exit != 0)
                {
                    throw new DemoSetupException(error.Contains("exists", StringComparison.OrdinalIgnoreCase)
                        ? $"{address} is already on {Interface}: another demo runs, or a killed one left it (remove it with: ip -6 addr del {address}/128 dev {Interface}), or choose other addresses with --network"
                        : $"ip -6 addr add {address}/128 dev {Interface} failed: {error.Trim()} (is IPv6 disabled? sysctl net.ipv6.conf.{Interface}.disable_ipv6)");
                }

                added._added.Add(address);
            }
        }
        catch
        {
            added.Dispose();
            throw;
        }

        return added;
    }

    public IReadOnlyList<IPAddress> Addresses => _added;

    public void Dispose()
    {
        foreach (var address in _added)
        {
            // Best effort: an address that cannot be removed is named, with the command that removes it.
            var (exit, error) = Ip("-6", "addr", "del", $"{address}/128", "dev", Interface);
            if (exit != 0)
            {
                Console.WriteLine($"could not remove {address} from {Interface}: {error.Trim()}; remove it with: ip -6 addr del {address}/128 dev {Interface}");
            }
        }

        _added.Clear();
    }

    private static (int ExitCode, string Error) Ip(params string[] arguments)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(info) ?? throw new DemoSetupException("could not start ip (iproute2)");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new DemoSetupException($"could not start ip: {e.Message} (install iproute2)");
        }

        using var started = process;
        var error = started.StandardError.ReadToEnd();
        started.StandardOutput.ReadToEnd();
        started.WaitForExit();
        return (started.ExitCode, error);
    }
}

/// <summary>The demo cannot run on this machine as it is; the message says why and what to do.</summary>
internal sealed class DemoSetupException(string message) : Exception(message);
