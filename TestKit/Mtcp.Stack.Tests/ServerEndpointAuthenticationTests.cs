using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests;

/// <summary>
/// A server endpoint's migration-authentication state, segment by segment: the secret on the origin's SYN+ACK, the
/// alternates it displaced owed on later segments until the client provably has them, and the state requests checked
/// under the connection's secret.
/// </summary>
[Trait("Category", "Migration")]
public sealed class ServerEndpointAuthenticationTests
{
    /// <summary>More alternates than fit beside the secret on a SYN+ACK.</summary>
    private static readonly ServerEndpoint[] Alternates =
        Enumerable.Range(1, 6).Select(i => new ServerEndpoint(IpAddress.Parse($"203.0.113.{20 + i}"), 443)).ToArray();

    private static readonly SeqNumber FirstAfterHandshake = ServerIsn + 1;

    private static readonly TcpSegmentRepr SynAck = new()
    {
        SourcePort = S1.Port,
        DestinationPort = Cid.ClientPort,
        SequenceNumber = ServerIsn,
        AcknowledgmentNumber = ClientIsn + 1,
        Flags = TcpFlags.Syn | TcpFlags.Ack,
        Options = new TcpOptions { MaxSegmentSize = 1460, WindowScale = 7 },
    };

    [Fact]
    public void Origin_SYN_ACK_must_carry_the_issued_secret_and_owe_the_alternates_it_displaced()
    {
        var authentication = Issued();

        var synAck = authentication.Decorate(SynAck, 0, origInfo: null, Alternates);

        Assert.Equal(SecretOnWire(Secret()), synAck.Options.MigrationSecret);
        Assert.Null(synAck.Options.OrigConnectionInfo);
        Assert.True((synAck.Options.AlternateServers?.Servers.Count ?? 0) < Alternates.Length);
        Assert.True(authentication.AlternatesOwed);
    }

    [Fact]
    public void Migrated_endpoint_SYN_ACK_must_carry_orig_connection_info_and_no_secret()
    {
        var authentication = new ServerEndpointAuthentication();
        var origInfo = new MtcpOrigConnectionInfo(new SeqNumber(100), new SeqNumber(200));

        var synAck = authentication.Decorate(SynAck, 0, origInfo, Alternates);

        Assert.Null(synAck.Options.MigrationSecret);
        Assert.Equal(origInfo, synAck.Options.OrigConnectionInfo);
    }

    [Fact]
    public void Owed_alternates_must_not_start_their_debt_on_a_pure_ACK()
    {
        var authentication = Owing();

        // A pure ACK carries the list but may be lost and is never retransmitted: it proves nothing once acknowledged.
        var pureAck = authentication.Decorate(After(FirstAfterHandshake), 0, null, Alternates);
        Assert.NotNull(pureAck.Options.AlternateServers);
        authentication.OnInbound(ClientAck(FirstAfterHandshake + 1000));

        Assert.True(authentication.AlternatesOwed);
        Assert.NotNull(authentication.Decorate(After(FirstAfterHandshake), 100, null, Alternates).Options.AlternateServers);
    }

    [Fact]
    public void Owed_alternates_must_end_only_on_an_ACK_beyond_the_first_data_segment_that_carried_them()
    {
        var authentication = Owing();
        var data = authentication.Decorate(After(FirstAfterHandshake), 100, null, Alternates);
        Assert.NotNull(data.Options.AlternateServers);

        authentication.OnInbound(ClientAck(FirstAfterHandshake + 1) with { Flags = TcpFlags.Psh });
        authentication.OnInbound(ClientAck(FirstAfterHandshake));
        Assert.True(authentication.AlternatesOwed);
        var next = authentication.Decorate(After(FirstAfterHandshake + 100), 100, null, Alternates);
        Assert.NotNull(next.Options.AlternateServers);

        authentication.OnInbound(ClientAck(FirstAfterHandshake + 1));

        Assert.False(authentication.AlternatesOwed);
        Assert.Null(authentication.Decorate(After(FirstAfterHandshake + 200), 100, null, Alternates).Options.AlternateServers);
    }

    [Fact]
    public void A_RST_must_not_carry_the_owed_alternates()
    {
        var authentication = Owing();

        var reset = authentication.Decorate(After(FirstAfterHandshake) with { Flags = TcpFlags.Rst | TcpFlags.Ack }, 0, null, Alternates);

        Assert.Null(reset.Options.AlternateServers);
        Assert.True(authentication.AlternatesOwed);
    }

    [Fact]
    public void Answer_must_report_forged_and_replayed_requests_as_AUTH_FAILED_with_their_verdicts()
    {
        var authenticator = Authenticator();
        var authentication = Issued();
        var endpoint = EstablishedEndpoint();
        var client = new ConnectionAuthenticator(Secret());
        var rcvNxt = ScriptedPeer.LocalIss + 1;
        var tag = client.MigratedConnection(Cid, NewEndpointCid, rcvNxt, 0);
        var genuine = Request(tag, rcvNxt);
        var forged = Request(tag ^ 1, rcvNxt);

        var verdicts = new List<(StateRejectReason? Reason, MigratedConnectionCheck Check)>();
        foreach (var request in new[] { forged, genuine, genuine })
        {
            var answer = authentication.Answer(authenticator, endpoint, S1, request, out var check);
            verdicts.Add(((answer as StateReject)?.Reason, check));
        }

        Assert.Equal(
            [
                (StateRejectReason.AuthFailed, MigratedConnectionCheck.Forged),
                (null, MigratedConnectionCheck.Accepted),
                (StateRejectReason.AuthFailed, MigratedConnectionCheck.Replayed),
            ],
            verdicts);
    }

    [Fact]
    public void CredentialBytes_must_be_encoded_once_per_credential_and_follow_its_changes()
    {
        var authentication = Issued();
        var issued = authentication.CredentialBytes.ToArray();

        // Buddy replication reads it on every input: once the comparison is warm (its first run makes the comparers of
        // the credential's fields), a read of the same credential allocates nothing.
        _ = authentication.CredentialBytes;
        var before = GC.GetAllocatedBytesForCurrentThread();
        var again = authentication.CredentialBytes;
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(issued, again.ToArray());

        // An accepted state request consumes an attempt: the credential changes, and so must its bytes.
        var client = new ConnectionAuthenticator(Secret());
        var rcvNxt = ScriptedPeer.LocalIss + 1;
        var answer = authentication.Answer(Authenticator(), EstablishedEndpoint(), S1, Request(client.MigratedConnection(Cid, NewEndpointCid, rcvNxt, 0), rcvNxt), out var check);
        Assert.Equal(MigratedConnectionCheck.Accepted, check);
        Assert.IsType<StateReply>(answer);

        Assert.NotEqual(issued, authentication.CredentialBytes.ToArray());
        Assert.True(ConnectionCredential.TryRead(authentication.CredentialBytes.Span, out var current));
        Assert.Equal(current.ToBytes(), authentication.CredentialBytes.ToArray());
    }

    [Fact]
    public void Answer_without_an_endpoint_must_be_CB_NOT_FOUND()
    {
        var answer = new ServerEndpointAuthentication().Answer(Authenticator(), endpoint: null, S1, Request(0, new SeqNumber(1)), out _);

        Assert.Equal(StateRejectReason.CbNotFound, Assert.IsType<StateReject>(answer).Reason);
    }

    [Fact]
    public void Trigger_and_trigger_key_must_need_a_credential_and_verify_at_the_client()
    {
        var authenticator = Authenticator();
        var blank = new ServerEndpointAuthentication();
        Assert.False(blank.TryCreateTrigger(authenticator, Cid, S1, S2, out _));
        Assert.False(blank.TryDeriveTriggerKey(authenticator, Cid, out _));

        var authentication = Issued();
        Assert.True(authentication.TryCreateTrigger(authenticator, Cid, S1, S2, out var segment));
        Assert.True(authentication.TryDeriveTriggerKey(authenticator, Cid, out var key));

        var client = new ConnectionAuthenticator(Secret());
        Assert.Equal(TcpFlags.Syn, segment.Flags);
        Assert.Equal(Cid.ClientPort, segment.DestinationPort);
        Assert.Equal(TriggerCheck.Accepted, client.VerifyTrigger(segment.Options.MigrateTrigger!.Value, Cid, S1, 0));
        Assert.Equal(client.DeriveTriggerKey(Cid, 0), key);
    }

    private static ServerEndpointAuthentication Issued()
    {
        var authentication = new ServerEndpointAuthentication();
        authentication.Issue(Authenticator(), Cid, ClientIsn, ServerIsn);
        return authentication;
    }

    private static ServerEndpointAuthentication Owing()
    {
        var authentication = Issued();
        authentication.Decorate(SynAck, 0, null, Alternates);
        Assert.True(authentication.AlternatesOwed);
        return authentication;
    }

    private static TcpSegmentRepr After(SeqNumber seq) => SynAck with { SequenceNumber = seq, Flags = TcpFlags.Ack, Options = default };

    private static TcpSegmentRepr ClientAck(SeqNumber ack) => new()
    {
        SourcePort = Cid.ClientPort,
        DestinationPort = S1.Port,
        SequenceNumber = ClientIsn + 1,
        AcknowledgmentNumber = ack,
        Flags = TcpFlags.Ack,
    };

    private static MtcpMigrationSecret SecretOnWire(MigrationSecret secret)
    {
        var bytes = new byte[MigrationSecret.Length];
        secret.WriteTo(bytes);
        return MtcpMigrationSecret.FromBytes(bytes);
    }

    /// <summary>A server endpoint in ESTABLISHED that keeps its read log, so it can package its state.</summary>
    private static TcpConnection EstablishedEndpoint()
    {
        var peer = ScriptedPeer.SynReceived(ScriptedPeer.DefaultConfig with { RetainReadLog = true });
        peer.Send(ScriptedPeer.Segment(TcpFlags.Ack, ScriptedPeer.RemoteIss + 1, ScriptedPeer.LocalIss + 1, window: 20000));
        Assert.Equal(TcpState.Established, peer.State);
        return peer.Connection;
    }
}
