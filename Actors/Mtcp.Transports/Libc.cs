using System.Runtime.InteropServices;

namespace Mtcp.Transports;

/// <summary>
/// The libc calls .NET does not expose: it refuses raw sockets of unknown protocols such as 253 before
/// any system call (dotnet/runtime#67303), so the descriptor is created here and wrapped in a Socket.
/// </summary>
internal static partial class Libc
{
    public const int AfInet = 2;
    public const int SockRaw = 3;
    public const int SockCloexec = 0x80000;
    public const int SolSocket = 1;
    public const int SoMark = 36;
    public const int SoRcvbufforce = 33;
    public const int SoSndbufforce = 32;
    public const int Eperm = 1;
    public const int Eacces = 13;

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);
}
