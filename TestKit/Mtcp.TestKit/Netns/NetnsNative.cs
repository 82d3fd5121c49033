using System.Runtime.InteropServices;

namespace Mtcp.TestKit.Netns;

/// <summary>
/// The libc calls for entering a network namespace from a thread of this process (setns(2)) and for
/// switching off veth checksum offload (SIOCETHTOOL), which .NET does not expose.
/// </summary>
internal static class NetnsNative
{
    public const int CloneNewNet = 0x40000000;
    public const int ORdOnly = 0;
    public const int OCloexec = 0x80000;
    public const uint SiocEthtool = 0x8946;
    public const uint EthtoolSetTxChecksum = 0x17;
    public const uint EthtoolSetScatterGather = 0x19;
    public const uint EthtoolSetTcpSegmentation = 0x1f;
    public const uint EthtoolSetGenericSegmentation = 0x24;

    // DllImport rather than LibraryImport: this assembly does not enable unsafe code, and these
    // signatures marshal without it.
    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    public static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    public static extern int SetNs(int fd, int namespaceType);

    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static extern int Ioctl(int fd, nuint request, byte[] argument);
}
