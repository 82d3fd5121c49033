namespace Mtcp.Actors.Tests;

/// <summary>
/// Test classes that start several ActorSystems over Akka.Remote run one after another rather than in
/// parallel with each other: each starts remoting and cluster threads, and on two cores several at once
/// starve the other tests running beside them. Tests that open raw or UDP sockets on 127.0.0.x run here too, so that
/// two of them never bind the same address at once.
/// </summary>
[CollectionDefinition(Name)]
public sealed class MultiNodeCollection
{
    public const string Name = "MultiNode";
}
