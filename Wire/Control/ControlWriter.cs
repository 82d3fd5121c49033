using System.Buffers.Binary;

namespace Mtcp.Wire.Control;

/// <summary>A forward cursor for encoding into a span the caller sized with GetEncodedLength.</summary>
internal ref struct ControlWriter
{
    /// <summary>Address family bytes of a connection id: the IP version numbers.</summary>
    public const byte AddressFamilyIPv4 = 4;
    public const byte AddressFamilyIPv6 = 6;

    private readonly Span<byte> _buffer;
    private int _position;

    public ControlWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    public readonly int Position => _position;

    public void WriteByte(byte value)
    {
        _buffer[_position] = value;
        _position += 1;
    }

    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[_position..], value);
        _position += 2;
    }

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_buffer[_position..], value);
        _position += 4;
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer[_position..]);
        _position += bytes.Length;
    }

    /// <summary>
    /// A connection id (thesis 3.2.1 Cid), 13 bytes for IPv4 and 37 for IPv6:
    /// <code>
    /// +---------------+-------------------------------+---------------+
    /// | Family (4|6)  | ClientAddress (4|16) ...      | ClientPort(16)|
    /// +---------------+-------------------------------+---------------+
    /// | ServerAddress (4|16) ...                      | ServerPort(16)|
    /// +-----------------------------------------------+---------------+
    /// </code>
    /// </summary>
    public void WriteConnectionId(ConnectionId cid)
    {
        WriteByte(cid.ClientAddress.IsIPv4 ? AddressFamilyIPv4 : AddressFamilyIPv6);
        _position += cid.ClientAddress.WriteTo(_buffer[_position..]);
        WriteUInt16(cid.ClientPort);
        _position += cid.ServerAddress.WriteTo(_buffer[_position..]);
        WriteUInt16(cid.ServerPort);
    }

    public static int ConnectionIdLength(ConnectionId cid) => 1 + cid.ClientAddress.Length + 2 + cid.ServerAddress.Length + 2;

    /// <summary>
    /// Guards message constructors: both ends of a connection have addresses of one family, so the single
    /// family byte on the wire describes both.
    /// </summary>
    public static ConnectionId RequireEncodable(ConnectionId cid, string paramName)
    {
        if (cid.ClientAddress.Length == 0 || cid.ClientAddress.Family != cid.ServerAddress.Family)
        {
            throw new ArgumentException($"connection id {cid} needs two addresses of one family", paramName);
        }

        return cid;
    }
}
