namespace Mtcp.TestKit.Netns;

/// <summary>What the network-namespace fixtures need, checked up front so that a test fails with a
/// message that says what to do instead of an obscure errno.</summary>
public static class NetnsPrerequisites
{
    public const string RootRequiredMessage = "requires root (CAP_NET_ADMIN/CAP_NET_RAW): run as root or use sudo";

    /// <summary>Throws unless the process runs as root: these tests must fail, not skip, without it.</summary>
    /// <exception cref="InvalidOperationException">the process is not privileged.</exception>
    public static void RequireRoot()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException($"This test creates network namespaces and raw sockets and {RootRequiredMessage}.");
        }
    }
}
