using System.Buffers.Binary;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Stack.Tests.Authentication;

/// <summary>Fixed keys and connection ids shared by the authentication tests (documentation address ranges, RFC 5737).</summary>
internal static class AuthenticationFixture
{
    public static readonly IpAddress Client = IpAddress.Parse("192.0.2.10");
    public static readonly ServerEndpoint S1 = new(IpAddress.Parse("198.51.100.1"), 443);
    public static readonly ServerEndpoint S2 = new(IpAddress.Parse("203.0.113.7"), 443);
    public static readonly ServerEndpoint S3 = new(IpAddress.Parse("203.0.113.8"), 443);

    /// <summary>The migrating connection: client 192.0.2.10:40000 with origin server S1.</summary>
    public static readonly ConnectionId Cid = new(Client, 40000, S1.Address, S1.Port);

    /// <summary>The client's new endpoint with S2 (same client port, thesis 4.2.3).</summary>
    public static readonly ConnectionId NewEndpointCid = new(Client, 40000, S2.Address, S2.Port);

    /// <summary>ISNs just below and at the middle of the sequence space, so the encoding is exercised at the wrap.</summary>
    public static readonly SeqNumber ClientIsn = new(0xFFFF_FFF0);
    public static readonly SeqNumber ServerIsn = new(0x7F00_0001);

    /// <summary>The cluster key 00 01 02 ... 1f.</summary>
    public static byte[] ClusterKeyBytes() => Enumerable.Range(0, ClusterKey.Length).Select(i => (byte)i).ToArray();

    /// <summary>Another cluster key: ff fe fd ... e0.</summary>
    public static byte[] OtherClusterKeyBytes() => Enumerable.Range(0, ClusterKey.Length).Select(i => (byte)(0xFF - i)).ToArray();

    public static MigrationAuthenticator Authenticator() => MigrationAuthenticator.FromKey(ClusterKeyBytes());

    public static MigrationSecret Secret()
    {
        Authenticator().IssueCredential(Cid, ClientIsn, ServerIsn, out var secret);
        return secret;
    }

    public static StateRequest Request(ulong authenticator, SeqNumber clientRcvNxt, ConnectionId? newEndpoint = null)
    {
        var bytes = new byte[MtcpOption.AuthenticatorLength];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, authenticator);
        return new StateRequest(requestId: 7, Cid, newEndpoint ?? NewEndpointCid, clientRcvNxt, bytes);
    }

    public static byte[] FromHex(string hex) => Convert.FromHexString(hex);
}
