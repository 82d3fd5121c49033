using System.Buffers.Binary;
using System.Net.Sockets;
using Mtcp.TestKit;
using Mtcp.Transports;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Interop.Tests;

/// <summary>
/// Random and mutated carriers to the transports' carrier decoders (<see cref="CarrierHeaders"/>): the IPv4 header a raw
/// socket hands over in front of each segment, and the source socket address of a UDP-encapsulated segment. Neither may
/// throw; a datagram either locates a segment inside the bytes received, from the address they name, or is discarded
/// with a typed <see cref="CarrierError"/>. Harness: <see cref="FuzzRun"/>.
/// </summary>
[Trait("Category", "Wire")]
public sealed class CarrierHeaderFuzzTests(ITestOutputHelper output)
{
    private const byte Protocol = RawIPv4Transport.ExperimentalProtocol;
    private const ushort LinuxInet = 2;
    private const ushort LinuxInet6 = 10;
    private static readonly IpAddress Local = IpAddress.Parse("127.0.6.200");
    private static readonly uint LocalValue = BinaryPrimitives.ReadUInt32BigEndian([127, 0, 6, 200]);

    [Fact]
    public void IPv4_carrier_decoder_must_locate_a_segment_inside_the_packet_or_reject_it_with_a_typed_error()
    {
        var outcome = FuzzRun.Run(0x49503034, IPv4Bases(new Random(0x49503033)), input =>
        {
            var error = CarrierHeaders.TryLocateInIPv4(input, Protocol, LocalValue, Local, out var received);
            if (error != CarrierError.None)
            {
                FuzzRun.Require(received == default, "a rejection that located a segment");
                return false;
            }

            var headerLength = (input[0] & 0x0F) * 4;
            FuzzRun.Require(received.Offset == headerLength && received.Offset >= 20, "the segment does not start after the header");
            FuzzRun.Require(received.Offset + received.Length == BinaryPrimitives.ReadUInt16BigEndian(input[2..]) && received.Offset + received.Length <= input.Length, "the segment does not end at the total length");
            FuzzRun.Require(received.Source == IpAddress.FromIPv4(input[12..16]) && received.Destination == Local && input[9] == Protocol, "addresses or protocol differ from the header");
            return true;
        });

        output.WriteLine(outcome.ToString());
        Assert.True(outcome.Accepted > outcome.Inputs / 10, $"only {outcome.Accepted} accepted");
    }

    [Fact]
    public void UDP_carrier_decoder_must_accept_only_the_peer_port_and_read_the_source_or_reject_it_with_a_typed_error()
    {
        const ushort PeerPort = 5253;
        var outcome = FuzzRun.Run(0x55445031, UdpBases(new Random(0x55445032), PeerPort), input =>
        {
            // The family as the kernel's sockaddr states it (sa_family, host order), as SocketAddress.Family reports it.
            var family = input.Length < 2 ? AddressFamily.Unspecified : BinaryPrimitives.ReadUInt16LittleEndian(input) switch
            {
                LinuxInet => AddressFamily.InterNetwork,
                LinuxInet6 => AddressFamily.InterNetworkV6,
                var other => (AddressFamily)other,
            };
            var error = CarrierHeaders.TryReadUdpSource(input, family, PeerPort, out var source);
            if (error != CarrierError.None)
            {
                FuzzRun.Require(source == default, "a rejection that read a source");
                return false;
            }

            FuzzRun.Require(BinaryPrimitives.ReadUInt16BigEndian(input[2..]) == PeerPort, "accepted from another port");
            var expected = family == AddressFamily.InterNetwork ? IpAddress.FromIPv4(input[4..8]) : IpAddress.FromIPv6(input[8..24]);
            FuzzRun.Require(source == expected, "the source differs from the socket address");
            return true;
        });

        output.WriteLine(outcome.ToString());
        Assert.True(outcome.Accepted > outcome.Inputs / 10, $"only {outcome.Accepted} accepted");
    }

    private static List<(byte[] Bytes, int[] LengthFields)> IPv4Bases(Random random)
    {
        var bases = new List<(byte[] Bytes, int[] LengthFields)>();
        for (var i = 0; i < 256; i++)
        {
            var headerLength = random.Next(3) == 0 ? 4 * random.Next(6, 16) : 20;
            var segmentLength = random.Next(64);
            var packet = new byte[headerLength + segmentLength + (random.Next(4) == 0 ? random.Next(1, 8) : 0)];
            random.NextBytes(packet);
            packet[0] = (byte)(0x40 | (headerLength / 4));
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)(headerLength + segmentLength));
            packet[9] = Protocol;
            Local.WriteTo(packet.AsSpan(16));
            bases.Add((packet, [2]));
        }

        return bases;
    }

    private static List<(byte[] Bytes, int[] LengthFields)> UdpBases(Random random, ushort peerPort)
    {
        var bases = new List<(byte[] Bytes, int[] LengthFields)>();
        for (var i = 0; i < 256; i++)
        {
            var address = new byte[i % 2 == 0 ? 16 : 28];
            random.NextBytes(address);
            BinaryPrimitives.WriteUInt16LittleEndian(address, i % 2 == 0 ? LinuxInet : LinuxInet6);
            BinaryPrimitives.WriteUInt16BigEndian(address.AsSpan(2), peerPort);
            bases.Add((address, [2]));
        }

        return bases;
    }
}
