using Mtcp.Actors.Api;
using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

/// <summary>
/// Load reports and pull requests travel between nodes: they must survive the serializer
/// <see cref="PolicySerialization.Setup"/> binds them to, and nothing malformed may pass it.
/// </summary>
[Trait("Category", "Policy")]
public sealed class ClusterMessageSerializationTests : Akka.TestKit.Xunit2.TestKit
{
    public ClusterMessageSerializationTests()
        : base(Akka.Actor.BootstrapSetup.Create().WithConfig(MtcpConfig.Reference).And(PolicySerialization.Setup))
    {
    }

    public static TheoryData<object> CrossNodeMessages() => new()
    {
        new NodeLoadReport(S2, 12.5, 12, false, Ms(1234.567)),
        new NodeLoadReport(new Mtcp.Wire.ServerEndpoint(Mtcp.Wire.IpAddress.Parse("fd00::7"), 443), 0, 0, true, Ms(0)),
        new PullConnections(S1, S3, 2, 4, Ms(5000)),
    };

    [Theory]
    [MemberData(nameof(CrossNodeMessages))]
    public void Cross_node_message_must_round_trip(object message)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<LoadBalancingSerializer>(serializer);

        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var copy = Sys.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);

        Assert.Equal(message, copy);
        Assert.NotSame(message, copy);
    }

    [Theory]
    [MemberData(nameof(CrossNodeMessages))]
    public void Truncated_or_extended_bytes_must_be_refused(object message)
    {
        var serializer = (LoadBalancingSerializer)Sys.Serialization.FindSerializerFor(message);
        var bytes = serializer.ToBinary(message);
        var manifest = serializer.Manifest(message);

        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary(bytes[..length], manifest));
        }

        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary([.. bytes, 0], manifest));
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary(bytes, "XYZ"));
    }
}
