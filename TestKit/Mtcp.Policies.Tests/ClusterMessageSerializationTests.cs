using Mtcp.Actors.Api;
using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

/// <summary>
/// Load reports and pull requests travel between nodes: they must survive the serializer the reference
/// configuration binds them to.
/// </summary>
[Trait("Category", "Policy")]
public sealed class ClusterMessageSerializationTests : Akka.TestKit.Xunit2.TestKit
{
    public ClusterMessageSerializationTests()
        : base(MtcpConfig.Reference)
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
        Assert.IsType<Akka.Serialization.HyperionSerializer>(serializer);

        var copy = serializer.FromBinary(serializer.ToBinary(message), message.GetType());

        Assert.Equal(message, copy);
        Assert.NotSame(message, copy);
    }
}
