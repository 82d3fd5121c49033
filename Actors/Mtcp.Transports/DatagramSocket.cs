using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mtcp.Wire;

namespace Mtcp.Transports;

/// <summary>What a transport keeps of one received datagram: the segment inside it, or nothing.</summary>
internal interface IDatagramFilter
{
    /// <summary>
    /// Locates the segment in a datagram just received from <paramref name="source"/> (the socket's sockaddr); false
    /// discards the datagram (not for this address or port, malformed carrier header).
    /// </summary>
    bool TryLocateSegment(ReadOnlySpan<byte> datagram, SocketAddress source, out ReceivedSegment received);
}

/// <summary>
/// How a transport puts each segment of a batch into its datagram for <see cref="DatagramSocket.SendBatch"/>: the socket
/// address, a header of its own in front (raw IPv4's), and what its <see cref="IPacketTransport.Send"/> does after a
/// send failed, so that a segment of a batch meets the same handling as one sent alone.
/// </summary>
internal interface IBatchCarrier
{
    /// <summary>The bytes of the header each datagram starts with before its segment (raw IPv4's 20), 0 for none.</summary>
    int BatchHeaderLength { get; }

    /// <summary>The sockaddr a segment to <paramref name="destination"/> is sent to; valid until the next call.</summary>
    ReadOnlySpan<byte> SocketAddressOf(IpAddress destination);

    /// <summary>Throws as <see cref="IPacketTransport.Send"/> does for a segment it cannot carry (another family's address, too long).</summary>
    /// <exception cref="ObjectDisposedException">the transport was disposed.</exception>
    /// <exception cref="ArgumentException">the segment cannot be carried.</exception>
    void CheckSendable(IpAddress destination, int segmentLength);

    /// <summary>Writes the header of a datagram carrying <paramref name="segmentLength"/> bytes to <paramref name="destination"/>.</summary>
    void WriteBatchHeader(IpAddress destination, int segmentLength, Span<byte> header);

    /// <summary>
    /// What <see cref="IPacketTransport.Send"/> does once its sendmsg(2) failed with <paramref name="errno"/> (another
    /// try that an ICMP error took, a fragmentable send of a segment beyond the MTU); the errno that is left, 0 if sent.
    /// </summary>
    int AfterFailedSend(IpAddress destination, ReadOnlySpan<byte> segment, int errno);
}

/// <summary>
/// The datagram socket under the raw IP (v4 and v6) and UDP transports: their one blocking receive loop (timeout, disposal, ICMP
/// errors, datagrams the transport does not keep) and their one send path, whose errno is sorted into a lost packet
/// (<see cref="SendErrors"/>, counted in <see cref="SendDrops"/>) or a failure of the socket.
/// </summary>
internal sealed class DatagramSocket : IDisposable
{
    /// <summary>The largest datagram either socket can return: an IPv4 packet or a UDP payload of 65,535 bytes.</summary>
    public const int MaxDatagramLength = 65535;

    /// <summary>Room for one socket address of a batch: a sockaddr_in6 (28 bytes) and more.</summary>
    private const int SocketAddressSlot = 32;

    /// <summary>
    /// Datagrams one recvmmsg(2) reads at most: a burst of 46 segments of 1,420 bytes (mtcp.runtime.receive-burst-bytes)
    /// takes three calls. Each slot but the first (the caller's buffer) holds the largest datagram: 960 KiB per socket.
    /// </summary>
    private const int ReadAheadSlots = 16;

    /// <summary>
    /// What one recvmmsg(2) reads at most, counted in datagrams the size of the last: 64 KiB, as GRO merges and as
    /// <c>mtcp.runtime.receive-burst-bytes</c> bounds a burst, so that large datagrams (a loopback MTU's 65,000 bytes) are
    /// read one a call, into the caller's buffer, and not copied again out of a slot.
    /// </summary>
    private const int ReadAheadBytes = 64 * 1024;

    /// <summary>Room for one carrier header of a batch: an IPv4 header without options.</summary>
    public const int MaxBatchHeaderLength = 20;

    private readonly SocketAddress _receiveAddress;
    private readonly string _description;
    private TimeSpan _currentTimeout = Timeout.InfiniteTimeSpan;
    private long _discarded;
    private volatile bool _disposed;
    private volatile bool _errorQueued;
    private bool _drainingErrors;

    // Datagrams one recvmmsg(2) read ahead, handed out from _readAheadNext to _readAheadCount; read by the receiving thread only.
    private byte[] _readAhead = [];
    private byte[] _readAheadAddresses = [];
    private Libc.IoVector[] _readAheadVectors = [];
    private Libc.MultiMessageHeader[] _readAheadMessages = [];
    private int _readAheadNext;
    private int _readAheadCount;

    // Whether the last recvmmsg(2) emptied the queue (it read fewer than it asked for).
    private bool _readAheadFoundEmpty;

    // The length of the last datagram received, which sizes the next read-ahead.
    private int _lastLength = 1;

    // sendmmsg(2)'s messages, their vectors, socket addresses and carrier headers: pinned, reused by every batch.
    private Libc.MultiMessageHeader[] _messages = [];
    private Libc.IoVector[] _vectors = [];
    private byte[] _addresses = [];
    private byte[] _headers = [];

    /// <param name="transportKind">the <c>transport</c> tag of the drop metric: <c>raw</c> or <c>udp</c>.</param>
    /// <param name="description">how errors name the transport, such as <c>raw IPv4 protocol 253 at 10.0.0.1</c>.</param>
    public DatagramSocket(Socket socket, string transportKind, string description)
    {
        Socket = socket;
        _description = description;
        _receiveAddress = new SocketAddress(socket.AddressFamily);
        SendDrops = new SendDropCounters(transportKind);
    }

    public Socket Socket { get; }

    /// <summary>Held by every send: the transports' single sends (with their shared address and header buffers) and batches.</summary>
    public Lock SendLock { get; } = new();

    public bool IsDisposed => _disposed;

    /// <summary>Datagrams received but not returned because the filter refused them.</summary>
    public long Discarded => Interlocked.Read(ref _discarded);

    public SendDropCounters SendDrops { get; }

    /// <summary>
    /// Whether the socket keeps ICMP errors on its error queue (IP_RECVERR / IPV6_RECVERR, set by its transport): a
    /// receive that meets the error the kernel raises with each of them (sk_err, what poll(2) reports as POLLERR) then
    /// returns <see cref="ReceiveOutcome.ErrorQueued"/> for <see cref="TryReceiveQueuedError"/> to read the queue.
    /// </summary>
    public bool ReadsErrorQueue { get; init; }

    /// <summary>
    /// Notes that the error queue holds an entry no receive was woken for: a send took the error the kernel raised with
    /// it, or the local host refused a send (its record, SO_EE_ORIGIN_LOCAL, raises no error).
    /// </summary>
    public void ErrorQueued() => _errorQueued = true;

    /// <summary>
    /// <see cref="IPacketTransport.Receive"/> for both transports: blocks until <paramref name="filter"/> keeps a datagram,
    /// the timeout passes or the socket is disposed. Allocates nothing per datagram.
    /// </summary>
    public ReceiveOutcome Receive(IDatagramFilter filter, Span<byte> buffer, TimeSpan timeout, out ReceivedSegment received)
    {
        if (buffer.Length < MaxDatagramLength)
        {
            throw new ArgumentException($"the receive buffer needs {MaxDatagramLength} bytes, got {buffer.Length}", nameof(buffer));
        }

        received = default;
        if (_disposed)
        {
            return ReceiveOutcome.Closed;
        }

        // Datagrams the last recvmmsg(2) read ahead come first: they arrived before anything still queued in the socket.
        if (TryTakeReadAhead(filter, buffer, out received))
        {
            return ReceiveOutcome.Received;
        }

        // What arrives while this receive blocks is not known to be absent: the next burst reads it.
        _readAheadFoundEmpty = false;
        SetTimeout(Socket, timeout, ref _currentTimeout);
        var deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            int length;
            try
            {
                length = Socket.ReceiveFrom(buffer, SocketFlags.None, _receiveAddress);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                return ReceiveOutcome.TimedOut;
            }
            catch (Exception e) when (_disposed && e is SocketException or ObjectDisposedException)
            {
                return ReceiveOutcome.Closed;
            }
            catch (SocketException) when (ReadsErrorQueue && !_disposed)
            {
                // An ICMP error about an earlier datagram, raised once (sk_err) and kept on the error queue: the caller reads it.
                _errorQueued = true;
                return ReceiveOutcome.ErrorQueued;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused)
            {
                // An ICMP error (port unreachable) for an earlier datagram: no datagram now, and the socket is still usable.
                length = -1;
            }

            if (_disposed)
            {
                return ReceiveOutcome.Closed;
            }

            if (length >= 0)
            {
                _lastLength = length;
                if (filter.TryLocateSegment(buffer[..length], _receiveAddress, out received))
                {
                    return ReceiveOutcome.Received;
                }

                Interlocked.Increment(ref _discarded);
            }

            if (Environment.TickCount64 >= deadline)
            {
                return ReceiveOutcome.TimedOut;
            }
        }
    }

    /// <summary>
    /// <see cref="IPacketTransport.TryReceiveWaiting"/> for both transports: a datagram <paramref name="filter"/> keeps, if
    /// one is already queued, else false at once; never blocks. The queued datagrams are read with one recvmmsg(2) with
    /// MSG_DONTWAIT for several of them, the first straight into <paramref name="buffer"/> and the others ahead into
    /// slots of the socket's, handed out one per call; so a burst of n small datagrams costs about
    /// n / <see cref="ReadAheadSlots"/> + 1 system calls, where one recvfrom(2) each cost a system call's entry and exit per
    /// datagram, on this kind of virtual machine a large part of a segment's cost (and asking FIONREAD first, before
    /// that, a second one). A datagram read ahead is copied once more, out of its slot: so a call reads ahead about
    /// <see cref="ReadAheadBytes"/> at most, by the size of the last datagram, and a large one goes alone, uncopied.
    /// </summary>
    public bool TryReceiveWaiting(IDatagramFilter filter, Span<byte> buffer, out ReceivedSegment received)
    {
        received = default;
        while (!_disposed)
        {
            if (TryTakeReadAhead(filter, buffer, out received))
            {
                return true;
            }

            if (_readAheadFoundEmpty)
            {
                // The last recvmmsg(2) read fewer than it asked for: the queue was empty then, and what came since waits
                // for the next blocking receive, which saves each burst a call that would only say so.
                _readAheadFoundEmpty = false;
                return false;
            }

            int read;
            try
            {
                read = ReadAhead(buffer);
            }
            catch (ObjectDisposedException) when (_disposed)
            {
                return false;
            }

            if (read == 0)
            {
                // Nothing queued, an ICMP error for an earlier datagram, or the socket closing: the next blocking receive carries on.
                return false;
            }

            // The first datagram is in the buffer already.
            if (TryKeep(filter, buffer, 0, out received))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The next datagram read ahead that <paramref name="filter"/> keeps, copied into <paramref name="buffer"/> with its
    /// source in the receive address; false once none is left (those the filter refuses are counted in <see cref="Discarded"/>).
    /// </summary>
    private bool TryTakeReadAhead(IDatagramFilter filter, Span<byte> buffer, out ReceivedSegment received)
    {
        while (_readAheadNext < _readAheadCount)
        {
            var message = _readAheadNext++;
            _readAhead.AsSpan((message - 1) * MaxDatagramLength, (int)_readAheadMessages[message].Length).CopyTo(buffer);
            if (TryKeep(filter, buffer, message, out received))
            {
                return true;
            }
        }

        received = default;
        return false;
    }

    /// <summary>Message <paramref name="message"/> of the last recvmmsg(2), its datagram now at the start of <paramref name="buffer"/>, if the filter keeps it.</summary>
    private bool TryKeep(IDatagramFilter filter, Span<byte> buffer, int message, out ReceivedSegment received)
    {
        var length = (int)_readAheadMessages[message].Length;
        _lastLength = length;
        var addressLength = (int)_readAheadMessages[message].Header.NameLength;
        _readAheadAddresses.AsSpan(message * SocketAddressSlot, addressLength).CopyTo(_receiveAddress.Buffer.Span);
        _receiveAddress.Size = addressLength;
        if (filter.TryLocateSegment(buffer[..length], _receiveAddress, out received))
        {
            return true;
        }

        Interlocked.Increment(ref _discarded);
        return false;
    }

    /// <summary>
    /// recvmmsg(2) with MSG_DONTWAIT of what is queued: the first datagram into <paramref name="buffer"/>, then up to
    /// <see cref="ReadAheadSlots"/> - 1 more into the read-ahead slots (pinned, allocated at the first call, each as large
    /// as a datagram can be, so that none is cut), as many as <see cref="ReadAheadBytes"/> holds of datagrams the size
    /// of the last one; the number read, 0 when none was.
    /// </summary>
    private unsafe int ReadAhead(Span<byte> buffer)
    {
        if (_readAhead.Length == 0)
        {
            AllocateReadAhead();
        }

        var wanted = Math.Clamp(ReadAheadBytes / Math.Max(1, _lastLength), 1, ReadAheadSlots);
        fixed (byte* first = buffer)
        fixed (Libc.MultiMessageHeader* messages = _readAheadMessages)
        {
            _readAheadVectors[0] = new Libc.IoVector { Base = first, Length = (nuint)buffer.Length };
            while (true)
            {
                for (var i = 0; i < wanted; i++)
                {
                    // The kernel overwrites each name length with the source's: give each the whole slot again.
                    messages[i].Header.NameLength = SocketAddressSlot;
                    messages[i].Header.Flags = 0;
                }

                var count = Libc.ReceiveMultipleMessages(Socket.SafeHandle, messages, (uint)wanted, Libc.MsgDontwait, null);
                if (count > 0)
                {
                    // Message 0 is handed out by the caller now; the pointer to the caller's buffer is not used again.
                    _readAheadNext = 1;
                    _readAheadCount = count;
                    _readAheadFoundEmpty = count < wanted;
                    return count;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (count < 0 && errno == Libc.Eintr)
                {
                    continue;
                }

                if (count < 0 && errno != Libc.Eagain && ReadsErrorQueue)
                {
                    // The error an ICMP message raised, taken by this receive: its entry waits on the error queue.
                    _errorQueued = true;
                }

                return 0;
            }
        }
    }

    private unsafe void AllocateReadAhead()
    {
        _readAhead = GC.AllocateUninitializedArray<byte>((ReadAheadSlots - 1) * MaxDatagramLength, pinned: true);
        _readAheadAddresses = GC.AllocateUninitializedArray<byte>(ReadAheadSlots * SocketAddressSlot, pinned: true);
        _readAheadVectors = GC.AllocateArray<Libc.IoVector>(ReadAheadSlots, pinned: true);
        _readAheadMessages = GC.AllocateArray<Libc.MultiMessageHeader>(ReadAheadSlots, pinned: true);

        // Pinned arrays: these pointers stay valid for the socket's lifetime. Message 0's vector is set per call.
        fixed (byte* slots = _readAhead)
        fixed (byte* addresses = _readAheadAddresses)
        fixed (Libc.IoVector* vectors = _readAheadVectors)
        {
            for (var i = 0; i < ReadAheadSlots; i++)
            {
                if (i > 0)
                {
                    vectors[i] = new Libc.IoVector { Base = slots + ((i - 1) * MaxDatagramLength), Length = MaxDatagramLength };
                }

                _readAheadMessages[i].Header = new Libc.MessageHeader { Name = addresses + (i * SocketAddressSlot), NameLength = SocketAddressSlot, Vectors = vectors + i, VectorCount = 1 };
            }
        }
    }

    /// <summary>
    /// One entry of the error queue, if an error was noted since the queue was last found empty (no system call
    /// otherwise): recvmsg(2) with MSG_ERRQUEUE and MSG_DONTWAIT, its data (what the ICMP message quoted after the UDP
    /// header) into <paramref name="buffer"/>, its socket address (the quoted destination) into
    /// <paramref name="socketAddress"/>, its control messages into <paramref name="control"/>. False once the queue is
    /// empty; an error raised after that notes the queue again. A caller that stops before that resumes where it
    /// stopped on its next call. For the receiving thread only.
    /// </summary>
    public unsafe bool TryReceiveQueuedError(Span<byte> buffer, SocketAddress socketAddress, Span<byte> control, out int dataLength, out int controlLength)
    {
        dataLength = controlLength = 0;
        if (!_drainingErrors)
        {
            if (!_errorQueued || _disposed)
            {
                return false;
            }

            // Cleared before reading: an error raised while the queue is read notes it again.
            _errorQueued = false;
            _drainingErrors = true;
        }

        var address = socketAddress.Buffer.Span;
        fixed (byte* data = buffer)
        fixed (byte* name = address)
        fixed (byte* controlBytes = control)
        {
            var vector = new Libc.IoVector { Base = data, Length = (nuint)buffer.Length };
            while (true)
            {
                var message = new Libc.MessageHeader
                {
                    Name = name,
                    NameLength = (uint)address.Length,
                    Vectors = &vector,
                    VectorCount = 1,
                    Control = controlBytes,
                    ControlLength = (nuint)control.Length,
                };
                nint length;
                try
                {
                    length = Libc.ReceiveMessage(Socket.SafeHandle, &message, Libc.MsgErrqueue | Libc.MsgDontwait);
                }
                catch (ObjectDisposedException) when (_disposed)
                {
                    length = -1;
                }

                if (length >= 0)
                {
                    socketAddress.Size = (int)message.NameLength;
                    dataLength = (int)length;
                    controlLength = (int)message.ControlLength;
                    return true;
                }

                if (length < 0 && Marshal.GetLastPInvokeError() == Libc.Eintr && !_disposed)
                {
                    continue;
                }

                _drainingErrors = false;
                return false;
            }
        }
    }

    /// <summary>One sendmsg(2) of <paramref name="header"/> (possibly empty) and <paramref name="payload"/> to the sockaddr <paramref name="address"/>; 0 or the errno.</summary>
    /// <exception cref="ObjectDisposedException">the socket was disposed.</exception>
    public unsafe int SendTo(ReadOnlySpan<byte> address, ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        fixed (byte* name = address)
        fixed (byte* first = header)
        fixed (byte* second = payload)
        {
            var vectors = stackalloc Libc.IoVector[2];
            var count = 0;
            if (!header.IsEmpty)
            {
                vectors[count++] = new Libc.IoVector { Base = first, Length = (nuint)header.Length };
            }

            vectors[count++] = new Libc.IoVector { Base = second, Length = (nuint)payload.Length };
            var message = new Libc.MessageHeader { Name = name, NameLength = (uint)address.Length, Vectors = vectors, VectorCount = (nuint)count };
            while (true)
            {
                // The SafeHandle keeps the descriptor open for the call: a concurrent Dispose cannot hand its number to another socket.
                if (Libc.SendMessage(Socket.SafeHandle, &message, 0) >= 0)
                {
                    return 0;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.Eintr)
                {
                    return errno;
                }
            }
        }
    }

    /// <summary>
    /// <see cref="IPacketTransport.SendBatch"/> for the transports: the batch's segments in order with one sendmmsg(2) per
    /// <see cref="Libc.UioMaxiov"/> of them, each datagram gathered from its carrier header (if any) and its segment in
    /// the batch, under <see cref="SendLock"/>; nothing is sent when a segment cannot be carried at all
    /// (<see cref="IBatchCarrier.CheckSendable"/>). A segment that failed first in a call gets its errno and
    /// the handling <paramref name="carrier"/>'s single send gives it. One that failed after others went in the same
    /// call is counted lost (<see cref="SendDropReason.StoppedBatch"/>) and not tried again: the kernel keeps its errno
    /// to itself, and another try would give a firewall's random drop a second chance, so a rule dropping a share of
    /// packets would drop less than its share. Its connection retransmits it, as any loss.
    /// </summary>
    /// <returns>the segments dropped locally.</returns>
    /// <exception cref="ObjectDisposedException">the socket was disposed.</exception>
    /// <exception cref="PacketBatchException">the socket could not send some segments at all; the others were tried.</exception>
    public int SendBatch(SegmentBatch batch, IBatchCarrier carrier)
    {
        ArgumentNullException.ThrowIfNull(batch);
        for (var i = 0; i < batch.Count; i++)
        {
            carrier.CheckSendable(batch.DestinationAt(i), batch.SegmentAt(i).Length);
        }

        lock (SendLock)
        {
            return SendBatchLocked(batch, carrier);
        }
    }

    private unsafe int SendBatchLocked(SegmentBatch batch, IBatchCarrier carrier)
    {
        var dropped = 0;
        var failed = 0;
        var firstFailure = 0;
        var headerLength = carrier.BatchHeaderLength;
        for (var first = 0; first < batch.Count; first += Libc.UioMaxiov)
        {
            var count = Math.Min(batch.Count - first, Libc.UioMaxiov);
            PrepareMessages(batch, first, count, carrier, headerLength);
            fixed (Libc.MultiMessageHeader* messages = _messages)
            {
                var next = 0;
                while (next < count)
                {
                    var sent = Libc.SendMultipleMessages(Socket.SafeHandle, messages + next, (uint)(count - next), 0);
                    if (sent > 0)
                    {
                        next += sent;
                        if (next < count)
                        {
                            // The kernel stopped at this one and kept its errno; it may be an ICMP error it took for the queue.
                            SendDrops.Record(SendDropReason.StoppedBatch, 0);
                            dropped++;
                            next++;
                            if (ReadsErrorQueue)
                            {
                                _errorQueued = true;
                            }
                        }

                        continue;
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == Libc.Eintr)
                    {
                        continue;
                    }

                    var index = first + next;
                    errno = carrier.AfterFailedSend(batch.DestinationAt(index), batch.SegmentAt(index), errno);
                    if (errno != 0)
                    {
                        if (SendErrors.IsLoss(errno, out var reason))
                        {
                            SendDrops.Record(reason, errno);
                            dropped++;
                        }
                        else
                        {
                            ObjectDisposedException.ThrowIf(_disposed, this);
                            firstFailure = failed++ == 0 ? errno : firstFailure;
                        }
                    }

                    next++;
                }
            }
        }

        return failed == 0 ? dropped
            : throw SegmentBatch.Failed(_description, failed, dropped, batch.Count, $"sendmmsg failed: {Marshal.GetPInvokeErrorMessage(firstFailure)} ({SendErrors.Name(firstFailure)})");
    }

    /// <summary>
    /// The msghdrs of segments <paramref name="first"/>..+<paramref name="count"/> of the batch, in arrays pinned for the
    /// socket's lifetime (grown to the largest batch sent, at most <see cref="Libc.UioMaxiov"/> messages).
    /// </summary>
    private unsafe void PrepareMessages(SegmentBatch batch, int first, int count, IBatchCarrier carrier, int headerLength)
    {
        if (_messages.Length < count)
        {
            var capacity = Math.Min(Libc.UioMaxiov, Math.Max(count, 2 * _messages.Length));
            _messages = GC.AllocateArray<Libc.MultiMessageHeader>(capacity, pinned: true);
            _vectors = GC.AllocateArray<Libc.IoVector>(2 * capacity, pinned: true);
            _addresses = GC.AllocateUninitializedArray<byte>(capacity * SocketAddressSlot, pinned: true);
            _headers = GC.AllocateUninitializedArray<byte>(capacity * MaxBatchHeaderLength, pinned: true);
        }

        // Every array is pinned (the pinned object heap): these pointers outlive the fixed statements.
        fixed (byte* bytes = batch.PinnedBytes)
        fixed (byte* addresses = _addresses)
        fixed (byte* headers = _headers)
        fixed (Libc.IoVector* vectors = _vectors)
        {
            for (var i = 0; i < count; i++)
            {
                var index = first + i;
                var destination = batch.DestinationAt(index);
                var segmentLength = batch.SegmentAt(index).Length;
                var address = carrier.SocketAddressOf(destination);
                address.CopyTo(_addresses.AsSpan(i * SocketAddressSlot, SocketAddressSlot));
                var vector = vectors + (2 * i);
                var vectorCount = 0;
                if (headerLength > 0)
                {
                    carrier.WriteBatchHeader(destination, segmentLength, _headers.AsSpan(i * MaxBatchHeaderLength, headerLength));
                    vector[vectorCount++] = new Libc.IoVector { Base = headers + (i * MaxBatchHeaderLength), Length = (nuint)headerLength };
                }

                vector[vectorCount++] = new Libc.IoVector { Base = bytes + batch.OffsetAt(index), Length = (nuint)segmentLength };
                _messages[i] = new Libc.MultiMessageHeader
                {
                    Header = new Libc.MessageHeader { Name = addresses + (i * SocketAddressSlot), NameLength = (uint)address.Length, Vectors = vector, VectorCount = (nuint)vectorCount },
                };
            }
        }
    }

    /// <summary>
    /// What <see cref="IPacketTransport.Send"/> returns for a send that ended with <paramref name="errno"/>: true when sent,
    /// false when the packet was lost locally (counted in <see cref="SendDrops"/>).
    /// </summary>
    /// <exception cref="PacketTransportException">the socket cannot send at all (EBADF, ENOTSOCK, EINVAL, ...).</exception>
    public bool Sent(int errno)
    {
        if (errno == 0)
        {
            return true;
        }

        if (SendErrors.IsLoss(errno, out var reason))
        {
            SendDrops.Record(reason, errno);
            return false;
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
        throw new PacketTransportException($"sendmsg on {_description} failed: {Marshal.GetPInvokeErrorMessage(errno)} ({SendErrors.Name(errno)})");
    }

    /// <summary>
    /// Sets SO_RCVTIMEO on <paramref name="socket"/> to <paramref name="timeout"/> unless <paramref name="current"/>
    /// already holds it (a system call saved per receive); shared with the transports' other blocking sockets.
    /// </summary>
    internal static void SetTimeout(Socket socket, TimeSpan timeout, ref TimeSpan current)
    {
        if (timeout == current)
        {
            return;
        }

        // SO_RCVTIMEO: 0 means wait forever, so a zero timeout is rounded up to one millisecond.
        socket.ReceiveTimeout = timeout == Timeout.InfiniteTimeSpan ? 0 : Math.Max(1, (int)Math.Ceiling(timeout.TotalMilliseconds));
        current = timeout;
    }

    /// <summary>setsockopt(2) of an int option the Socket class does not name (IP_MTU_DISCOVER, IP_RECVERR, IPV6_DONTFRAG, ...).</summary>
    /// <exception cref="SocketException">the kernel refused it.</exception>
    internal static void SetOption(Socket socket, int level, int option, int value)
    {
        Span<byte> bytes = stackalloc byte[sizeof(int)];
        MemoryMarshal.Write(bytes, value);
        socket.SetRawSocketOption(level, option, bytes);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Socket.Dispose();
    }

    public override string ToString() => _description;
}
