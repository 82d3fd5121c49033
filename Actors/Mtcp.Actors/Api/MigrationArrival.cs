using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>
/// How a connection that migrated in got here (thesis 4.2.3 at S2): the server it came from, the time from the state
/// request to the reinstated state (the destination's share of the client's wait) and the state reply's encoded size.
/// </summary>
public sealed record MigrationArrival(ServerEndpoint From, TimeSpan StateWait, int StateReplyBytes);
