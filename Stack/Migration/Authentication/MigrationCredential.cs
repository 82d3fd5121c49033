using System.Buffers.Binary;
using Mtcp.Wire;

namespace Mtcp.Stack.Migration.Authentication;

/// <summary>
/// What a server keeps, and hands to the next server with the state reply, so that the connection's
/// <see cref="MigrationSecret"/> can be recomputed and replays recognised wherever the connection lives.
/// Every field is public material: the secret is a MAC of the Cid and the two ISNs under the cluster key
/// of <see cref="KeyGeneration"/>, so these bytes can cross the control connection in the clear.
/// <code>
///  | KeyGeneration | ClientIsn (4) | ServerIsn (4) | Epoch (4) | NextAttempt (4) |   17 bytes
/// </code>
/// </summary>
/// <param name="KeyGeneration">The cluster key the secret was derived from.</param>
/// <param name="ClientIsn">The client's ISN on the connection with the origin server (its first SYN).</param>
/// <param name="ServerIsn">The origin server's ISN on its SYN+ACK.</param>
/// <param name="Epoch">
/// Migrations completed so far. The client counts one when it switches to a new server; the new server sets
/// it to the origin's value plus one when it reinstates the state. Trigger keys and Auth_dest are bound to it,
/// so a trigger captured before a migration is dead after it.
/// </param>
/// <param name="NextAttempt">
/// The lowest MIGRATED_CONN attempt number the server holding the connection still accepts. The client
/// numbers its special SYNs 0, 1, 2, ... over the connection's whole life (a retransmitted SYN keeps its
/// number); each accepted number is consumed, so a special SYN replayed later no longer verifies.
/// </param>
public readonly record struct MigrationCredential(byte KeyGeneration, SeqNumber ClientIsn, SeqNumber ServerIsn, uint Epoch, uint NextAttempt)
{
    public const int BufferLength = 17;

    /// <summary>After the state request carrying <paramref name="attempt"/> verified: that number and all before it are spent.</summary>
    public MigrationCredential ConsumeAttempt(uint attempt) => this with { NextAttempt = attempt + 1 };

    /// <summary>At the new server, on reinstating the state: one more completed migration.</summary>
    public MigrationCredential AfterMigration() => this with { Epoch = Epoch + 1 };

    public int WriteTo(Span<byte> destination)
    {
        destination[0] = KeyGeneration;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], ClientIsn.Value);
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], ServerIsn.Value);
        BinaryPrimitives.WriteUInt32BigEndian(destination[9..], Epoch);
        BinaryPrimitives.WriteUInt32BigEndian(destination[13..], NextAttempt);
        return BufferLength;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out MigrationCredential credential)
    {
        if (source.Length != BufferLength)
        {
            credential = default;
            return false;
        }

        credential = new MigrationCredential(
            source[0],
            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(source[1..])),
            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(source[5..])),
            BinaryPrimitives.ReadUInt32BigEndian(source[9..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[13..]));
        return true;
    }
}
