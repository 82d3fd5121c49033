using Akka.Actor;
using Mtcp.Actors.Packets;
using Mtcp.Wire;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// What an application stream holds of its endpoint actor: the actor to tell, and the read and write operations
/// the actor completes. Created by the endpoint actor, handed out once the connection is established.
/// </summary>
internal sealed class EndpointChannel
{
    public EndpointChannel(IActorRef endpoint, IpAddress localAddress, ConnectionKey key)
    {
        Endpoint = endpoint;
        LocalAddress = localAddress;
        Key = key;
    }

    public IActorRef Endpoint { get; }

    public IpAddress LocalAddress { get; }

    public ConnectionKey Key { get; }

    public StreamOperation Reader { get; } = new("read");

    public StreamOperation Writer { get; } = new("write");
}
