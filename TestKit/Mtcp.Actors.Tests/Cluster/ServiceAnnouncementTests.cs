using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Mtcp.Actors.Api;
using Mtcp.Actors.Cluster;
using Mtcp.Actors.Configuration;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class ServiceAnnouncementTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Address Node = new("akka.tcp", "mtcp", "192.0.2.7", 4053);

    private static readonly ServiceAnnouncement Sample = new(
        [new ServerEndpoint(IpAddress.Parse("10.0.0.2"), 80), new ServerEndpoint(IpAddress.Parse("2001:db8::2"), 443)],
        Node,
        replyRequested: true);

    private static readonly ServiceAnnouncement WithChannel = new(Sample.ServiceEndpoints, Node, replyRequested: false, replicationChannelPort: 7355);

    public ServiceAnnouncementTests()
        : base(MtcpConfig.Reference)
    {
    }

    [Fact]
    public void Announcement_must_encode_to_the_documented_bytes()
    {
        var bytes = Sample.ToArray();

        byte[] header = [1, 0x01, 0, 2, 4, 10, 0, 0, 2, 0, 80, 6];
        Assert.Equal(header, bytes[..header.Length]);
        var control = "akka.tcp://mtcp@192.0.2.7:4053"u8.ToArray();
        Assert.Equal(control.Length, (bytes[^(control.Length + 2)] << 8) | bytes[^(control.Length + 1)]);
        Assert.Equal(control, bytes[^control.Length..]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Announcement_must_round_trip_through_the_bound_serializer(bool replyRequested)
    {
        var announcement = Sample.WithReplyRequested(replyRequested);
        var serializer = Sys.Serialization.FindSerializerFor(announcement);

        Assert.IsType<ServiceDirectorySerializer>(serializer);
        Assert.Equal(254, serializer.Identifier);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, announcement);
        Assert.Equal("SDA", manifest);
        Assert.Equal(announcement, Sys.Serialization.Deserialize(serializer.ToBinary(announcement), serializer.Identifier, manifest));
    }

    [Fact]
    public void Announcement_with_a_replication_channel_must_set_flag_1_and_end_with_its_port()
    {
        var bytes = WithChannel.ToArray();

        Assert.Equal(0x02, bytes[1]);
        Assert.Equal(Sample.ToArray().Length + 2, bytes.Length);
        Assert.Equal([0x1C, 0xBB], bytes[^2..]);
        Assert.True(ServiceAnnouncement.TryDecode(bytes, out var decoded, out _));
        Assert.Equal(WithChannel, decoded);
        Assert.Equal(7355, decoded.ReplicationChannelPort);
        Assert.NotEqual(WithChannel, new ServiceAnnouncement(Sample.ServiceEndpoints, Node, replyRequested: false));
        Assert.False(WithChannel.SameContent(new ServiceAnnouncement(Sample.ServiceEndpoints, Node, replyRequested: false)));
        Assert.Equal(7355, WithChannel.WithReplyRequested(true).ReplicationChannelPort);
    }

    [Fact]
    public void Announcement_without_endpoints_must_round_trip()
    {
        var announcement = new ServiceAnnouncement([], Node, replyRequested: false);

        Assert.True(ServiceAnnouncement.TryDecode(announcement.ToArray(), out var decoded, out _));
        Assert.Equal(announcement, decoded);
    }

    // The expected error travels by name: a theory of a public test class cannot take an internal type.
    public static TheoryData<string, byte[], string> Malformed()
    {
        var good = Sample.ToArray();
        byte[] With(int index, byte value, int count = 1)
        {
            var copy = (byte[])good.Clone();
            copy.AsSpan(index, count).Fill(value);
            return copy;
        }

        return new()
        {
            { "empty", [], nameof(ServiceAnnouncementError.Truncated) },
            { "version 2", With(0, 2), nameof(ServiceAnnouncementError.UnsupportedVersion) },
            { "unknown flag", With(1, 0x05), nameof(ServiceAnnouncementError.UnknownFlags) },
            { "channel flag without its port", With(1, 0x03), nameof(ServiceAnnouncementError.Truncated) },
            { "channel port 0", [.. WithChannel.ToArray()[..^2], 0, 0], nameof(ServiceAnnouncementError.BadPort) },
            { "channel port and one byte more", [.. WithChannel.ToArray(), 0], nameof(ServiceAnnouncementError.TrailingBytes) },
            { "family 5", With(4, 5), nameof(ServiceAnnouncementError.BadAddressFamily) },
            { "port 0", With(9, 0, count: 2), nameof(ServiceAnnouncementError.BadPort) },
            { "one byte short", good[..^1], nameof(ServiceAnnouncementError.Truncated) },
            { "one byte more", [.. good, 0], nameof(ServiceAnnouncementError.TrailingBytes) },
            { "three endpoints announced, two present", With(3, 3), nameof(ServiceAnnouncementError.BadAddressFamily) },
            { "control address not an address", [1, 0, 0, 0, 0, 5, .. "hello"u8.ToArray()], nameof(ServiceAnnouncementError.BadControlAddress) },
            { "control address local", [1, 0, 0, 0, 0, 11, .. "akka://mtcp"u8.ToArray()], nameof(ServiceAnnouncementError.BadControlAddress) },
            { "control address not UTF-8", [1, 0, 0, 0, 0, 2, 0xC3, 0x28], nameof(ServiceAnnouncementError.BadControlAddress) },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_announcement_must_be_refused_with_its_error(string because, byte[] bytes, string expected)
    {
        Assert.False(ServiceAnnouncement.TryDecode(bytes, out var decoded, out var error), because);
        Assert.Null(decoded);
        Assert.Equal(expected, error.ToString());
    }

    [Fact]
    public void Malformed_announcement_must_fail_deserialization_naming_the_error()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(Sample);

        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary([9], ServiceAnnouncement.SerializerManifest));

        Assert.Contains(nameof(ServiceAnnouncementError.Truncated), error.Message);
    }
}
