using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;

namespace Mtcp.Stack.Migration;

/// <summary>
/// The MTCP side of a SYN answered with a SYN cookie (RFC 4987 §3.6, <see cref="SynCookies"/>): the stateless SYN+ACK
/// carries what a held SYN's would, the migration secret and the alternates, and nothing of it is kept. The secret is
/// <c>HMAC(cluster key, Cid | client ISN | server ISN)</c> (docs/threat-model.md), so the endpoint created from the
/// client's ACK (<see cref="MtcpServerEndpoint{TPeer}.AcceptCookie"/>) derives the very secret the SYN+ACK gave, from
/// the Cid and the two ISNs the ACK brings back: a cookie connection migrates as any other.
/// </summary>
public static class StatelessHandshake
{
    /// <summary>
    /// The SYN+ACK answering <paramref name="syn"/> on <paramref name="cid"/> at <paramref name="now"/>, its ISN a
    /// cookie of <paramref name="cookies"/>: with the migration secret and as many alternates as fit when
    /// <paramref name="authenticator"/> is given (migration on), the plain TCP one otherwise.
    /// </summary>
    public static TcpSegmentRepr SynAck(SynCookies cookies, TcpConfig config, Instant now, ConnectionId cid, in TcpSegmentRepr syn, IMigrationAuthenticator? authenticator, IReadOnlyList<ServerEndpoint> alternates)
    {
        ArgumentNullException.ThrowIfNull(cookies);
        var cookie = cookies.Issue(now, cid, syn);
        var header = SynCookies.SynAck(config, syn, cookie);
        if (authenticator is null)
        {
            return header;
        }

        // The same issuing and decoration as a held SYN's SYN+ACK, on an authentication state dropped at once.
        var authentication = new ServerEndpointAuthentication();
        authentication.Issue(authenticator, cid, syn.SequenceNumber, cookie);
        return authentication.Decorate(header, 0, null, alternates);
    }
}
