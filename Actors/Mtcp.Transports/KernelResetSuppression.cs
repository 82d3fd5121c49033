using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace Mtcp.Transports;

/// <summary>
/// An nftables rule that drops the local kernel's TCP RSTs from one port, for the protocol-6 transport.
/// The kernel's TCP sees every segment the engine receives; it knows no socket for the engine's port,
/// so it answers each SYN or ACK with a RST (RFC 9293 §3.10.7.1) that would kill the connection. The
/// engine's own packets carry a socket mark (<see cref="RawTransportOptions.SocketMark"/>) and are
/// exempt, so the engine can still send RSTs. The rule lives in a table of its own,
/// <c>inet mtcp_PORT</c>, whose family covers IPv4 and IPv6 (the kernel's IPv6 RSTs for a <see cref="RawIPv6Transport"/>
/// too); disposing removes it. By default <c>nft</c> runs in the process's network
/// namespace; a command prefix such as <c>ip netns exec NAME</c> runs it in another.
/// </summary>
public sealed class KernelResetSuppression : IDisposable
{
    /// <summary>The mark the protocol-6 transport puts on its packets by default: "MTCP" in ASCII.</summary>
    public const uint DefaultEngineMark = 0x4D544350;

    private readonly string[] _commandPrefix;
    private bool _removed;

    private KernelResetSuppression(ushort port, uint engineMark, string[] commandPrefix)
    {
        Port = port;
        EngineMark = engineMark;
        _commandPrefix = commandPrefix;
    }

    public ushort Port { get; }

    public uint EngineMark { get; }

    /// <summary>The nftables table holding the rule: family <c>inet</c>, name <c>mtcp_PORT</c>.</summary>
    public string TableName => TableNameFor(Port);

    public static string TableNameFor(ushort port) => "mtcp_" + port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Installs (or replaces) the rule for <paramref name="port"/>.</summary>
    /// <param name="port">The engine's TCP port.</param>
    /// <param name="engineMark">The socket mark of the engine's packets, which pass.</param>
    /// <param name="commandPrefix">Words put before <c>nft</c>, e.g. <c>ip netns exec NAME</c>; none runs nft directly.</param>
    /// <exception cref="InsufficientPrivilegeException">nftables refused: CAP_NET_ADMIN is needed.</exception>
    /// <exception cref="PacketTransportException">the nft command is missing or failed.</exception>
    public static KernelResetSuppression Install(ushort port, uint engineMark = DefaultEngineMark, IReadOnlyList<string>? commandPrefix = null)
    {
        var prefix = commandPrefix?.ToArray() ?? [];
        var table = TableNameFor(port);
        var mark = "0x" + engineMark.ToString("x8", CultureInfo.InvariantCulture);
        // Declaring then deleting the table first makes the script replace a table left by a crashed run.
        var script = string.Join('\n',
            $"table inet {table} {{}}",
            $"delete table inet {table}",
            $"table inet {table} {{",
            "  chain output {",
            "    type filter hook output priority 0; policy accept;",
            $"    tcp sport {port} tcp flags & rst == rst meta mark != {mark} counter drop",
            "  }",
            "}",
            string.Empty);
        RunNft(prefix, ["-f", "-"], script);
        return new KernelResetSuppression(port, engineMark, prefix);
    }

    /// <summary>Packets the rule has dropped so far (the rule's counter).</summary>
    public long DroppedResets()
    {
        ObjectDisposedException.ThrowIf(_removed, this);
        var listing = RunNft(_commandPrefix, ["list", "table", "inet", TableName], input: null);
        const string Marker = "counter packets ";
        var at = listing.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0)
        {
            throw new PacketTransportException($"nft listing of {TableName} has no counter:\n{listing}");
        }

        var digits = listing.AsSpan(at + Marker.Length);
        var end = digits.IndexOf(' ');
        return long.Parse(end < 0 ? digits : digits[..end], NumberStyles.None, CultureInfo.InvariantCulture);
    }

    /// <summary>Removes the table.</summary>
    public void Dispose()
    {
        if (_removed)
        {
            return;
        }

        _removed = true;
        RunNft(_commandPrefix, ["delete", "table", "inet", TableName], input: null);
    }

    private static string RunNft(string[] prefix, string[] arguments, string? input)
    {
        string[] commandLine = [.. prefix, "nft", .. arguments];
        var start = new ProcessStartInfo(commandLine[0])
        {
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in commandLine.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new PacketTransportException($"{commandLine[0]} could not be started");
        }
        catch (Win32Exception e)
        {
            throw new PacketTransportException($"{commandLine[0]} was not found: install nftables (and iproute2 for namespaces) to use the protocol-6 transport", e);
        }

        using (process)
        {
            if (input is not null)
            {
                process.StandardInput.Write(input);
                process.StandardInput.Close();
            }

            // nft writes a few lines at most, so reading the two pipes one after the other cannot block.
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode == 0)
            {
                return output;
            }

            var command = string.Join(' ', commandLine);
            if (error.Contains("Operation not permitted", StringComparison.Ordinal))
            {
                throw new InsufficientPrivilegeException(
                    $"{command} was refused: installing nftables rules requires root or CAP_NET_ADMIN. Run as root, or use the UDP encapsulation transport.",
                    new PacketTransportException(error.Trim()));
            }

            throw new PacketTransportException($"{command} failed with exit code {process.ExitCode}: {error.Trim()}");
        }
    }
}
