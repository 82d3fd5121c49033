using System.Net.Sockets;
using Mtcp.Transports;

namespace Mtcp.Interop.Tests;

/// <summary>
/// Which errno of a failed send is a lost packet and which one stops the transport, decided without any traffic: a
/// drop by netfilter, a full queue or a missing route is a loss (the engine retransmits, RFC 9293 §3.8.1); a broken
/// or misused socket is not.
/// </summary>
[Trait("Category", "Interop")]
public sealed class SendErrorsTests
{
    public static TheoryData<int, SendDropReason> Losses => new()
    {
        { 1, SendDropReason.Filtered }, // EPERM: netfilter dropped it on the output hook
        { 13, SendDropReason.Filtered }, // EACCES: a security module refused it
        { 105, SendDropReason.NoBufferSpace }, // ENOBUFS
        { 12, SendDropReason.NoBufferSpace }, // ENOMEM
        { 11, SendDropReason.SendBufferFull }, // EAGAIN = EWOULDBLOCK
        { 101, SendDropReason.Unreachable }, // ENETUNREACH
        { 113, SendDropReason.Unreachable }, // EHOSTUNREACH
        { 100, SendDropReason.Unreachable }, // ENETDOWN
        { 112, SendDropReason.Unreachable }, // EHOSTDOWN
        { 111, SendDropReason.Refused }, // ECONNREFUSED: an ICMP port unreachable reported on this send
        { 90, SendDropReason.TooLarge }, // EMSGSIZE: the path, not the transport's own limit, refused the size
    };

    // EBADF, EFAULT, EINVAL, ENOTSOCK, EDESTADDRREQ, EOPNOTSUPP, EAFNOSUPPORT, EADDRNOTAVAIL, EPIPE, ENOTCONN.
    public static TheoryData<int> Failures => new() { 9, 14, 22, 88, 89, 95, 97, 99, 32, 107 };

    [Theory]
    [MemberData(nameof(Losses))]
    public void A_local_drop_must_be_a_loss_with_its_reason(int errno, SendDropReason expected)
    {
        Assert.True(SendErrors.IsLoss(errno, out var reason));
        Assert.Equal(expected, reason);
    }

    [Theory]
    [MemberData(nameof(Failures))]
    public void A_broken_or_misused_socket_must_not_be_a_loss(int errno) => Assert.False(SendErrors.IsLoss(errno, out _));

    [Fact]
    public void Sent_must_return_false_and_count_a_loss_and_throw_for_a_broken_socket()
    {
        using var socket = new DatagramSocket(new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp), "udp", "test socket");

        Assert.True(socket.Sent(0));
        Assert.False(socket.Sent(1));
        Assert.False(socket.Sent(13));
        Assert.False(socket.Sent(105));
        Assert.Equal(3, socket.SendDrops.Total);
        Assert.Equal(2, socket.SendDrops[SendDropReason.Filtered]);
        Assert.Equal(13, socket.SendDrops.LastErrno(SendDropReason.Filtered));
        Assert.Equal(1, socket.SendDrops[SendDropReason.NoBufferSpace]);
        Assert.Equal("filtered 2 (EACCES), no_buffer_space 1 (ENOBUFS)", socket.SendDrops.ToString());

        var failure = Assert.Throws<PacketTransportException>(() => socket.Sent(9));
        Assert.Contains("EBADF", failure.Message, StringComparison.Ordinal);
        Assert.Contains("test socket", failure.Message, StringComparison.Ordinal);
        Assert.Equal(3, socket.SendDrops.Total);
    }
}
