using Akka.Actor;
using Mtcp.Actors.Diagnostics;

namespace Mtcp.Actors.Api;

/// <summary>
/// The hosts' way into a node's refusal log for refusals made outside the runtime's actors: the certificate checks run
/// inside Akka.Remote's and the replication channel's TLS handshakes.
/// </summary>
public static class NodeRefusals
{
    /// <summary>Counts <paramref name="count"/> TLS peers refused on <paramref name="system"/>'s node; <paramref name="detail"/> names the last.</summary>
    public static void TlsPeerRefused(ActorSystem system, string detail, long count = 1) =>
        RefusalLog.Get(system).Refuse(RefusalClass.TlsPeerRefused, detail, count);

    /// <summary>Counts a TLS handshake that failed on <paramref name="system"/>'s control port; <paramref name="detail"/> says whose.</summary>
    public static void TlsHandshakeFailed(ActorSystem system, string detail) =>
        RefusalLog.Get(system).Refuse(RefusalClass.TlsHandshakeFailed, detail);
}
