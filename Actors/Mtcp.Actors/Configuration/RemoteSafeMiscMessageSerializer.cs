using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Remote.Serialization;
using Akka.Serialization;

namespace Mtcp.Actors.Configuration;

/// <summary>
/// Akka.NET's serializer of its miscellaneous messages (Identify, ActorIdentity, actor references, Status, heartbeats of
/// remote watch), registered in its place under the name <c>akka-misc</c> and identifier 16, that refuses to
/// deserialize <see cref="Kill"/> and <see cref="PoisonPill"/> (docs/threat-model.md, "control network"). Untrusted mode
/// drops a remote PoisonPill but delivers Kill, which Akka.NET does not mark as possibly harmful: one Kill from another
/// node stopped a node's runtime or control actor. No node sends either to another.
/// </summary>
internal sealed class RemoteSafeMiscMessageSerializer : SerializerWithStringManifest
{
    private const string KillManifest = "K";
    private const string PoisonPillManifest = "PP";

    private readonly MiscMessageSerializer _akka;

    public RemoteSafeMiscMessageSerializer(ExtendedActorSystem system)
        : base(system)
    {
        _akka = new MiscMessageSerializer(system);
    }

    public override string Manifest(object o) => _akka.Manifest(o);

    public override byte[] ToBinary(object obj) => _akka.ToBinary(obj);

    public override object FromBinary(byte[] bytes, string manifest) => manifest is KillManifest or PoisonPillManifest
        ? throw new SerializationException($"a {(manifest == KillManifest ? nameof(Kill) : nameof(PoisonPill))} from another node was dropped: no node stops another's actors")
        : _akka.FromBinary(bytes, manifest);
}
