using Mtcp.Stack;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.TestKit;

/// <summary>
/// The control connections between cooperating servers (thesis 4.2.3) in the simulator: every message is encoded with
/// the control codec, carried with a latency in FIFO order per pair of servers (as one TCP control connection would),
/// and decoded again at the far end. It is a node of the <see cref="SimNetwork"/> only for its timer; it carries no
/// packets. Tests can hold back messages of one type to provoke timeouts.
/// </summary>
public sealed class ControlChannel : ISimNode
{
    private readonly Dictionary<IpAddress, MtcpServerNode> _servers = [];
    private readonly PriorityQueue<(IpAddress From, IpAddress To, byte[] Frame), (Instant At, long Order)> _inFlight = new();
    private readonly Dictionary<(IpAddress, IpAddress), Instant> _lastArrival = [];
    private long _order;

    public ControlChannel(IpAddress address, TimeSpan latency)
    {
        Address = address;
        Latency = latency;
    }

    public IpAddress Address { get; }

    public TimeSpan Latency { get; set; }

    /// <summary>Messages of these types are dropped on send (a stalled or partitioned origin).</summary>
    public HashSet<ControlMessageType> Withheld { get; } = [];

    /// <summary>Every message carried, decoded, in delivery order (for tests that inspect the state transfer).</summary>
    public List<(IpAddress From, IpAddress To, ControlMessage Message)> Delivered { get; } = [];

    public long MessagesCarried { get; private set; }

    public long BytesCarried { get; private set; }

    public int LargestFrame { get; private set; }

    public void Attach(MtcpServerNode server) => _servers.Add(server.Address, server);

    public void Send(Instant now, IpAddress from, IpAddress to, ControlMessage message)
    {
        if (Withheld.Contains(message.MessageType) || !_servers.ContainsKey(to))
        {
            return;
        }

        var frame = message.ToArray();
        MessagesCarried++;
        BytesCarried += frame.Length;
        LargestFrame = Math.Max(LargestFrame, frame.Length);

        // One control connection per pair: messages arrive in the order they were sent.
        var at = now + Latency;
        if (_lastArrival.TryGetValue((from, to), out var last) && last > at)
        {
            at = last;
        }

        _lastArrival[(from, to)] = at;
        _inFlight.Enqueue((from, to, frame), (at, _order++));
    }

    public void Receive(Instant now, in SimPacket packet)
    {
    }

    public bool PollTransmit(Instant now, out SimPacket packet)
    {
        packet = default;
        return false;
    }

    public Instant? PollTimeout() => _inFlight.TryPeek(out _, out var due) ? due.At : null;

    public void HandleTimeout(Instant now)
    {
        while (_inFlight.TryPeek(out var item, out var due) && due.At <= now)
        {
            _inFlight.Dequeue();
            if (!ControlMessageCodec.TryDecode(item.Frame, out var message, out var error))
            {
                throw new InvalidOperationException($"control frame failed to decode: {error}");
            }

            Delivered.Add((item.From, item.To, message));
            _servers[item.To].HandleControl(now, item.From, message);
        }
    }
}
