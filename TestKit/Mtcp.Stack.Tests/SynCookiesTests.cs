using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.TestKit;
using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// SYN cookies (RFC 4987 §3.6): a cookie comes back valid with the SYN's options, and only from the 4-tuple and ISN
/// it was issued for, within its two counter periods; a connection created from one exchanges data and migrates as
/// any other.
/// </summary>
[Trait("Category", "Stack")]
public sealed class SynCookiesTests
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(64);
    private static readonly ConnectionId Cid = new(IpAddress.Parse("10.0.0.1"), 40000, IpAddress.Parse("10.0.0.11"), 80);
    private static readonly SeqNumber ClientIsn = new(0xFFFF_FFF0);
    private static readonly Instant IssuedAt = Instant.FromMilliseconds(1_000_000);
    private readonly SynCookies _cookies = new(Enumerable.Range(1, SynCookies.SecretLength).Select(i => (byte)i).ToArray(), Period);

    [Theory]
    [InlineData((ushort)1460, (byte)7, true, (ushort)1460)]
    [InlineData((ushort)1500, (byte)14, false, (ushort)1460)]
    [InlineData((ushort)9000, (byte)0, true, (ushort)8960)]
    [InlineData((ushort)65495, (byte)20, false, (ushort)65495)]
    [InlineData((ushort)600, null, false, (ushort)536)]
    [InlineData((ushort)100, null, true, (ushort)536)]
    [InlineData(null, (byte)3, false, (ushort)536)]
    public void A_cookie_must_come_back_valid_with_the_options_of_its_SYN(ushort? mss, byte? windowScale, bool sackPermitted, ushort expectedMss)
    {
        var syn = Syn(ClientIsn, new TcpOptions { MaxSegmentSize = mss, WindowScale = windowScale, SackPermitted = sackPermitted });
        var cookie = _cookies.Issue(IssuedAt, Cid, syn);

        Assert.True(_cookies.TryValidate(IssuedAt + TimeSpan.FromMilliseconds(1), Cid, Ack(ClientIsn, cookie), out var options));

        Assert.Equal(expectedMss, options.MaxSegmentSize);
        Assert.Equal(windowScale is { } shift ? Math.Min(shift, (byte)14) : null, options.WindowScale);
        Assert.Equal(sackPermitted, options.SackPermitted);
    }

    [Fact]
    public void SipHash_must_give_the_reference_outputs()
    {
        // The paper's worked example (appendix A) and the first of its reference vectors: key 00..0f, message 00..(n-1).
        var key = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        Assert.Equal(0xa129ca6149be45e5UL, SipHash.Hash(key, Enumerable.Range(0, 15).Select(i => (byte)i).ToArray()));
        Assert.Equal(0x726fdb47dd0e0e31UL, SipHash.Hash(key, []));
    }

    [Fact]
    public void A_cookie_must_verify_in_its_period_and_the_next_one_and_never_after()
    {
        var cookie = _cookies.Issue(IssuedAt, Cid, Syn(ClientIsn, default));
        var ack = Ack(ClientIsn, cookie);
        var periodStart = new Instant(IssuedAt.Microseconds / (long)Period.TotalMicroseconds * (long)Period.TotalMicroseconds);

        Assert.True(_cookies.TryValidate(periodStart + Period - TimeSpan.FromMilliseconds(1), Cid, ack, out _));
        Assert.True(_cookies.TryValidate(periodStart + Period + Period - TimeSpan.FromMilliseconds(1), Cid, ack, out _));
        Assert.False(_cookies.TryValidate(periodStart + Period + Period, Cid, ack, out _));
        Assert.False(_cookies.TryValidate(periodStart + (4 * Period), Cid, ack, out _));
        Assert.False(_cookies.TryValidate(periodStart - TimeSpan.FromMilliseconds(1), Cid, ack, out _));
    }

    [Fact]
    public void A_cookie_must_be_refused_on_another_4_tuple()
    {
        var cookie = _cookies.Issue(IssuedAt, Cid, Syn(ClientIsn, default));
        var ack = Ack(ClientIsn, cookie);

        Assert.False(_cookies.TryValidate(IssuedAt, Cid with { ClientPort = 40001 }, ack, out _));
        Assert.False(_cookies.TryValidate(IssuedAt, Cid with { ClientAddress = IpAddress.Parse("10.0.0.2") }, ack, out _));
        Assert.False(_cookies.TryValidate(IssuedAt, Cid with { ServerPort = 81 }, ack, out _));
        Assert.False(_cookies.TryValidate(IssuedAt, Cid with { ServerAddress = IpAddress.Parse("10.0.0.12") }, ack, out _));
    }

    [Fact]
    public void A_cookie_must_be_refused_with_another_client_ISN_or_another_node_secret()
    {
        var cookie = _cookies.Issue(IssuedAt, Cid, Syn(ClientIsn, default));

        Assert.False(_cookies.TryValidate(IssuedAt, Cid, Ack(ClientIsn + 1, cookie), out _));
        Assert.False(_cookies.TryValidate(IssuedAt, Cid, Ack(ClientIsn - 1, cookie), out _));
        var other = new SynCookies(new byte[SynCookies.SecretLength], Period);
        Assert.False(other.TryValidate(IssuedAt, Cid, Ack(ClientIsn, cookie), out _));
    }

    [Fact]
    public void Forged_cookies_must_be_refused_whichever_bit_is_changed_and_guesses_must_fail_at_the_MAC_rate()
    {
        var cookie = _cookies.Issue(IssuedAt, Cid, Syn(ClientIsn, new TcpOptions { MaxSegmentSize = 1460, WindowScale = 7 }));
        for (var bit = 0; bit < 32; bit++)
        {
            var forged = new SeqNumber(cookie.Value ^ (1u << bit));
            Assert.False(_cookies.TryValidate(IssuedAt, Cid, Ack(ClientIsn, forged), out _), $"bit {bit}");
        }

        // A blind attacker guesses: 2^23 possible MACs per option value, so 100,000 guesses should hit about 0.012 times.
        var random = new Random(7);
        var accepted = 0;
        for (var i = 0; i < 100_000; i++)
        {
            accepted += _cookies.TryValidate(IssuedAt, Cid, Ack(ClientIsn, new SeqNumber((uint)random.NextInt64(0, 1L << 32))), out _) ? 1 : 0;
        }

        Assert.InRange(accepted, 0, 1);
    }

    [Fact]
    public void Only_a_bare_ACK_may_return_a_cookie()
    {
        var cookie = _cookies.Issue(IssuedAt, Cid, Syn(ClientIsn, default));
        var ack = Ack(ClientIsn, cookie);

        Assert.False(_cookies.TryValidate(IssuedAt, Cid, ack with { Flags = TcpFlags.Ack | TcpFlags.Rst }, out _));
        Assert.False(_cookies.TryValidate(IssuedAt, Cid, ack with { Flags = TcpFlags.Ack | TcpFlags.Syn }, out _));
        Assert.False(_cookies.TryValidate(IssuedAt, Cid, ack with { Flags = TcpFlags.Psh }, out _));
        Assert.True(_cookies.TryValidate(IssuedAt, Cid, ack with { Flags = TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Fin }, out _));
    }

    [Fact]
    public void A_connection_created_from_a_cookie_must_negotiate_as_from_its_SYN_and_carry_data_both_ways()
    {
        var config = TcpConfig.Default with { MaxSegmentSize = 1400, WindowScaleShift = 5 };
        var now = IssuedAt;
        var client = TcpConnection.Connect(config with { MaxSegmentSize = 1452, WindowScaleShift = 3 }, Cid.ClientPort, Cid.ServerPort, ClientIsn, now);
        Assert.True(client.PollTransmit(now, Span<byte>.Empty, out var syn, out _));

        var synAck = SynCookies.SynAck(config, syn, _cookies.Issue(now, Cid, syn));
        Assert.Equal((byte)5, synAck.Options.WindowScale);
        Assert.Equal((ushort)1400, synAck.Options.MaxSegmentSize);
        client.HandleSegment(now, synAck, default);
        Assert.Equal(TcpState.Established, client.State);
        Assert.True(client.PollTransmit(now, Span<byte>.Empty, out var ack, out _));

        Assert.True(_cookies.TryValidate(now, Cid, ack, out var options));
        var server = TcpConnection.Listen(config, Cid.ServerPort, ack.AcknowledgmentNumber - 1);
        server.AcceptCookieSyn(now, SynCookies.SynOf(ack, options));
        Assert.Equal(TcpState.SynReceived, server.State);
        Assert.False(server.PollTransmit(now, new byte[2000], out _, out _));
        server.HandleSegment(now, ack, default);

        Assert.Equal(TcpState.Established, server.State);
        Assert.Equal(1400, server.SendMss);
        Assert.Equal(3, server.SendWindowShift);
        Assert.Equal(5, server.ReceiveWindowShift);
        Assert.Equal(5, client.SendWindowShift);

        // RFC 2018 §2: both SYNs carried SACK-permitted, so both ends agree on SACK.
        Assert.True(synAck.Options.SackPermitted);
        Assert.True(client.SackAgreed);
        Assert.True(server.SackAgreed);

        client.Write("hello through a cookie"u8);
        server.Write("and back"u8);
        var received = Exchange(now, client, server);
        Assert.Equal("hello through a cookie", System.Text.Encoding.ASCII.GetString(Read(server)));
        Assert.Equal("and back", System.Text.Encoding.ASCII.GetString(Read(client)));
        Assert.True(received > 0);
    }

    [Fact]
    public void A_cookie_SYN_ACK_must_not_offer_SACK_when_it_is_off_here_and_neither_end_may_then_use_it()
    {
        var config = TcpConfig.Default with { SelectiveAcknowledgment = false };
        var now = IssuedAt;
        var client = TcpConnection.Connect(TcpConfig.Default, Cid.ClientPort, Cid.ServerPort, ClientIsn, now);
        Assert.True(client.PollTransmit(now, Span<byte>.Empty, out var syn, out _));
        Assert.True(syn.Options.SackPermitted);

        var synAck = SynCookies.SynAck(config, syn, _cookies.Issue(now, Cid, syn));
        client.HandleSegment(now, synAck, default);
        Assert.True(client.PollTransmit(now, Span<byte>.Empty, out var ack, out _));
        Assert.True(_cookies.TryValidate(now, Cid, ack, out var options));
        var server = TcpConnection.Listen(config, Cid.ServerPort, ack.AcknowledgmentNumber - 1);
        server.AcceptCookieSyn(now, SynCookies.SynOf(ack, options));
        server.HandleSegment(now, ack, default);

        Assert.False(synAck.Options.SackPermitted);
        Assert.False(client.SackAgreed);
        Assert.False(server.SackAgreed);
    }

    [Fact]
    public void The_stateless_SYN_ACK_must_carry_the_migration_secret_the_endpoint_created_from_the_cookie_derives()
    {
        var authenticator = MigrationAuthenticator.FromKey(MigrationTestbed.ClusterKeyBytes);
        var config = TcpConfig.Default with { RetainReadLog = true };
        var syn = Syn(ClientIsn, new TcpOptions { MaxSegmentSize = 1460, WindowScale = 7 });
        var alternates = new[] { MigrationTestbed.EndpointOf(1), MigrationTestbed.EndpointOf(2) };

        var synAck = StatelessHandshake.SynAck(_cookies, config, IssuedAt, Cid, syn, authenticator, alternates);

        Assert.NotNull(synAck.Options.MigrationSecret);
        var endpoint = new MtcpServerEndpoint<IpAddress>(config, Cid, synAck.SequenceNumber, authenticator, () => alternates);
        var ack = Ack(ClientIsn, synAck.SequenceNumber);
        Assert.True(_cookies.TryValidate(IssuedAt, Cid, ack, out var options));
        endpoint.AcceptCookie(IssuedAt, SynCookies.SynOf(ack, options));
        endpoint.HandleSegment(IssuedAt, ack, default);
        Assert.True(endpoint.PollEndpointEvent(out var accepted));
        Assert.IsType<ServerEndpointEvent.Accepted>(accepted);
        authenticator.IssueCredential(Cid, ClientIsn, synAck.SequenceNumber, out var expected);
        var carried = new byte[MigrationSecret.Length];
        synAck.Options.MigrationSecret!.Value.WriteTo(carried);
        Assert.Equal(expected, MigrationSecret.FromBytes(carried));
        Assert.True(endpoint.TryDeriveTriggerKey(out var triggerKey));
        Assert.Equal(new ConnectionAuthenticator(expected).DeriveTriggerKey(Cid, 0), triggerKey);
    }

    [Theory]
    [InlineData(ReferenceService.Stream)]
    [InlineData(ReferenceService.File)]
    public void A_connection_opened_with_a_cookie_must_migrate_as_any_other_and_deliver_every_byte(ReferenceService service)
    {
        var bed = new MigrationTestbed(11, LinkConditions.Perfect, new TestbedOptions { Service = service, SynCookies = true, SessionBytes = 512 * 1024 });
        Assert.True(bed.RunUntil(() => bed.ClientApp.Received >= 16 * 1024, TimeSpan.FromMinutes(5)), bed.Describe());
        Assert.Equal(1, bed.Servers[0].Host.Stats.SynCookiesSent);
        Assert.Equal(1, bed.Servers[0].Host.Stats.SynCookiesValidated);

        // The client holds off reading through both hops, each taken with its window full, as the scenario tests do.
        bed.ClientApp.Paused = true;
        var window = bed.Options.Tcp.ReceiveBufferSize;
        foreach (var (destination, hop) in new[] { (1, 1), (2, 2) })
        {
            Assert.True(bed.RunUntil(() => bed.Connection.CurrentControlBlock.BytesReadable > window - bed.Options.Tcp.MaxSegmentSize, TimeSpan.FromMinutes(5)), bed.Describe());
            Assert.True(bed.Migrate(destination), bed.Describe());
            Assert.True(bed.RunUntil(() => bed.Connection.Stats.MigrationsCompleted == hop, TimeSpan.FromMinutes(5)), bed.Describe());
        }

        bed.ClientApp.Paused = false;
        Assert.True(bed.RunToFinish(TimeSpan.FromMinutes(30)), bed.Describe());

        Assert.True(2 == bed.Connection.Stats.MigrationsCompleted, bed.Describe());
        Assert.True(bed.ClientApp.ReceivedAll, bed.Describe());
        Assert.Equal(-1, bed.ClientApp.FirstMismatch);
        Assert.Equal(0, bed.Servers[1].Host.Stats.SynCookiesSent + bed.Servers[2].Host.Stats.SynCookiesSent);
    }

    private static TcpSegmentRepr Syn(SeqNumber isn, TcpOptions options) => new()
    {
        SourcePort = Cid.ClientPort,
        DestinationPort = Cid.ServerPort,
        SequenceNumber = isn,
        Flags = TcpFlags.Syn,
        Window = 65535,
        Options = options,
    };

    private static TcpSegmentRepr Ack(SeqNumber clientIsn, SeqNumber cookie) => new()
    {
        SourcePort = Cid.ClientPort,
        DestinationPort = Cid.ServerPort,
        SequenceNumber = clientIsn + 1,
        AcknowledgmentNumber = cookie + 1,
        Flags = TcpFlags.Ack,
        Window = 1024,
    };

    private static int Exchange(Instant now, TcpConnection a, TcpConnection b)
    {
        var buffer = new byte[2000];
        var delivered = 0;
        for (var round = 0; round < 20; round++)
        {
            var moved = false;
            foreach (var (from, to) in new[] { (a, b), (b, a) })
            {
                while (from.PollTransmit(now, buffer, out var header, out var length))
                {
                    to.HandleSegment(now, header, buffer.AsSpan(0, length));
                    delivered += length;
                    moved = true;
                }
            }

            if (!moved)
            {
                break;
            }
        }

        return delivered;
    }

    private static byte[] Read(TcpConnection connection)
    {
        var buffer = new byte[connection.BytesReadable];
        Assert.Equal(buffer.Length, connection.Read(buffer));
        return buffer;
    }
}
