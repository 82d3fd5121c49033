using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// Serializes the service directory's <see cref="ServiceAnnouncement"/>s in their fixed binary layout, and
/// <see cref="SignedServiceAnnouncement"/>s as that layout followed by their MAC. Bound
/// in HOCON/mtcp-reference.conf with identifier 254; the manifests are frozen. A malformed payload raises a
/// <see cref="SerializationException"/> naming the error; Akka.Remote logs it and drops that message.
/// </summary>
internal sealed class ServiceDirectorySerializer : SerializerWithStringManifest
{
    public ServiceDirectorySerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    public override string Manifest(object o) => o switch
    {
        ServiceAnnouncement => ServiceAnnouncement.SerializerManifest,
        SignedServiceAnnouncement => SignedServiceAnnouncement.SerializerManifest,
        _ => throw Unsupported(o),
    };

    public override byte[] ToBinary(object obj) => obj switch
    {
        ServiceAnnouncement announcement => announcement.ToArray(),
        SignedServiceAnnouncement signed => signed.Bytes.ToArray(),
        _ => throw Unsupported(obj),
    };

    public override object FromBinary(byte[] bytes, string manifest)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (manifest == SignedServiceAnnouncement.SerializerManifest)
        {
            // Opened (MAC, then the node it names against the sender) by the directory, which holds the key.
            return new SignedServiceAnnouncement(bytes);
        }

        if (manifest != ServiceAnnouncement.SerializerManifest)
        {
            throw new SerializationException($"{nameof(ServiceDirectorySerializer)} knows no manifest [{manifest}]");
        }

        return ServiceAnnouncement.TryDecode(bytes, out var announcement, out var error)
            ? announcement
            : throw new SerializationException($"cannot deserialize service announcement from {bytes.Length} bytes: {error}");
    }

    private ArgumentException Unsupported(object o) =>
        new($"{nameof(ServiceDirectorySerializer)} (id {Identifier}) cannot serialize {o?.GetType().FullName ?? "null"}", nameof(o));
}
