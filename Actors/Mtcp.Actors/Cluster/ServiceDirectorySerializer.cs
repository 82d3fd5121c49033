using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// Serializes the service directory's <see cref="ServiceAnnouncement"/>s in their fixed binary layout. Bound
/// in HOCON/mtcp-reference.conf with identifier 254; the manifest is frozen. A malformed payload raises a
/// <see cref="SerializationException"/> naming the error; Akka.Remote logs it and drops that message.
/// </summary>
internal sealed class ServiceDirectorySerializer : SerializerWithStringManifest
{
    public ServiceDirectorySerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    public override string Manifest(object o) => o is ServiceAnnouncement ? ServiceAnnouncement.SerializerManifest : throw Unsupported(o);

    public override byte[] ToBinary(object obj) => obj is ServiceAnnouncement announcement ? announcement.ToArray() : throw Unsupported(obj);

    public override object FromBinary(byte[] bytes, string manifest)
    {
        ArgumentNullException.ThrowIfNull(bytes);
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
