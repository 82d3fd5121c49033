using System.Buffers.Binary;

namespace Mtcp.Wire.Control;

/// <summary>
/// A forward cursor over an untrusted body. Every read checks the remaining length first, so a decoder
/// built on it cannot read out of range; a failed read leaves the cursor where it was.
/// </summary>
internal ref struct ControlReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private int _position;

    public ControlReader(ReadOnlySpan<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    public readonly int Remaining => _buffer.Length - _position;

    public bool TryReadByte(out byte value)
    {
        if (Remaining < 1)
        {
            value = 0;
            return false;
        }

        value = _buffer[_position];
        _position += 1;
        return true;
    }

    public bool TryReadUInt16(out ushort value)
    {
        if (Remaining < 2)
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt16BigEndian(_buffer[_position..]);
        _position += 2;
        return true;
    }

    public bool TryReadUInt32(out uint value)
    {
        if (Remaining < 4)
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt32BigEndian(_buffer[_position..]);
        _position += 4;
        return true;
    }

    public bool TryReadSeqNumber(out SeqNumber value)
    {
        var ok = TryReadUInt32(out var raw);
        value = new SeqNumber(raw);
        return ok;
    }

    /// <summary>Takes <paramref name="length"/> bytes; false when fewer remain (the length is untrusted).</summary>
    public bool TryReadBytes(uint length, out ReadOnlySpan<byte> bytes)
    {
        if (length > (uint)Remaining)
        {
            bytes = default;
            return false;
        }

        bytes = _buffer.Slice(_position, (int)length);
        _position += (int)length;
        return true;
    }

    /// <summary>Reads a connection id in the layout of <see cref="ControlWriter.WriteConnectionId"/>.</summary>
    public bool TryReadConnectionId(out ConnectionId cid, out ControlWireError error)
    {
        cid = default;
        if (!TryReadByte(out var family))
        {
            error = ControlWireError.Truncated;
            return false;
        }

        int addressLength;
        if (family == ControlWriter.AddressFamilyIPv4)
        {
            addressLength = IpAddress.V4Length;
        }
        else if (family == ControlWriter.AddressFamilyIPv6)
        {
            addressLength = IpAddress.V6Length;
        }
        else
        {
            error = ControlWireError.BadAddressFamily;
            return false;
        }

        if (Remaining < (2 * addressLength) + 4)
        {
            error = ControlWireError.Truncated;
            return false;
        }

        TryReadBytes((uint)addressLength, out var clientAddressBytes);
        TryReadUInt16(out var clientPort);
        TryReadBytes((uint)addressLength, out var serverAddressBytes);
        TryReadUInt16(out var serverPort);
        var clientAddress = addressLength == IpAddress.V4Length ? IpAddress.FromIPv4(clientAddressBytes) : IpAddress.FromIPv6(clientAddressBytes);
        var serverAddress = addressLength == IpAddress.V4Length ? IpAddress.FromIPv4(serverAddressBytes) : IpAddress.FromIPv6(serverAddressBytes);
        cid = new ConnectionId(clientAddress, clientPort, serverAddress, serverPort);
        error = ControlWireError.None;
        return true;
    }
}
