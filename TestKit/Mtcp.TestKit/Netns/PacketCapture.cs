using System.Globalization;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// A tshark capture on one interface of a namespace, written to a pcapng file, and the check the
/// interop tests make on it: no malformed segment and no bad TCP checksum.
/// </summary>
public sealed class PacketCapture : IDisposable
{
    /// <summary>Matches segments whose TCP checksum is wrong and anything the dissectors call malformed.</summary>
    /// <remarks>
    /// A checksum field of 0xFFFF where 0x0000 is computed is the other one's-complement zero (RFC 1624 §3); Linux
    /// writes it when it finishes a checksum in software, so it is not counted as bad.
    /// </remarks>
    public const string BadSegmentFilter = "(tcp.checksum.status == \"Bad\" && !tcp.checksum.ffff) || _ws.malformed";

    private readonly BackgroundCommand _tshark;
    private bool _stopped;

    private PacketCapture(BackgroundCommand tshark, string file)
    {
        _tshark = tshark;
        FilePath = file;
    }

    public string FilePath { get; }

    /// <summary>Whether dispose leaves the file in place; set when <see cref="BadSegments"/> finds any.</summary>
    public bool KeepFileOnDispose { get; set; }

    /// <summary>Starts capturing on <paramref name="interfaceName"/> inside <paramref name="ns"/> and waits until packets are being recorded.</summary>
    public static PacketCapture Start(NetworkNamespace ns, string interfaceName, string filePath)
    {
        File.Delete(filePath);
        var tshark = ns.StartBackground("tshark", "-i", interfaceName, "-w", filePath, "-q");
        var capture = new PacketCapture(tshark, filePath);
        // tshark writes the pcapng section header once the interface is open.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!File.Exists(filePath) || new FileInfo(filePath).Length == 0)
        {
            if (tshark.HasExited || DateTime.UtcNow > deadline)
            {
                var result = tshark.Stop();
                capture._stopped = true;
                throw new InvalidOperationException($"tshark did not start capturing on {interfaceName} in {ns}: {result.StandardError.Trim()}");
            }

            Thread.Sleep(50);
        }

        // The header is written a moment before the capture filter is attached; give it that moment.
        Thread.Sleep(300);
        return capture;
    }

    /// <summary>Stops the capture so that the file is complete.</summary>
    public void Stop()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        _tshark.Stop();
    }

    /// <summary>
    /// The capture's packets matching <see cref="BadSegmentFilter"/>, one summary line each, with TCP
    /// checksum validation on; <paramref name="decodeAsTcp"/> names IP protocols (such as 253) to
    /// dissect as TCP. When any are found the file is kept after dispose, as evidence.
    /// </summary>
    public IReadOnlyList<string> BadSegments(params byte[] decodeAsTcp)
    {
        var bad = Read(BadSegmentFilter, decodeAsTcp);
        KeepFileOnDispose |= bad.Count > 0;
        return bad;
    }

    /// <summary>The number of packets matching a display filter, such as <c>tcp &amp;&amp; ip.src == 10.99.0.1</c>.</summary>
    public int Count(string displayFilter, params byte[] decodeAsTcp) => Read(displayFilter, decodeAsTcp).Count;

    /// <summary>One field (such as <c>tcp.len</c>) of every packet matching a display filter, in capture order.</summary>
    public IReadOnlyList<string> Field(string displayFilter, string field, params byte[] decodeAsTcp) =>
        Read(displayFilter, decodeAsTcp, ["-T", "fields", "-e", field]);

    private List<string> Read(string displayFilter, byte[] decodeAsTcp, string[]? output = null)
    {
        Stop();
        var commandLine = new List<string> { "tshark", "-r", FilePath, "-o", "tcp.check_checksum:TRUE" };
        foreach (var protocol in decodeAsTcp)
        {
            commandLine.AddRange(["-d", string.Create(CultureInfo.InvariantCulture, $"ip.proto=={protocol},tcp")]);
        }

        // Segment payloads are opaque test bytes: a dissector that takes them for its protocol (by port or by
        // heuristic) would report them malformed, and only TCP itself is being judged.
        commandLine.AddRange(["-d", "tcp.port==1-65535,data"]);

        commandLine.AddRange(["-Y", displayFilter]);
        commandLine.AddRange(output ?? []);
        var result = HostCommand.Run(commandLine, TimeSpan.FromMinutes(2)).ThrowIfFailed();
        return result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
    }

    public void Dispose()
    {
        Stop();
        _tshark.Dispose();
        if (!KeepFileOnDispose)
        {
            File.Delete(FilePath);
        }
    }
}
