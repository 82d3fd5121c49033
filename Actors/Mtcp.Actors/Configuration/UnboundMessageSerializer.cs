using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace Mtcp.Actors.Configuration;

/// <summary>
/// Bound to <c>System.Object</c> in HOCON/mtcp-reference.conf in place of a general-purpose serializer
/// (docs/threat-model.md, "control network"): a message type without its own binding cannot go to another node, and
/// nothing arriving from one is deserialized through it, so a peer never chooses the types a node instantiates. Every
/// type that must travel has an explicit binding to a serializer of its own layout. Identifier 251.
/// </summary>
internal sealed class UnboundMessageSerializer : Serializer
{
    public UnboundMessageSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    /// <summary>Akka.NET passes the settings of the serializer's name (akka.actor.serialization-settings.json); none apply.</summary>
    public UnboundMessageSerializer(ExtendedActorSystem system, Akka.Configuration.Config settings)
        : base(system)
    {
    }

    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj) =>
        throw new SerializationException(
            $"{obj?.GetType().FullName ?? "null"} has no serializer binding: only the message types bound in akka.actor.serialization-bindings travel between nodes");

    public override object FromBinary(byte[] bytes, Type type) =>
        throw new SerializationException("a message without a serializer binding arrived from another node and was dropped");
}
