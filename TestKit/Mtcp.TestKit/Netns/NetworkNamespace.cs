using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using Mtcp.Wire;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// A uniquely named Linux network namespace (<c>ip netns add</c>) with its loopback up, removed on
/// dispose. Sockets are created inside it from this process with <see cref="Run{T}"/>; commands run
/// inside it with <see cref="Exec"/> and <see cref="StartBackground"/>. Links between namespaces are built
/// with <see cref="AddVethPair"/>, <see cref="ConfigureInterface"/> and <see cref="AddBridge"/>.
/// </summary>
public sealed class NetworkNamespace : IDisposable
{
    private const string NamePrefix = "mtcp-";
    private const string NamespaceDirectory = "/var/run/netns";
    private static int _counter;

    // The namespace the process started in, opened once so every Run can return to it.
    private static readonly Lazy<int> OriginalNamespace = new(() => OpenNamespace("/proc/self/ns/net"));

    private static readonly Lazy<string> OriginalNamespaceId = new(() => new FileInfo("/proc/self/ns/net").LinkTarget ?? string.Empty);

    private bool _disposed;

    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>
    /// Creates a namespace named <c>mtcp-PID-N-TAG</c>; namespaces left by earlier test processes that
    /// no longer run are removed first.
    /// </summary>
    public static NetworkNamespace Create(string tag = "ns")
    {
        NetnsPrerequisites.RequireRoot();
        _ = OriginalNamespace.Value;
        RemoveOrphans();
        var name = string.Create(CultureInfo.InvariantCulture, $"{NamePrefix}{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}-{tag}");
        HostCommand.RunChecked("ip", "netns", "add", name);
        var created = new NetworkNamespace(name);
        try
        {
            created.Exec("ip", "link", "set", "lo", "up");
        }
        catch
        {
            created.Dispose();
            throw;
        }

        return created;
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a dedicated thread that has entered this namespace with
    /// setns(2), then returns that thread to the original namespace. A socket belongs for its whole
    /// life to the namespace it was created in, so sockets made here stay inside. The action must not
    /// start threads, tasks, async I/O or processes: a new thread (a thread-pool worker too) inherits the
    /// namespace of the thread that creates it and would stay inside. Run commands with <see cref="Exec"/>.
    /// </summary>
    public T Run<T>(Func<T> action)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = RunInside(action);
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns " + Name,
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    public void Run(Action action) => Run(() =>
    {
        action();
        return true;
    });

    private T RunInside<T>(Func<T> action)
    {
        var target = OpenNamespace(Path.Combine(NamespaceDirectory, Name));
        try
        {
            Enter(target, Name);
            try
            {
                return action();
            }
            finally
            {
                // A thread that cannot get back must not run anything else: fail loudly.
                Enter(OriginalNamespace.Value, "the original network namespace");
                if (CurrentThreadNamespaceId() != OriginalNamespaceId.Value)
                {
                    throw new InvalidOperationException($"the thread did not return from {Name} to the original network namespace");
                }
            }
        }
        finally
        {
            NetnsNative.Close(target);
        }
    }

    /// <summary>The namespace identity of the calling thread, e.g. <c>net:[4026532281]</c>.</summary>
    public static string CurrentThreadNamespaceId() =>
        new FileInfo("/proc/thread-self/ns/net").LinkTarget ?? throw new InvalidOperationException("/proc/thread-self/ns/net is not a link");

    /// <summary>This namespace's identity, comparable with <see cref="CurrentThreadNamespaceId"/>.</summary>
    public string NamespaceId => Run(CurrentThreadNamespaceId);

    /// <summary>Runs a command inside the namespace (<c>ip netns exec</c>) and returns its result.</summary>
    public CommandResult TryExec(params string[] commandLine) => HostCommand.Run(Prefix(commandLine));

    /// <summary>Runs a command inside the namespace and throws unless it succeeds.</summary>
    public CommandResult Exec(params string[] commandLine) => TryExec(commandLine).ThrowIfFailed();

    /// <summary>Starts a long-running command inside the namespace, such as a capture.</summary>
    public BackgroundCommand StartBackground(params string[] commandLine) => new(Prefix(commandLine));

    /// <summary>Sets a sysctl in this namespace only (<c>sysctl -w key=value</c>).</summary>
    public void SetSysctl(string key, string value) => Exec("sysctl", "-q", "-w", $"{key}={value}");

    public string GetSysctl(string key) => Exec("sysctl", "-n", key).StandardOutput.Trim();

    /// <summary>
    /// Creates a veth pair: <paramref name="interfaceName"/> in this namespace and <paramref name="peerInterfaceName"/>
    /// placed straight into <paramref name="peer"/>, so the names never meet in the host namespace. Both ends are down
    /// until <see cref="ConfigureInterface"/>.
    /// </summary>
    public void AddVethPair(string interfaceName, NetworkNamespace peer, string peerInterfaceName) =>
        Exec("ip", "link", "add", interfaceName, "type", "veth", "peer", "name", peerInterfaceName, "netns", peer.Name);

    /// <summary>
    /// Gives an interface of this namespace <paramref name="address"/> (none for a bridge port), switches its transmit
    /// checksum offload off and brings it up. With offload on, the kernel hands packets to the peer namespace, to raw
    /// sockets and to captures with the TCP checksum not yet computed, and every kernel segment would look corrupt.
    /// </summary>
    public void ConfigureInterface(string interfaceName, IpAddress? address, int prefixLength)
    {
        if (address is { } assigned)
        {
            AddAddress(interfaceName, assigned, prefixLength);
        }

        Run(() => DisableTransmitOffload(interfaceName));
        Exec("ip", "link", "set", interfaceName, "up");
    }

    /// <summary>
    /// Adds another address to an interface of this namespace. An IPv6 address skips duplicate address detection
    /// (<c>nodad</c>, RFC 4862 §5.4): a test namespace holds no duplicate, and a tentative address cannot be bound for
    /// the second or so detection takes.
    /// </summary>
    public void AddAddress(string interfaceName, IpAddress address, int prefixLength) =>
        Exec(address.IsIPv6
            ? ["ip", "addr", "add", $"{address}/{prefixLength}", "dev", interfaceName, "nodad"]
            : ["ip", "addr", "add", $"{address}/{prefixLength}", "dev", interfaceName]);

    /// <summary>
    /// Creates a bridge, up, with <paramref name="ports"/> (interfaces of this namespace) attached and brought up. A
    /// capture on the bridge itself puts it in promiscuous mode, and a promiscuous bridge passes every frame it
    /// forwards up to its own interface too: one capture sees the whole segment, like a capture on a hub.
    /// </summary>
    public void AddBridge(string bridgeName, params string[] ports)
    {
        Exec("ip", "link", "add", bridgeName, "type", "bridge");
        Exec("ip", "link", "set", bridgeName, "up");
        foreach (var port in ports)
        {
            Exec("ip", "link", "set", port, "master", bridgeName);
            ConfigureInterface(port, address: null, prefixLength: 0);
        }
    }

    /// <summary>The words that make a command run inside this namespace: <c>ip netns exec NAME</c>.</summary>
    public IReadOnlyList<string> CommandPrefix => ["ip", "netns", "exec", Name];

    private string[] Prefix(string[] commandLine)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return [.. CommandPrefix, .. commandLine];
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        HostCommand.Run(["ip", "netns", "del", Name]);
    }

    public override string ToString() => Name;

    /// <summary>
    /// ethtool -K IF tx off sg off tso off gso off, through SIOCETHTOOL: turns off transmit checksum
    /// offload and the segmentation offloads that depend on it. Must run inside the interface's namespace.
    /// </summary>
    private static void DisableTransmitOffload(string interfaceName)
    {
        using var control = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var fd = (int)control.SafeHandle.DangerousGetHandle();
        foreach (var command in new[]
        {
            NetnsNative.EthtoolSetTcpSegmentation,
            NetnsNative.EthtoolSetGenericSegmentation,
            NetnsNative.EthtoolSetScatterGather,
            NetnsNative.EthtoolSetTxChecksum,
        })
        {
            SetEthtoolValue(fd, interfaceName, command, 0);
        }
    }

    // struct ifreq { char ifr_name[16]; union { ...; void *ifr_data; } } is 40 bytes on 64-bit Linux;
    // struct ethtool_value { u32 cmd; u32 data; }.
    private static void SetEthtoolValue(int fd, string interfaceName, uint command, uint value)
    {
        var ethtoolValue = Marshal.AllocHGlobal(8);
        try
        {
            Marshal.WriteInt32(ethtoolValue, 0, (int)command);
            Marshal.WriteInt32(ethtoolValue, 4, (int)value);
            var request = new byte[40];
            Encoding.ASCII.GetBytes(interfaceName, request);
            MemoryMarshal.Write(request.AsSpan(16), in ethtoolValue);
            if (NetnsNative.Ioctl(fd, NetnsNative.SiocEthtool, request) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new InvalidOperationException($"SIOCETHTOOL command 0x{command:x} on {interfaceName} failed: errno {errno} ({Marshal.GetLastPInvokeErrorMessage()})");
            }
        }
        finally
        {
            Marshal.FreeHGlobal(ethtoolValue);
        }
    }

    private static int OpenNamespace(string path)
    {
        var fd = NetnsNative.Open(path, NetnsNative.ORdOnly | NetnsNative.OCloexec);
        return fd >= 0
            ? fd
            : throw new InvalidOperationException($"cannot open {path}: errno {Marshal.GetLastPInvokeError()} ({Marshal.GetLastPInvokeErrorMessage()})");
    }

    private static void Enter(int namespaceFd, string what)
    {
        if (NetnsNative.SetNs(namespaceFd, NetnsNative.CloneNewNet) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new InvalidOperationException($"setns into {what} failed: errno {errno} ({Marshal.GetLastPInvokeErrorMessage()}); entering a network namespace {NetnsPrerequisites.RootRequiredMessage}");
        }
    }

    private static void RemoveOrphans()
    {
        if (!Directory.Exists(NamespaceDirectory))
        {
            return;
        }

        foreach (var path in Directory.EnumerateFiles(NamespaceDirectory, NamePrefix + "*"))
        {
            var name = Path.GetFileName(path);
            var pidText = name[NamePrefix.Length..].Split('-')[0];
            if (int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId && !IsRunning(pid))
            {
                HostCommand.Run(["ip", "netns", "del", name]);
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
