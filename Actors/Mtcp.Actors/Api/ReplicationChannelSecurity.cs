using System.Net.Security;

namespace Mtcp.Actors.Api;

/// <summary>
/// Mutual TLS for the direct replication channel, given by the host that loads the node's certificate and the
/// cluster's CAs (the same options its Akka.Remote associations use): <paramref name="Server"/> for the listener,
/// <paramref name="Client"/> for a connection to a peer, given the peer's host as its certificate names it. Each call
/// returns fresh options.
/// </summary>
public sealed record ReplicationChannelSecurity(Func<SslServerAuthenticationOptions> Server, Func<string, SslClientAuthenticationOptions> Client);
