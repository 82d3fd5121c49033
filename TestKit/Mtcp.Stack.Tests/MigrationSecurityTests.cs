using Mtcp.Stack.Migration;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.TestKit;
using Mtcp.Wire;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>
/// The threat model's promises (docs/threat-model.md), on the multi-host simulator with the per-connection-secret
/// scheme: an off-path attacker who knows the 4-tuple but never saw the origin's SYN+ACK cannot move, reset or
/// hijack the connection; captured messages do not work twice; keys rotate without breaking live connections.
/// </summary>
[Trait("Category", "Migration")]
public sealed class MigrationSecurityTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(30);
    private static readonly ServerEndpoint S1 = MigrationTestbed.EndpointOf(0);
    private static readonly ServerEndpoint S2 = MigrationTestbed.EndpointOf(1);
    private static readonly ServerEndpoint S3 = MigrationTestbed.EndpointOf(2);

    [Fact]
    public void Special_SYNs_forged_under_a_guessed_secret_for_every_attempt_number_must_fail_and_leave_the_connection_untouched()
    {
        // The attacker knows the 4-tuple and rcv_nxt, and the MAC construction; not the secret.
        var bed = new MigrationTestbed(101, LinkConditions.Perfect, new TestbedOptions());
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var cid = bed.Connection.Cid;
        var rcvNxt = bed.Connection.CurrentControlBlock.ReceiveDataNext;
        var guess = new ConnectionAuthenticator(MigrationSecret.FromBytes("sixteen byte key"u8));
        const uint Attempts = MigrationAuthenticatorOptions.DefaultAttemptWindow;
        for (var attempt = 0u; attempt < Attempts; attempt++)
        {
            var port = (ushort)(61000 + attempt);
            var newCid = new ConnectionId(cid.ClientAddress, port, S2.Address, S2.Port);
            InjectSpecialSyn(bed, S2, port, cid, rcvNxt, guess.MigratedConnection(cid, newCid, rcvNxt, attempt));
        }

        Run(bed, () => bed.Servers[1].Host.Stats.MigrationsRefused == Attempts);

        Assert.All(Rejects(bed), r => Assert.Equal(StateRejectReason.AuthFailed, r.Reason));
        Assert.Empty(Replies(bed));
        Finish(bed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
        Assert.Equal(0, bed.Connection.Stats.MigrationsFailed);
        Assert.Equal(0, bed.Servers[0].Host.Stats.MigrationsOut);
    }

    [Fact]
    public void A_forged_special_SYN_from_the_connections_own_port_must_neither_move_nor_reset_it()
    {
        // The refusal's RST goes to the client's current 4-tuple but from S2: it matches no control block of the client.
        var bed = new MigrationTestbed(102, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var cid = bed.Connection.Cid;
        InjectSpecialSyn(bed, S2, cid.ClientPort, cid, bed.Connection.CurrentControlBlock.ReceiveDataNext, 0x0123456789ABCDEF);

        Run(bed, () => bed.Servers[1].Host.Stats.MigrationsRefused == 1);

        Assert.Equal(StateRejectReason.AuthFailed, Rejects(bed).Single().Reason);
        Finish(bed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
        Assert.Equal(0, bed.Connection.Stats.MigrationsStarted);
    }

    [Fact]
    public void The_secret_must_ride_only_on_the_origins_SYN_ACK_and_the_alternates_it_displaced_must_follow_the_handshake()
    {
        // The one segment an off-path attacker never sees; a migrated endpoint's SYN+ACK does not repeat it.
        var bed = new MigrationTestbed(103, LinkConditions.Perfect, new TestbedOptions());
        var carriers = new List<SimPacket>();
        bed.Network.OnDeliver = (_, p) =>
        {
            if (p.Header.Options.MigrationSecret is not null)
            {
                carriers.Add(p);
            }
        };
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Connection.CanMigrate);
        Assert.Equal([S2, S3], bed.Connection.AlternateServers);
        Assert.True(bed.Migrate(1));

        Finish(bed);

        var carrier = Assert.Single(carriers);
        Assert.Equal(S1.Address, carrier.Source);
        Assert.True(carrier.Header.Has(TcpFlags.Syn | TcpFlags.Ack));
        Assert.True((carrier.Header.Options.AlternateServers?.Servers.Count() ?? 0) < 2, "the SYN+ACK had room for both alternates: the fallback went untested");
        Assert.Equal(S2, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_blind_SYN_ACK_planting_a_secret_and_alternates_must_be_ignored()
    {
        // The attacker races the origin's SYN+ACK without knowing the client's ISN: TCP refuses the segment, and the
        // secret and alternates on it must not be taken, or the attacker could then migrate the connection itself.
        var bed = new MigrationTestbed(112, LinkConditions.Perfect, new TestbedOptions());
        var planted = "attacker's secrt"u8.ToArray();
        var attackerServer = new ServerEndpoint(IpAddress.Parse("10.0.0.66"), 80);
        var cid = bed.Connection.Cid;
        bed.Network.Inject(new SimPacket(S1.Address, cid.ClientAddress, new TcpSegmentRepr
        {
            SourcePort = S1.Port,
            DestinationPort = cid.ClientPort,
            SequenceNumber = new SeqNumber(777),
            AcknowledgmentNumber = new SeqNumber(12345),
            Flags = TcpFlags.Syn | TcpFlags.Ack,
            Window = 65535,
            Options = new TcpOptions().WithMigrationSecret(MtcpMigrationSecret.FromBytes(planted), [attackerServer], out _),
        }, ReadOnlyMemory<byte>.Empty));
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.DoesNotContain(attackerServer, bed.Connection.AlternateServers);

        var rcvNxt = bed.Connection.CurrentControlBlock.ReceiveDataNext;
        var attacker = new ConnectionAuthenticator(MigrationSecret.FromBytes(planted));
        var newCid = new ConnectionId(cid.ClientAddress, 61000, S2.Address, S2.Port);
        InjectSpecialSyn(bed, S2, 61000, cid, rcvNxt, attacker.MigratedConnection(cid, newCid, rcvNxt, attempt: 0));
        Run(bed, () => bed.Servers[1].Host.Stats.MigrationsRefused == 1);
        Assert.Equal(StateRejectReason.AuthFailed, Rejects(bed).Single().Reason);

        Assert.True(bed.Migrate(1));
        Finish(bed);
        Assert.Equal(S2, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_forged_state_ack_on_the_control_connection_must_be_dropped_and_leave_the_connection_live()
    {
        // A state ack makes the holder close the connection silently: forged (no cluster key) or moved to another
        // server pair's association, it must not open.
        var bed = new MigrationTestbed(113, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var ack = new StateAck(requestId: 1, bed.Connection.Cid);
        var attacker = MigrationAuthenticator.FromKey("not the cluster key, 32 bytes!!!"u8);
        var forged = ControlMessageSealing.Seal(attacker, ack, ControlChannel.Identity(S2.Address), ControlChannel.Identity(S1.Address));
        var capturedFromS2 = ControlMessageSealing.Seal(bed.Authenticator, ack, ControlChannel.Identity(S2.Address), ControlChannel.Identity(S1.Address));

        bed.Control.Inject(bed.Network.Now, S2.Address, S1.Address, forged);
        bed.Control.Inject(bed.Network.Now, S3.Address, S1.Address, capturedFromS2);
        Run(bed, () => bed.Control.Rejected.Count == 2);

        Assert.Equal([ControlOpenResult.BadMac, ControlOpenResult.WrongPeer], bed.Control.Rejected.Select(r => r.Result));
        Finish(bed);
        Assert.Equal(0, bed.Servers[0].Host.Stats.MigrationsOut);
        Assert.False(bed.Servers[0].Sessions.Single().Emigrated);
    }

    [Fact]
    public void A_special_SYN_replayed_after_its_attempt_was_spent_must_be_rejected_as_a_replay_and_change_nothing()
    {
        // Attempt 0 is accepted by S1 (and spent) but its state reply never reaches S2: the migration fails.
        var bed = new MigrationTestbed(104, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, SessionBytes = 128 * 1024 });
        var captured = CaptureSpecialSyns(bed);
        bed.Control.Withheld.Add(ControlMessageType.StateReply);
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Migrate(1));
        Run(bed, () => bed.Connection.Stats.MigrationsFailed == 1);
        bed.Control.Withheld.Clear();

        // The client retransmitted its special SYN while S2 waited; every copy is the same attempt.
        Assert.All(captured, c => Assert.Equal(captured[0].Header.Options.MigratedConnection, c.Header.Options.MigratedConnection));
        bed.Network.Inject(captured[0]);
        Run(bed, () => bed.Servers[1].Host.Stats.MigrationsRefused == 2);

        Assert.Equal(1, bed.Servers[0].Host.Stats.ReplayedStateRequestsRejected);
        Assert.Equal(StateRejectReason.AuthFailed, Rejects(bed).Single().Reason);
        Assert.Equal(S1, bed.Connection.CurrentServer);

        // The genuine client's next attempt (number 1) still works.
        Assert.True(bed.Migrate(2));
        Finish(bed);
        Assert.Equal(S3, bed.Connection.CurrentServer);
        Assert.Equal(1, bed.Connection.Stats.MigrationsCompleted);
    }

    [Fact]
    public void A_special_SYN_captured_from_a_completed_migration_and_replayed_later_must_change_nothing()
    {
        var bed = new MigrationTestbed(105, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, SessionBytes = 128 * 1024 });
        var captured = CaptureSpecialSyns(bed);
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Migrate(1));
        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1 && bed.ClientApp.Received >= 32 * 1024);
        var requestsBefore = bed.Servers[1].Host.Stats.StateRequestsSent;

        // To S2, where the 4-tuple is live: a duplicate SYN; to S3 from the same 4-tuple: S1 no longer holds the Cid.
        var syn = captured.Single();
        bed.Network.Inject(syn);
        bed.Network.Inject(syn with { Destination = S3.Address });
        Run(bed, () => bed.Servers[2].Host.Stats.MigrationsRefused == 1);

        Assert.Equal(requestsBefore, bed.Servers[1].Host.Stats.StateRequestsSent);
        Assert.Equal(1, bed.Servers[1].Host.Stats.DuplicateSpecialSyns);
        Assert.Equal(StateRejectReason.CbNotFound, Rejects(bed).Single().Reason);
        Finish(bed);
        Assert.Equal(S2, bed.Connection.CurrentServer);
        Assert.Equal(1, bed.Connection.Stats.MigrationsCompleted);
        Assert.Equal(1, bed.Servers[1].Host.Stats.MigrationsIn);
    }

    [Fact]
    public void A_retransmitted_special_SYN_must_be_a_duplicate_and_never_a_second_state_request()
    {
        var bed = new MigrationTestbed(106, LinkConditions.Perfect, new TestbedOptions { ControlLatency = TimeSpan.FromMilliseconds(20) });
        var duplicated = false;
        bed.Network.OnDeliver = (_, p) =>
        {
            if (!duplicated && p.Header.Options.MigratedConnection is not null)
            {
                duplicated = true;
                bed.Network.Inject(p);
            }
        };
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Migrate(1));

        Finish(bed);

        Assert.True(duplicated);
        Assert.Equal(1, bed.Servers[1].Host.Stats.StateRequestsSent);
        Assert.Equal(1, bed.Servers[1].Host.Stats.DuplicateSpecialSyns);
        Assert.Single(Replies(bed));
        Assert.Equal(S2, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_trigger_captured_before_a_migration_and_replayed_after_it_must_be_ignored_and_counted()
    {
        var bed = new MigrationTestbed(107, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.File, SessionBytes = 128 * 1024 });
        var triggers = new List<SimPacket>();
        bed.Network.OnDeliver = (_, p) =>
        {
            if (p.Header.Options.MigrateTrigger is not null)
            {
                triggers.Add(p);
            }
        };
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Servers[0].Host.SendTrigger(bed.Connection.Cid, S2));
        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1);
        Assert.Equal(1u, bed.Connection.MigrationEpoch);

        bed.Network.Inject(triggers.Single());
        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.TriggersAccepted);
        Assert.Equal(1, bed.Connection.Stats.ForgedTriggersIgnored);
        Assert.Equal(S2, bed.Connection.CurrentServer);
    }

    [Fact]
    public void A_trigger_key_issued_to_a_third_party_must_stop_working_after_the_next_migration()
    {
        // The key is bound to the epoch: after the migration the third party needs a new one from the new holder.
        var bed = new MigrationTestbed(108, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.File, SessionBytes = 128 * 1024 });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        Assert.True(bed.Servers[0].Host.TryIssueTriggerKey(bed.Connection.Cid, out var epochZeroKey));
        Assert.True(bed.Migrate(1));
        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1 && bed.Servers[1].Sessions.Count == 1);
        var movedCid = bed.Connection.Cid;

        bed.Servers[2].Host.SendTrigger(movedCid, epochZeroKey);
        Run(bed, () => bed.Connection.Stats.ForgedTriggersIgnored == 1);
        Assert.False(bed.Servers[0].Host.TryIssueTriggerKey(movedCid, out _));
        Assert.True(bed.Servers[1].Host.TryIssueTriggerKey(movedCid, out var epochOneKey));
        bed.Servers[2].Host.SendTrigger(movedCid, epochOneKey);

        Finish(bed);

        Assert.Equal(1, bed.Connection.Stats.ForgedTriggersIgnored);
        Assert.Equal(1, bed.Connection.Stats.TriggersAccepted);
        Assert.Equal(2, bed.Connection.Stats.MigrationsCompleted);
    }

    [Fact]
    public void After_a_key_rotation_mid_session_a_connection_set_up_under_the_previous_key_must_keep_migrating()
    {
        var bed = new MigrationTestbed(109, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, SessionBytes = 128 * 1024 });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var rotated = new MigrationAuthenticator(new MigrationAuthenticatorOptions(new ClusterKey(1, "mtcp-simulated-cluster-key-00002"u8), bed.Authenticator.Options.CurrentKey));
        foreach (var server in bed.Servers)
        {
            server.Host.Authenticator = rotated;
        }

        Assert.True(bed.Migrate(1));
        Run(bed, () => bed.Connection.Stats.MigrationsCompleted == 1 && bed.ClientApp.Received >= 32 * 1024);
        Assert.True(bed.Servers[1].Host.SendTrigger(bed.Connection.Cid, S3));

        Finish(bed);

        Assert.Equal(2, bed.Connection.Stats.MigrationsCompleted);
        Assert.Equal(S3, bed.Connection.CurrentServer);
        Assert.All(Replies(bed), r => Assert.Equal(0, Credential(r).Credential.KeyGeneration));
    }

    [Fact]
    public void A_connection_whose_key_was_rotated_out_twice_must_be_refused_and_stay_where_it_is()
    {
        var bed = new MigrationTestbed(110, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse });
        Run(bed, () => bed.ClientApp.Received >= 8 * 1024);
        var twiceRotated = new MigrationAuthenticator(new MigrationAuthenticatorOptions(
            new ClusterKey(2, "mtcp-simulated-cluster-key-00003"u8), new ClusterKey(1, "mtcp-simulated-cluster-key-00002"u8)));
        foreach (var server in bed.Servers)
        {
            server.Host.Authenticator = twiceRotated;
        }

        Assert.True(bed.Migrate(1));

        Finish(bed);

        Assert.Equal(StateRejectReason.AuthFailed, Rejects(bed).Single().Reason);
        Assert.Equal(1, bed.Connection.Stats.MigrationsFailed);
        Assert.Equal(S1, bed.Connection.CurrentServer);
    }

    [Fact]
    public void Consecutive_migrations_must_carry_the_first_Cid_and_advance_the_epoch_and_attempt_at_every_hop()
    {
        var bed = new MigrationTestbed(111, LinkConditions.Perfect, new TestbedOptions { Service = ReferenceService.RequestResponse, SessionBytes = 256 * 1024 });
        Run(bed, () => bed.ClientApp.Received >= 4 * 1024);
        var firstCid = bed.Connection.Cid;
        int[] route = [1, 2, 0, 1, 2];
        for (var hop = 0; hop < route.Length; hop++)
        {
            var threshold = (hop + 1) * 32 * 1024;
            var accepted = hop + 1;

            // The previous hop's server has accepted the connection (it took β): a state request now finds it ESTABLISHED.
            Run(bed, () => bed.ClientApp.Received >= threshold && bed.Sessions.Count() == accepted);
            Assert.True(bed.Migrate(route[hop]), bed.Describe());
        }

        Finish(bed);

        Assert.Equal(route.Length, bed.Connection.Stats.MigrationsCompleted);
        Assert.Equal((uint)route.Length, bed.Connection.MigrationEpoch);
        var credentials = Replies(bed).Select(Credential).ToArray();
        Assert.Equal(route.Length, credentials.Length);
        for (var hop = 0; hop < credentials.Length; hop++)
        {
            Assert.Equal(firstCid, credentials[hop].SecretCid);
            Assert.Equal((uint)hop, credentials[hop].Credential.Epoch);
            Assert.Equal((uint)hop + 1, credentials[hop].Credential.NextAttempt);
        }
    }

    private static ConnectionCredential Credential(StateReply reply)
    {
        Assert.True(ConnectionCredential.TryRead(reply.MigrationCredential.Span, out var credential));
        return credential;
    }

    private static List<SimPacket> CaptureSpecialSyns(MigrationTestbed bed)
    {
        var captured = new List<SimPacket>();
        bed.Network.OnDeliver = (_, p) =>
        {
            if (p.Header.Options.MigratedConnection is not null && p.Source == bed.Client.Address)
            {
                captured.Add(p);
            }
        };
        return captured;
    }

    private static void InjectSpecialSyn(MigrationTestbed bed, ServerEndpoint destination, ushort sourcePort, ConnectionId cid, SeqNumber rcvNxt, ulong authenticator) =>
        bed.Network.Inject(new SimPacket(bed.Client.Address, destination.Address, new TcpSegmentRepr
        {
            SourcePort = sourcePort,
            DestinationPort = destination.Port,
            SequenceNumber = new SeqNumber(4242),
            Flags = TcpFlags.Syn,
            Window = 65535,
            Options = new TcpOptions { MigratedConnection = new MtcpMigratedConnection(new ServerEndpoint(cid.ServerAddress, cid.ServerPort), sourcePort == cid.ClientPort ? null : cid.ClientPort, rcvNxt, authenticator) },
        }, ReadOnlyMemory<byte>.Empty));

    private static IEnumerable<StateReply> Replies(MigrationTestbed bed) => bed.Control.Delivered.Select(d => d.Message).OfType<StateReply>();

    private static IEnumerable<StateReject> Rejects(MigrationTestbed bed) => bed.Control.Delivered.Select(d => d.Message).OfType<StateReject>();

    private static void Run(MigrationTestbed bed, Func<bool> condition) => Assert.True(bed.RunUntil(condition, Limit), bed.Describe());

    private void Finish(MigrationTestbed bed)
    {
        Assert.True(bed.RunToFinish(Limit), bed.Describe());
        output.WriteLine(bed.Describe());
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(bed.Expected.Length, bed.ClientApp.Received);
    }
}
