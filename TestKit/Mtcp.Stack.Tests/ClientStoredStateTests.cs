using System.Buffers.Binary;
using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests;

/// <summary>
/// Client-stored state (<c>replication = client</c>), sans-IO: the serving endpoint seals its state for the client
/// (<see cref="ClientStateSealer"/>), the client keeps the newest, and after its server dies presents it on the special
/// SYN of its failover to another node, which resumes from it (<see cref="ClientStateOpener"/>) exactly as from a
/// buddy's replica. Segments are handed across by hand, payloads included.
/// </summary>
[Trait("Category", "Stack")]
public sealed class ClientStoredStateTests
{
    internal const int MaxBlob = 60_000;

    private static readonly TcpConfig Config = TcpConfig.Default with { RetainReadLog = true, DelayedAckTimeout = TimeSpan.Zero };
    private static readonly ClientFailover Failover = new()
    {
        ProbeInterval = TimeSpan.FromSeconds(2),
        SilentAfter = 3,
        SpecialSynTimeout = TimeSpan.FromSeconds(1),
        GiveUpAfter = TimeSpan.FromSeconds(5),
    };

    private readonly byte[] _payload = new byte[64 * 1024];
    private Instant _now = Instant.FromMilliseconds(1_000);

    [Fact]
    public void A_sealed_state_must_open_for_its_connection_to_the_state_reply_it_was_sealed_from()
    {
        var state = SampleState();

        var blob = ClientStateSealing.Seal(Authenticator(), Cid, 3, new SeqNumber(1234), state, Nonce(1));

        Assert.True(ClientStateBlob.TryReadHeader(blob, out var header));
        Assert.Equal(3ul, header.Sequence);
        Assert.Equal(new SeqNumber(1234), header.Covers);
        Assert.True(ClientStateSealing.TryOpen(Authenticator(), blob, Cid, MaxBlob, out _, out var opened, out _));
        Assert.Equal(state, opened);

        // Nothing of the state shows through: the application's snapshot is not in the blob's bytes.
        Assert.False(blob.AsSpan().IndexOf(state.AppState.Span) >= 0);
    }

    [Fact]
    public void A_client_must_resume_byte_exact_on_another_node_from_the_state_it_holds_after_its_server_died()
    {
        var authenticator = Authenticator();
        var origin = new MtcpServerEndpoint<string>(Config, Cid, ServerIsn, authenticator, () => [S2], plan: null);
        var client = MtcpClientConnection.Connect(Config, Client, Cid.ClientPort, S1, ClientIsn, _now);
        client.Failover = Failover;
        var nonces = 0;
        var sealer = new ClientStateSealer(Cid, MaxBlob, nonce => Nonce(++nonces).CopyTo(nonce));
        Pump(client, origin, sealer, authenticator);
        Assert.Equal(ServerEndpointPhase.Established, origin.Phase);

        // The application reads 1000 of the client's bytes, writes 5000 and exports its state; then writes 3000 more.
        client.Write(MigrationSnapshotTests.Pattern(1, 0, 3_000));
        Pump(client, origin, sealer, authenticator);
        Assert.Equal(1_000, origin.Connection.Read(new byte[1_000]));
        origin.Connection.Write(MigrationSnapshotTests.Pattern(2, 0, 5_000));
        origin.Connection.ExportState(SnapshotOf(inputRead: 1_000, outputWritten: 5_000));
        origin.Connection.Write(MigrationSnapshotTests.Pattern(2, 5_000, 3_000));
        Pump(client, origin, sealer, authenticator);

        // More of the client's bytes arrive after the snapshot: a newer state covers them before they are acknowledged.
        client.Write(MigrationSnapshotTests.Pattern(1, 3_000, 2_000));
        Pump(client, origin, sealer, authenticator);
        Assert.Equal(client.CurrentControlBlock.SendUnacknowledged, client.HeldClientState!.Value.Covers);
        Assert.True(sealer.Sealed >= 2, $"{sealer.Sealed} states sealed");
        var received = new List<byte>(Read(client));
        Assert.Equal(MigrationSnapshotTests.Pattern(2, 0, 8_000), received.ToArray());

        // The origin dies: the client hears nothing and fails over to S2, presenting its state on the special SYN.
        client.Write(MigrationSnapshotTests.Pattern(1, 5_000, 500));
        var specialSyn = FailOver(client, S2, out var blob);
        Assert.True(specialSyn.Options.ClientState);
        Assert.Equal(1, client.Stats.ClientStatesPresented);

        var newCid = new ConnectionId(Client, specialSyn.SourcePort, S2.Address, S2.Port);
        var plan = StateRequestPlan.For(9, specialSyn.Options.MigratedConnection!.Value, newCid, S2, _now, deadline: null);
        var opener = new ClientStateOpener(MaxBlob);
        var reply = opener.Answer(plan.Request!, blob, authenticator, out var refusal);
        Assert.True(reply is not null, $"refused: {refusal}");
        var destination = new MtcpServerEndpoint<string>(Config, newCid, ServerIsn + 90_000, authenticator, () => [S1], plan);
        destination.HandleSegment(_now, specialSyn, blob);
        destination.HandleStateReply(_now, "nobody", reply);
        Pump(client, destination, sealer: null, authenticator);
        Assert.Equal(S2, client.CurrentServer);
        Assert.Equal(1, client.Stats.Failovers);

        // The application resumes from its snapshot: it reads every client byte since, once, and writes its output again
        // from there; the client discards what it already has.
        var imported = destination.ImportState();
        Assert.Equal(ConnectionOrigin.Migrated, imported.Origin);
        var (inputRead, outputWritten) = Decode(imported.AppState.Span);
        Assert.Equal((1_000, 5_000), (inputRead, outputWritten));
        destination.Connection.Write(MigrationSnapshotTests.Pattern(2, outputWritten, 6_000));
        client.Write(MigrationSnapshotTests.Pattern(1, 5_500, 500));
        Pump(client, destination, sealer: null, authenticator);

        var input = new byte[10_000];
        var read = destination.Connection.Read(input);
        Assert.Equal(MigrationSnapshotTests.Pattern(1, inputRead, 5_000), input.AsSpan(0, read).ToArray());
        received.AddRange(Read(client));
        Assert.Equal(MigrationSnapshotTests.Pattern(2, 0, 11_000), received.ToArray());
    }

    [Fact]
    public void A_state_too_large_for_the_configured_maximum_must_not_be_sealed_and_the_client_keeps_the_one_it_holds()
    {
        var authenticator = Authenticator();
        var origin = new MtcpServerEndpoint<string>(Config, Cid, ServerIsn, authenticator, () => [S2], plan: null);
        var client = MtcpClientConnection.Connect(Config, Client, Cid.ClientPort, S1, ClientIsn, _now);
        var sealer = new ClientStateSealer(Cid, maxLength: 2_000, nonce => nonce.Fill(5));
        Pump(client, origin, sealer, authenticator);
        var held = client.HeldClientState;
        Assert.NotNull(held);

        origin.Connection.ExportState(new byte[4_000]);
        Assert.Equal(ClientStateOutcome.TooLarge, sealer.Update(origin.Connection, origin.CredentialBytes.Span, authenticator, out var blob, out var length));
        Assert.Null(blob);
        Assert.True(length > 4_000);
        Assert.Equal(ClientStateOutcome.Unchanged, sealer.Update(origin.Connection, origin.CredentialBytes.Span, authenticator, out _, out _));
        Pump(client, origin, sealer, authenticator);
        Assert.Equal(held, client.HeldClientState);
    }

    [Fact]
    public void A_failover_to_a_node_on_another_IPv6_64_must_go_without_the_state_it_has_no_room_for_and_say_why()
    {
        // TCP_MIGRATED_CONN names an IPv6 origin on another /64 than the destination whole: 36 option bytes, so the
        // client-state flag (5) cannot ride beside it. The special SYN still goes out, within 40 bytes and without the
        // state, and the client reports the state unusable for this attempt (a buddy's replica may still serve).
        var client6 = IpAddress.Parse("2001:db8:c::1");
        var s1 = new ServerEndpoint(IpAddress.Parse("2001:db8:1::11"), 443);
        var s2 = new ServerEndpoint(IpAddress.Parse("2001:db8:2::12"), 443);
        var cid = new ConnectionId(client6, 40000, s1.Address, s1.Port);
        var authenticator = Authenticator();
        var origin = new MtcpServerEndpoint<string>(Config, cid, ServerIsn, authenticator, () => [s2], plan: null);
        var client = MtcpClientConnection.Connect(Config, client6, cid.ClientPort, s1, ClientIsn, _now);
        client.Failover = Failover;
        var nonces = 0;
        var sealer = new ClientStateSealer(cid, MaxBlob, nonce => Nonce(++nonces).CopyTo(nonce));
        Pump(client, origin, sealer, authenticator);
        origin.Connection.Write(MigrationSnapshotTests.Pattern(2, 0, 2_000));
        origin.Connection.ExportState(SnapshotOf(inputRead: 0, outputWritten: 2_000));
        Pump(client, origin, sealer, authenticator);
        Assert.NotNull(client.HeldClientState);

        var events = new List<MigrationEvent>();
        var specialSyn = FailOver(client, s2, out var payload, events);

        Assert.False(specialSyn.Options.ClientState);
        Assert.Empty(payload);
        Assert.True(specialSyn.Options.BufferLength <= TcpSegment.MaxOptionsLength, $"{specialSyn.Options.BufferLength} option bytes");
        Assert.Equal(36, specialSyn.Options.MigratedConnection!.Value.BufferLength);
        Assert.Equal(s1, specialSyn.Options.MigratedConnection!.Value.OriginOn(s2.Address));
        Assert.Equal(0, client.Stats.ClientStatesPresented);
        Assert.Equal(1, client.Stats.ClientStatesUnusable);
        Assert.Contains(events, e => e.Kind == MigrationEventKind.ClientStateUnusable && e.Detail.Contains("no room", StringComparison.Ordinal));
    }

    internal static StateReply SampleState() =>
        new(
            0,
            Cid,
            new SeqNumber(1234),
            0,
            new SeqNumber(99),
            new TcpSnapshot(TcpStateCode.Established, default, 1460, 0, 0),
            new SocketSnapshot(default, default, 0),
            "the application's secret snapshot"u8.ToArray(),
            MigrationSnapshotTests.Pattern(3, 0, 100),
            MigrationSnapshotTests.Pattern(4, 0, 50),
            [],
            new ConnectionCredential(Cid, new MigrationCredential(0, ClientIsn, ServerIsn, 0, 0)).ToBytes());

    internal static byte[] Nonce(int seed)
    {
        var nonce = new byte[ClientStateBlob.NonceLength];
        BinaryPrimitives.WriteInt32BigEndian(nonce, seed);
        return nonce;
    }

    private static byte[] SnapshotOf(int inputRead, int outputWritten)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(bytes, inputRead);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), outputWritten);
        return bytes;
    }

    private static (int InputRead, int OutputWritten) Decode(ReadOnlySpan<byte> snapshot) =>
        (BinaryPrimitives.ReadInt32BigEndian(snapshot), BinaryPrimitives.ReadInt32BigEndian(snapshot[4..]));

    private static byte[] Read(MtcpClientConnection client)
    {
        var buffer = new byte[1 << 20];
        var read = client.Read(buffer);
        return buffer.AsSpan(0, read).ToArray();
    }

    /// <summary>
    /// Time passes with nothing from the server until the client's failover starts a migration to
    /// <paramref name="destination"/>: returns its special SYN and the payload it carries, and adds the migration events
    /// it consumed on the way to <paramref name="events"/>.
    /// </summary>
    private TcpSegmentRepr FailOver(MtcpClientConnection client, ServerEndpoint destination, out byte[] payload, List<MigrationEvent>? events = null)
    {
        for (var step = 0; step < 1_000; step++)
        {
            while (client.PollTransmit(_now, _payload, out var to, out var header, out var length))
            {
                if (to == destination && header.Has(TcpFlags.Syn))
                {
                    payload = _payload.AsSpan(0, length).ToArray();
                    return header;
                }
            }

            while (client.PollMigrationEvent(out var e))
            {
                events?.Add(e);
                if (e.Kind == MigrationEventKind.FailoverTo)
                {
                    client.BeginMigration(_now, e.Destination, new SeqNumber(77_000));
                }
            }

            if (client.IsMigrating)
            {
                continue;
            }

            _now = client.PollTimeout() ?? throw new InvalidOperationException("the client has no timer");
            client.HandleTimeout(_now);
        }

        throw new InvalidOperationException("no failover");
    }

    /// <summary>Hands segments, payloads included, both ways until neither side has any; the sealer's states go first.</summary>
    private void Pump(MtcpClientConnection client, MtcpServerEndpoint<string> server, ClientStateSealer? sealer, IMigrationAuthenticator authenticator)
    {
        for (var round = 0; round < 1_000; round++)
        {
            var any = false;
            while (client.PollTransmit(_now, _payload, out var to, out var header, out var length))
            {
                any = true;
                if (to == server.Service)
                {
                    server.HandleSegment(_now, header, _payload.AsSpan(0, length));
                }
            }

            if (sealer is not null && server.Phase == ServerEndpointPhase.Established
                && sealer.Update(server.Connection, server.CredentialBytes.Span, authenticator, out var blob, out _) == ClientStateOutcome.Sealed)
            {
                client.HandleSegment(_now, server.Service, ClientStateSealer.Segment(server.Cid, server.Connection), blob);
            }

            while (server.PollTransmit(_now, _payload, out _, out var header, out var length))
            {
                any = true;
                client.HandleSegment(_now, server.Service, header, _payload.AsSpan(0, length));
            }

            while (server.PollEndpointEvent(out _))
            {
            }

            if (!any)
            {
                return;
            }
        }

        throw new InvalidOperationException("the exchange did not settle");
    }
}
