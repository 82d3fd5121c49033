namespace Mtcp.Actors.Tests;

/// <summary>
/// Test classes that start several ActorSystems over Akka.Remote run one after another rather than in
/// parallel with each other: each starts remoting and cluster threads, and on two cores several at once
/// starve the other tests running beside them.
/// </summary>
[CollectionDefinition(Name)]
public sealed class MultiNodeCollection
{
    public const string Name = "MultiNode";
}
