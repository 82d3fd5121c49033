using System.Runtime.InteropServices;

namespace Mtcp.Transports;

/// <summary>
/// The libc calls .NET does not expose: it refuses raw sockets of unknown protocols such as 253 before
/// any system call (dotnet/runtime#67303), so the descriptor is created here and wrapped in a Socket.
/// </summary>
internal static partial class Libc
{
    public const int AfInet = 2;
    public const int AfInet6 = 10;
    public const int SockRaw = 3;
    public const int SockCloexec = 0x80000;
    public const int SolSocket = 1;
    public const int SoMark = 36;
    public const int SoRcvbufforce = 33;
    public const int SoSndbufforce = 32;
    // errno values (asm-generic/errno-base.h, asm-generic/errno.h).
    public const int Eperm = 1;
    public const int Eintr = 4;
    public const int Ebadf = 9;
    public const int Eagain = 11;
    public const int Enomem = 12;
    public const int Eacces = 13;
    public const int Efault = 14;
    public const int Enonet = 64;
    public const int Eproto = 71;
    public const int Einval = 22;
    public const int Enotsock = 88;
    public const int Edestaddrreq = 89;
    public const int Emsgsize = 90;
    public const int Enoprotoopt = 92;
    public const int Eopnotsupp = 95;
    public const int Eafnosupport = 97;
    public const int Eaddrnotavail = 99;
    public const int Enetdown = 100;
    public const int Enetunreach = 101;
    public const int Enobufs = 105;
    public const int Econnrefused = 111;
    public const int Ehostdown = 112;
    public const int Ehostunreach = 113;

    // Path MTU discovery and error reporting of IP sockets (<linux/in.h>, <linux/in6.h>; ip(7), ipv6(7)).
    public const int IPProtocolLevel = 0;
    public const int IpMtuDiscover = 10;
    public const int IpRecverr = 11;
    public const int IPv6ProtocolLevel = 41;
    public const int Ipv6MtuDiscover = 23;
    public const int Ipv6Recverr = 25;
    public const int Ipv6Dontfrag = 62;

    /// <summary>IP_MTU_DISCOVER / IPV6_MTU_DISCOVER: fragment locally beyond the route's path MTU (the kernel's default for raw sockets).</summary>
    public const int PmtuDiscoveryWant = 1;

    /// <summary>IP_MTU_DISCOVER / IPV6_MTU_DISCOVER: DF set, sent up to the interface's MTU whatever path MTU the route holds; never fragmented.</summary>
    public const int PmtuDiscoveryProbe = 3;

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    /// <summary>connect(2); on a datagram socket it only fixes the peer, and may be called again for another.</summary>
    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    public static unsafe partial int Connect(SafeHandle socket, byte* address, int addressLength);

    /// <summary>recv(2) flag: return EAGAIN at once when nothing is queued, whatever the socket's blocking mode.</summary>
    public const int MsgDontwait = 0x40;

    /// <summary>
    /// recvmmsg(2): up to <paramref name="count"/> datagrams in one system call, each into its own msghdr (its length in
    /// msg_len); with MSG_DONTWAIT, what is queued now; -1 with EAGAIN when nothing is. No timeout here (null).
    /// </summary>
    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    public static unsafe partial int ReceiveMultipleMessages(SafeHandle socket, MultiMessageHeader* messages, uint count, int flags, void* timeout);

    /// <summary>recvmsg(2) flag: read the socket's error queue (the ICMP errors and local errors IP_RECVERR/IPV6_RECVERR keep), not its data.</summary>
    public const int MsgErrqueue = 0x2000;

    /// <summary>recvmsg(2): one datagram, its source address and its control messages (an error queue entry's sock_extended_err).</summary>
    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static unsafe partial nint ReceiveMessage(SafeHandle socket, MessageHeader* message, int flags);

    /// <summary>sendmsg(2): one datagram gathered from several buffers, so a header and a payload need not be joined first.</summary>
    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static unsafe partial nint SendMessage(SafeHandle socket, MessageHeader* message, int flags);

    /// <summary>
    /// sendmmsg(2): several datagrams in one system call, each its own msghdr, in order; the number sent, or -1 with the
    /// errno of the first when it failed. The kernel stops at the first that fails after one was sent and returns the count
    /// before it, without its errno; it takes at most <see cref="UioMaxiov"/> messages a call (more are cut off, not refused).
    /// </summary>
    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static unsafe partial int SendMultipleMessages(SafeHandle socket, MultiMessageHeader* messages, uint count, int flags);

    /// <summary>UIO_MAXIOV (<c>linux/uio.h</c>): the most messages one sendmmsg(2) takes.</summary>
    public const int UioMaxiov = 1024;

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct IoVector
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>struct msghdr (LP64 layout; the compiler pads msg_namelen and msg_flags as C does).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* Vectors;
        public nuint VectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct mmsghdr: one message of a sendmmsg(2) or recvmmsg(2), and the bytes the kernel sent or received of it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MultiMessageHeader
    {
        public MessageHeader Header;
        public uint Length;
    }
}
