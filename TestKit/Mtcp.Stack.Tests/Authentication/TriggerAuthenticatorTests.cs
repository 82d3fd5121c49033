using System.Buffers.Binary;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using static Mtcp.Stack.Tests.Authentication.AuthenticationFixture;

namespace Mtcp.Stack.Tests.Authentication;

[Trait("Category", "Migration")]
public sealed class TriggerAuthenticatorTests
{
    private const uint Epoch = 3;

    private static ConnectionAuthenticator Connection() => new(Secret());

    /// <summary>Encodes the trigger as the client would receive it and decodes it back.</summary>
    private static MtcpMigrateTrigger ThroughTheWire(MtcpMigrateTrigger trigger)
    {
        var options = new TcpOptions { MigrateTrigger = trigger };
        var buffer = new byte[TcpSegment.MaxOptionsLength];
        Assert.True(options.TryWrite(buffer, out var written, out var writeError), writeError.ToString());
        Assert.True(TcpOptions.TryParse(buffer.AsSpan(0, written), out var parsed, out var parseError), parseError.ToString());
        return parsed.MigrateTrigger!.Value;
    }

    [Fact]
    public void Trigger_from_the_origin_naming_a_destination_must_verify_at_the_client_after_the_wire()
    {
        var trigger = ThroughTheWire(Connection().CreateTrigger(Cid, sender: S1, Epoch, destination: S2));

        Assert.Null(trigger.OriginServer);
        Assert.Equal(S2, trigger.Destination?.Server);
        Assert.Equal(Cid, trigger.ToConnectionId(S1, Client, Cid.ClientPort));
        Assert.Equal(TriggerCheck.Accepted, Connection().VerifyTrigger(trigger, Cid, S1, Epoch));
    }

    [Fact]
    public void Trigger_from_a_server_pulling_the_connection_to_itself_must_verify_with_the_destination_implied()
    {
        var trigger = ThroughTheWire(Connection().CreateTrigger(Cid, sender: S2, Epoch, destination: S2));

        Assert.Equal(S1, trigger.OriginServer);
        Assert.NotNull(trigger.Destination);
        Assert.Null(trigger.Destination!.Value.Server);
        Assert.Equal(TriggerCheck.Accepted, Connection().VerifyTrigger(trigger, Cid, S2, Epoch));
    }

    [Fact]
    public void Implied_destination_trigger_replayed_from_another_source_must_fail()
    {
        var trigger = Connection().CreateTrigger(Cid, sender: S2, Epoch, destination: S2);

        Assert.Equal(TriggerCheck.BadAuthTrig, Connection().VerifyTrigger(trigger, Cid, S3, Epoch));
    }

    [Fact]
    public void Trigger_without_destination_must_verify()
    {
        var trigger = ThroughTheWire(Connection().CreateTrigger(Cid, sender: S1, Epoch, destination: null));

        Assert.Null(trigger.Destination);
        Assert.Equal(TriggerCheck.Accepted, Connection().VerifyTrigger(trigger, Cid, S1, Epoch));
    }

    [Fact]
    public void Flipping_any_bit_of_auth_trig_auth_dest_or_the_destination_must_fail()
    {
        var trigger = Connection().CreateTrigger(Cid, sender: S1, Epoch, destination: S2);
        var destination = trigger.Destination!.Value;
        Span<byte> address = stackalloc byte[IpAddress.V4Length];

        for (var bit = 0; bit < 64; bit++)
        {
            var badTrig = trigger with { AuthTrig = trigger.AuthTrig ^ (1UL << bit) };
            var badDest = trigger with { Destination = destination with { AuthDest = destination.AuthDest ^ (1UL << bit) } };

            Assert.Equal(TriggerCheck.BadAuthTrig, Connection().VerifyTrigger(badTrig, Cid, S1, Epoch));
            Assert.Equal(TriggerCheck.BadAuthTrig, Connection().VerifyTrigger(badDest, Cid, S1, Epoch));
        }

        for (var bit = 0; bit < 48; bit++)
        {
            S2.Address.WriteTo(address);
            var port = S2.Port;
            if (bit < 32)
            {
                address[bit / 8] ^= (byte)(0x80 >> (bit % 8));
            }
            else
            {
                port ^= (ushort)(1 << (bit - 32));
            }

            var moved = trigger with { Destination = destination with { Server = new ServerEndpoint(IpAddress.FromIPv4(address), port) } };

            Assert.Equal(TriggerCheck.BadAuthTrig, Connection().VerifyTrigger(moved, Cid, S1, Epoch));
        }
    }

    [Fact]
    public void Flipping_any_bit_of_the_cid_must_fail()
    {
        var trigger = Connection().CreateTrigger(Cid, sender: S1, Epoch, destination: S2);

        for (var bit = 0; bit < 96; bit++)
        {
            var altered = Flip(Cid, bit);
            Assert.NotEqual(Cid, altered);

            Assert.Equal(TriggerCheck.BadAuthTrig, Connection().VerifyTrigger(trigger, altered, S1, Epoch));
        }
    }

    [Fact]
    public void Trigger_made_in_an_earlier_epoch_must_be_dead_after_the_migration_it_asked_for()
    {
        var trigger = Connection().CreateTrigger(Cid, sender: S1, Epoch, destination: S2);

        Assert.Equal(TriggerCheck.Accepted, Connection().VerifyTrigger(trigger, Cid, S1, Epoch));
        Assert.Equal(TriggerCheck.BadAuthTrig, Connection().VerifyTrigger(trigger, Cid, S1, Epoch + 1));
    }

    [Fact]
    public void Trigger_under_another_connections_secret_must_fail()
    {
        Authenticator().IssueCredential(Cid, ClientIsn, ServerIsn + 1, out var otherSecret);
        var forged = new ConnectionAuthenticator(otherSecret).CreateTrigger(Cid, sender: S1, Epoch, destination: S3);

        Assert.Equal(TriggerCheck.BadAuthTrig, Connection().VerifyTrigger(forged, Cid, S1, Epoch));
    }

    [Fact]
    public void Third_party_with_a_trigger_key_must_reach_only_endorsed_destinations()
    {
        var holder = Connection();
        var thirdParty = new TriggerAuthenticator(holder.DeriveTriggerKey(Cid, Epoch));
        var operatorTool = new ServerEndpoint(IpAddress.Parse("192.0.2.99"), 9000);
        var endorsement = holder.AuthDest(Cid, Epoch, S2);

        var toEndorsed = thirdParty.CreateTrigger(Cid, operatorTool, S2, endorsement);
        var anywhere = thirdParty.CreateTrigger(Cid, operatorTool, null, 0);
        var reusedEndorsement = thirdParty.CreateTrigger(Cid, operatorTool, S3, endorsement);
        var guessedEndorsement = thirdParty.CreateTrigger(Cid, operatorTool, S3, 0x0123_4567_89AB_CDEF);

        Assert.Equal(S1, toEndorsed.OriginServer);
        Assert.Equal(TriggerCheck.Accepted, holder.VerifyTrigger(ThroughTheWire(toEndorsed), Cid, operatorTool, Epoch));
        Assert.Equal(TriggerCheck.Accepted, holder.VerifyTrigger(anywhere, Cid, operatorTool, Epoch));
        Assert.Equal(TriggerCheck.BadAuthDest, holder.VerifyTrigger(reusedEndorsement, Cid, operatorTool, Epoch));
        Assert.Equal(TriggerCheck.BadAuthDest, holder.VerifyTrigger(guessedEndorsement, Cid, operatorTool, Epoch));
    }

    [Fact]
    public void Trigger_key_must_differ_per_epoch_and_per_connection_and_from_the_secret()
    {
        var holder = Connection();
        var other = new ConnectionId(Client, 40001, S1.Address, S1.Port);
        var keyBytes = new byte[TriggerKey.Length];
        var secretBytes = new byte[MigrationSecret.Length];
        holder.DeriveTriggerKey(Cid, Epoch).WriteTo(keyBytes);
        Secret().WriteTo(secretBytes);

        Assert.NotEqual(holder.DeriveTriggerKey(Cid, Epoch), holder.DeriveTriggerKey(Cid, Epoch + 1));
        Assert.NotEqual(holder.DeriveTriggerKey(Cid, Epoch), holder.DeriveTriggerKey(other, Epoch));
        Assert.NotEqual(secretBytes, keyBytes);
        Assert.Equal("TriggerKey(redacted)", holder.DeriveTriggerKey(Cid, Epoch).ToString());
    }

    private static ConnectionId Flip(ConnectionId cid, int bit)
    {
        Span<byte> bytes = stackalloc byte[12];
        cid.ClientAddress.WriteTo(bytes);
        BinaryPrimitives.WriteUInt16BigEndian(bytes[4..], cid.ClientPort);
        cid.ServerAddress.WriteTo(bytes[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(bytes[10..], cid.ServerPort);
        bytes[bit / 8] ^= (byte)(0x80 >> (bit % 8));
        return new ConnectionId(
            IpAddress.FromIPv4(bytes),
            BinaryPrimitives.ReadUInt16BigEndian(bytes[4..]),
            IpAddress.FromIPv4(bytes[6..]),
            BinaryPrimitives.ReadUInt16BigEndian(bytes[10..]));
    }
}
