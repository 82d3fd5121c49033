using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using System.Text;
using Mtcp.Stack.Migration.Authentication;

namespace Mtcp.Actors.Cluster;

/// <summary>Why a <see cref="SignedServiceAnnouncement"/> (or an unsigned announcement) was dropped on receipt.</summary>
internal enum AnnouncementRefusal : byte
{
    /// <summary>Too short to hold a MAC, or the announcement inside does not decode.</summary>
    Malformed,

    /// <summary>The MAC verifies under neither the current nor the previous cluster key: forged or altered.</summary>
    BadMac,

    /// <summary>It names another node's control address than the association it came from: a node announces only itself.</summary>
    NotFromItsNode,

    /// <summary>An unsigned announcement reached a directory that holds the cluster key.</summary>
    Unsigned,

    /// <summary>A signed announcement reached a directory without the cluster key, which cannot check it.</summary>
    NoKey,
}

/// <summary>
/// A <see cref="ServiceAnnouncement"/> signed under the cluster's control key (docs/threat-model.md, "signed
/// announcements"): the announcement's encoding followed by a 16-byte MAC from
/// <see cref="IMigrationAuthenticator.SignControlMessage"/> with the announcing node's control address as sender and
/// <see cref="Receiver"/> as receiver. Control envelopes name an Akka address as receiver, never this label, so neither
/// kind of MAC can be taken for the other. Manifest frozen: "SSA".
/// </summary>
internal sealed class SignedServiceAnnouncement
{
    public const string SerializerManifest = "SSA";

    private static readonly Counter<long> RefusedCounter = Migration.MigrationMetrics.AnnouncementsRefused;

    private readonly byte[] _bytes;

    public SignedServiceAnnouncement(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        _bytes = bytes;
    }

    /// <summary>The fixed receiver identity in every announcement's MAC input.</summary>
    public static ReadOnlySpan<byte> Receiver => "mtcp service directory"u8;

    public ReadOnlyMemory<byte> Bytes => _bytes;

    public static SignedServiceAnnouncement Sign(IMigrationAuthenticator authenticator, ServiceAnnouncement announcement)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        ArgumentNullException.ThrowIfNull(announcement);
        var encoded = announcement.ToArray();
        var bytes = new byte[encoded.Length + authenticator.ControlMacLength];
        encoded.CopyTo(bytes, 0);
        authenticator.SignControlMessage(encoded, Encoding.UTF8.GetBytes(announcement.ControlAddress.ToString()), Receiver, bytes.AsSpan(encoded.Length));
        return new SignedServiceAnnouncement(bytes);
    }

    /// <summary>The announcement inside, when it decodes and its MAC verifies for the control address it names.</summary>
    public bool TryOpen(IMigrationAuthenticator authenticator, [NotNullWhen(true)] out ServiceAnnouncement? announcement, out AnnouncementRefusal refusal)
    {
        ArgumentNullException.ThrowIfNull(authenticator);
        announcement = null;
        var macLength = authenticator.ControlMacLength;
        if (_bytes.Length < macLength || !ServiceAnnouncement.TryDecode(_bytes.AsSpan(0, _bytes.Length - macLength), out var decoded, out _))
        {
            refusal = AnnouncementRefusal.Malformed;
            return false;
        }

        var encoded = _bytes.AsSpan(0, _bytes.Length - macLength);
        if (!authenticator.VerifyControlMessage(encoded, Encoding.UTF8.GetBytes(decoded.ControlAddress.ToString()), Receiver, _bytes.AsSpan(_bytes.Length - macLength)))
        {
            refusal = AnnouncementRefusal.BadMac;
            return false;
        }

        announcement = decoded;
        refusal = default;
        return true;
    }

    /// <summary>Counts one dropped announcement in <c>mtcp.cluster.announcement.refused</c>, tagged with the reason.</summary>
    public static void CountRefused(AnnouncementRefusal refusal) =>
        RefusedCounter.Add(1, new KeyValuePair<string, object?>("reason", refusal.ToString()));
}
