using System.Buffers.Binary;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies;

/// <summary>
/// What an actor system that runs the server policies across nodes adds to its setup, so that their load reports and
/// pull requests (thesis 6.2.3) can travel: the reference configuration binds no general-purpose serializer.
/// </summary>
public static class PolicySerialization
{
    public static SerializationSetup Setup { get; } = SerializationSetup.Create(system =>
        [SerializerDetails.Create("mtcp-load-balancing", new LoadBalancingSerializer(system), [typeof(NodeLoadReport), typeof(PullConnections)])]);
}

/// <summary>
/// Serializes the load-balancing messages that travel between nodes (<see cref="NodeLoadReport"/>,
/// <see cref="PullConnections"/>) in a fixed big-endian layout, so that no general-purpose serializer ever chooses
/// the types a node deserializes. Registered with <see cref="PolicySerialization.Setup"/>, identifier 252 (reserved in
/// HOCON/mtcp-reference.conf); the manifests "NLR" and "PLC" are frozen. An endpoint is
/// <c>family (4 or 6) | address | port</c>; a double is its IEEE 754 bits.
/// </summary>
internal sealed class LoadBalancingSerializer : SerializerWithStringManifest
{
    public const string LoadReportManifest = "NLR";
    public const string PullManifest = "PLC";

    public LoadBalancingSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    public override int Identifier => 252;

    public override string Manifest(object o) => o switch
    {
        NodeLoadReport => LoadReportManifest,
        PullConnections => PullManifest,
        _ => throw Unsupported(o),
    };

    public override byte[] ToBinary(object obj)
    {
        var writer = new List<byte>(64);
        switch (obj)
        {
            case NodeLoadReport report:
                WriteEndpoint(writer, report.Node);
                WriteInt64(writer, BitConverter.DoubleToInt64Bits(report.Load));
                WriteInt64(writer, report.Connections);
                writer.Add(report.Draining ? (byte)1 : (byte)0);
                WriteInt64(writer, report.At.Microseconds);
                break;
            case PullConnections pull:
                WriteEndpoint(writer, pull.Requester);
                WriteEndpoint(writer, pull.LoadedPeer);
                WriteInt64(writer, BitConverter.DoubleToInt64Bits(pull.RequesterLoad));
                WriteInt64(writer, pull.Count);
                WriteInt64(writer, pull.At.Microseconds);
                break;
            default:
                throw Unsupported(obj);
        }

        return [.. writer];
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var reader = new Reader(bytes, manifest);
        object message = manifest switch
        {
            LoadReportManifest => new NodeLoadReport(reader.Endpoint(), reader.Double(), reader.Int32(), reader.Boolean(), new Instant(reader.Int64())),
            PullManifest => new PullConnections(reader.Endpoint(), reader.Endpoint(), reader.Double(), reader.Int32(), new Instant(reader.Int64())),
            _ => throw new SerializationException($"{nameof(LoadBalancingSerializer)} knows no manifest [{manifest}]"),
        };
        reader.RequireEnd();
        return message;
    }

    private static void WriteEndpoint(List<byte> writer, ServerEndpoint endpoint)
    {
        Span<byte> address = stackalloc byte[IpAddress.V6Length];
        var length = endpoint.Address.WriteTo(address);
        writer.Add(endpoint.Address.IsIPv4 ? (byte)4 : (byte)6);
        writer.AddRange(address[..length]);
        writer.Add((byte)(endpoint.Port >> 8));
        writer.Add((byte)endpoint.Port);
    }

    private static void WriteInt64(List<byte> writer, long value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(bytes, value);
        writer.AddRange(bytes);
    }

    private ArgumentException Unsupported(object o) =>
        new($"{nameof(LoadBalancingSerializer)} (id {Identifier}) cannot serialize {o?.GetType().FullName ?? "null"}", nameof(o));

    /// <summary>Reads the layout front to back; anything short, out of range or left over is a <see cref="SerializationException"/>.</summary>
    private sealed class Reader(byte[] bytes, string manifest)
    {
        private int _at;

        public ServerEndpoint Endpoint()
        {
            var length = Take(1)[0] switch
            {
                4 => IpAddress.V4Length,
                6 => IpAddress.V6Length,
                var family => throw Malformed($"address family {family}"),
            };
            var address = length == IpAddress.V4Length ? IpAddress.FromIPv4(Take(length)) : IpAddress.FromIPv6(Take(length));
            var port = BinaryPrimitives.ReadUInt16BigEndian(Take(2));
            return port != 0 ? new ServerEndpoint(address, port) : throw Malformed("port 0");
        }

        public double Double() => BitConverter.Int64BitsToDouble(Int64()) is var value && double.IsFinite(value) ? value : throw Malformed("a load that is not finite");

        public int Int32() => Int64() is >= int.MinValue and <= int.MaxValue and var value ? (int)value : throw Malformed("a count out of range");

        public bool Boolean() => Take(1)[0] switch
        {
            0 => false,
            1 => true,
            var other => throw Malformed($"flag {other}"),
        };

        public long Int64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

        public void RequireEnd()
        {
            if (_at != bytes.Length)
            {
                throw Malformed($"{bytes.Length - _at} trailing bytes");
            }
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (bytes.Length - _at < count)
            {
                throw Malformed("truncated");
            }

            _at += count;
            return bytes.AsSpan(_at - count, count);
        }

        private SerializationException Malformed(string what) => new($"cannot deserialize [{manifest}] from {bytes.Length} bytes: {what}");
    }
}
