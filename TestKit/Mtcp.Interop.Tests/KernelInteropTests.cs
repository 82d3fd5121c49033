using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Mtcp.Stack;
using Mtcp.TestKit.Netns;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// The Linux kernel's TCP as the conformance judge: our engine, over the protocol-6 raw transport in
/// namespace A, exchanges 10 MB each way with kernel sockets in namespace B across a veth pair, over IPv4
/// and over IPv6. The
/// kernel in A is kept from resetting the engine's connection by <see cref="KernelResetSuppression"/>.
/// </summary>
[Trait("Category", "Interop")]
public sealed class KernelInteropTests(ITestOutputHelper output)
{
    // Ports no dissector claims, so that random payload is not parsed as an application protocol.
    private const ushort EnginePort = 47001;
    private const ushort KernelPort = 47002;
    private static readonly TimeSpan TransferTimeout = TimeSpan.FromSeconds(120);

    public static TheoryData<bool, bool, bool> KernelOptionCombinations
    {
        get
        {
            var data = new TheoryData<bool, bool, bool>();
            foreach (var windowScaling in new[] { true, false })
            {
                foreach (var sack in new[] { true, false })
                {
                    foreach (var timestamps in new[] { true, false })
                    {
                        data.Add(windowScaling, sack, timestamps);
                    }
                }
            }

            return data;
        }
    }

    [Theory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void Kernel_client_must_echo_10_MB_through_the_engine_serving_over_protocol_6_with_a_clean_capture(AddressFamily family)
    {
        using var pair = VethNamespacePair.Create();
        using var capture = PacketCapture.Start(pair.A, VethNamespacePair.InterfaceName, CaptureCheckTests.CapturePath($"engine-server-{family}"));
        var elapsed = KernelClientAgainstEngineServer(pair, seed: 1, output, family: family);
        output.WriteLine($"{family}: kernel client -> engine server, 10 MB each way: {elapsed.TotalMilliseconds:F0} ms");
        output.WriteLine($"{family}: kernel client -> kernel server, 10 MB each way: {KernelToKernel(pair, family: family).TotalMilliseconds:F0} ms");

        var bad = capture.BadSegments();
        Assert.True(bad.Count == 0, $"the capture {capture.FilePath} holds malformed or bad-checksum segments:\n{string.Join('\n', bad.Take(20))}");
        Assert.True(capture.Count("tcp") > 2 * KernelEcho.TransferBytes / 1460);
    }

    [Theory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void Engine_client_must_echo_10_MB_through_a_kernel_server(AddressFamily family)
    {
        using var pair = VethNamespacePair.Create();
        var elapsed = EngineClientAgainstKernelServer(pair, seed: 2, output, family: family);
        output.WriteLine($"{family}: engine client -> kernel server, 10 MB each way: {elapsed.TotalMilliseconds:F0} ms");
        output.WriteLine($"{family}: kernel client -> kernel server, 10 MB each way: {KernelToKernel(pair, family: family).TotalMilliseconds:F0} ms");
    }

    [Theory]
    [MemberData(nameof(KernelOptionCombinations))]
    public void Engine_must_interoperate_with_kernel_window_scaling_sack_and_timestamps_switched(bool windowScaling, bool sack, bool timestamps)
    {
        using var pair = VethNamespacePair.Create();
        foreach (var side in new[] { pair.A, pair.B })
        {
            side.SetSysctl("net.ipv4.tcp_window_scaling", windowScaling ? "1" : "0");
            side.SetSysctl("net.ipv4.tcp_sack", sack ? "1" : "0");
            side.SetSysctl("net.ipv4.tcp_timestamps", timestamps ? "1" : "0");
        }

        var asServer = KernelClientAgainstEngineServer(pair, seed: 10, output);
        var asClient = EngineClientAgainstKernelServer(pair, seed: 11, output);
        output.WriteLine($"wscale={windowScaling} sack={sack} ts={timestamps}: engine server {asServer.TotalMilliseconds:F0} ms, engine client {asClient.TotalMilliseconds:F0} ms, kernel-kernel {KernelToKernel(pair).TotalMilliseconds:F0} ms");
    }

    /// <summary>A kernel client sends 10 MB (or <paramref name="payload"/>) to the engine, serving over protocol 6 in namespace A, and reads the echo back.</summary>
    internal static TimeSpan KernelClientAgainstEngineServer(
        VethNamespacePair pair, int seed, ITestOutputHelper output, byte[]? payload = null, Action<TransportConnectionDriver>? inspect = null, AddressFamily family = AddressFamily.InterNetwork)
    {
        var (engineAddress, _) = VethNamespacePair.Addresses(family);
        using var transport = pair.A.Run(() => RawIPTransport.OpenTcp(engineAddress));
        var suppression = KernelResetSuppression.Install(EnginePort, commandPrefix: pair.A.CommandPrefix);
        try
        {
            var echo = new EngineEchoApplication();
            using var driver = TransportConnectionDriver.Listen(transport, TcpConfig.Default, EnginePort, new SeqNumber((uint)(0xFFFF_F000 + seed)), echo);
            using var client = pair.B.Run(() => new Socket(family, SocketType.Stream, ProtocolType.Tcp));
            client.Connect(new IPEndPoint(engineAddress.ToIPAddress(), EnginePort));
            payload ??= KernelEcho.Payload(seed);
            var (length, sha256, elapsed) = KernelEcho.SendAndReceiveEcho(client, payload, TransferTimeout);
            client.Close();

            // The message only when it failed: the driver's thread may still be adding events to the list.
            var finished = driver.WaitUntilFinished(TimeSpan.FromSeconds(10));
            Assert.True(finished, finished ? "" : $"the engine did not finish: state {driver.State}, events {string.Join(',', echo.Events)}");
            Report(driver, transport, output);
            inspect?.Invoke(driver);
            Assert.Equal(payload.Length, length);
            Assert.Equal(SHA256.HashData(payload), sha256);
            Assert.Empty(driver.RejectedSegments);
            return elapsed;
        }
        finally
        {
            suppression.Dispose();
        }
    }

    /// <summary>
    /// The engine in namespace A sends 10 MB (or <paramref name="payload"/>) to a kernel echo server in namespace B and
    /// reads the echo back, with <see cref="TcpConfig.Default"/> or <paramref name="config"/>.
    /// </summary>
    internal static TimeSpan EngineClientAgainstKernelServer(
        VethNamespacePair pair, int seed, ITestOutputHelper output, byte[]? payload = null, Action<TransportConnectionDriver>? inspect = null, AddressFamily family = AddressFamily.InterNetwork, TcpConfig? config = null)
    {
        var (engineAddress, kernelAddress) = VethNamespacePair.Addresses(family);
        using var listener = pair.B.Run(() =>
        {
            var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(kernelAddress.ToIPAddress(), KernelPort));
            socket.Listen();
            return socket;
        });
        Exception? serverFailure = null;
        var server = KernelEcho.StartEchoServer(listener, e => serverFailure = e);
        using var transport = pair.A.Run(() => RawIPTransport.OpenTcp(engineAddress));
        var suppression = KernelResetSuppression.Install(EnginePort, commandPrefix: pair.A.CommandPrefix);
        try
        {
            payload ??= KernelEcho.Payload(seed);
            var application = new EngineSendAndHashApplication(payload);
            var stopwatch = Stopwatch.StartNew();
            using var driver = TransportConnectionDriver.Connect(
                transport, config ?? TcpConfig.Default, EnginePort, kernelAddress, KernelPort, new SeqNumber((uint)(0xFFFF_F000 + seed)), application);
            var finished = driver.WaitUntilFinished(TransferTimeout);
            stopwatch.Stop();
            Report(driver, transport, output);
            inspect?.Invoke(driver);
            Assert.True(finished, finished ? "" : $"the engine did not finish: state {driver.State}, received {application.BytesReceived}, events {string.Join(',', application.Events)}");
            Assert.True(server.Join(TimeSpan.FromSeconds(10)), "the kernel echo server did not finish");
            Assert.Null(serverFailure);
            Assert.Equal(payload.Length, application.BytesReceived);
            Assert.Equal(SHA256.HashData(payload), application.ReceivedSha256);
            Assert.Empty(driver.RejectedSegments);
            return stopwatch.Elapsed;
        }
        finally
        {
            suppression.Dispose();
        }
    }

    /// <summary>The baseline: the same 10 MB (or <paramref name="payloadBytes"/>) echo between kernel sockets in the same namespaces.</summary>
    internal static TimeSpan KernelToKernel(VethNamespacePair pair, int payloadBytes = KernelEcho.TransferBytes, AddressFamily family = AddressFamily.InterNetwork)
    {
        using var listener = pair.A.Run(() =>
        {
            var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(VethNamespacePair.Addresses(family).A.ToIPAddress(), 0));
            socket.Listen();
            return socket;
        });
        Exception? serverFailure = null;
        var server = KernelEcho.StartEchoServer(listener, e => serverFailure = e);
        using var client = pair.B.Run(() => new Socket(family, SocketType.Stream, ProtocolType.Tcp));
        client.Connect(listener.LocalEndPoint!);
        var payload = KernelEcho.Payload(99, payloadBytes);
        var (length, sha256, elapsed) = KernelEcho.SendAndReceiveEcho(client, payload, TransferTimeout);
        Assert.True(server.Join(TimeSpan.FromSeconds(10)));
        Assert.Null(serverFailure);
        Assert.Equal(payload.Length, length);
        Assert.Equal(SHA256.HashData(payload), sha256);
        return elapsed;
    }

    private static void Report(TransportConnectionDriver driver, IPacketTransport transport, ITestOutputHelper output)
    {
        var stats = driver.Stats;
        output.WriteLine(
            $"engine: sent {stats.SegmentsSent} segments ({transport.SendDrops.Total} dropped locally), received {stats.SegmentsReceived}, retransmissions {stats.Retransmissions} " +
            $"(fast {stats.FastRetransmits}, timeouts {stats.RetransmissionTimeouts}, tail-loss probes {stats.TailLossProbes}), rejected by engine {stats.SegmentsRejected}, " +
            $"rejected by codec [{string.Join(", ", driver.RejectedSegments.Select(r => $"{r.Key}: {r.Value}"))}], final state {driver.State}");
    }
}
