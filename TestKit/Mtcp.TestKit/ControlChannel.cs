using System.Text;
using Mtcp.Stack;
using Mtcp.Stack.Migration.Authentication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.TestKit;

/// <summary>
/// The control connections between cooperating servers (thesis 4.2.3) in the simulator: every message is encoded with
/// the control codec and sealed with the sending server's cluster key (<see cref="ControlMessageSealing"/>), carried
/// with a latency in FIFO order per pair of servers (as one TCP control connection would), and opened and decoded
/// again at the far end; an envelope that does not open is dropped and recorded in <see cref="Rejected"/>. It is a node of the <see cref="SimNetwork"/> only for its timer; it carries no
/// packets. Tests can hold back messages of one type to provoke timeouts.
/// </summary>
public sealed class ControlChannel : ISimNode
{
    private readonly Dictionary<IpAddress, SimulatedServerNode> _servers = [];
    private readonly PriorityQueue<(IpAddress From, IpAddress To, byte[] Envelope), (Instant At, long Order)> _inFlight = new();
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

    /// <summary>Envelopes dropped at their receiver, with the reason (forged, altered, replayed on another pair).</summary>
    public List<(IpAddress From, IpAddress To, ControlOpenResult Result)> Rejected { get; } = [];

    public long MessagesCarried { get; private set; }

    public long BytesCarried { get; private set; }

    public int LargestFrame { get; private set; }

    public void Attach(SimulatedServerNode server) => _servers.Add(server.Address, server);

    /// <summary>True when <paramref name="server"/> crashed and is not back: its control connections are broken.</summary>
    public bool IsDown(IpAddress server) => _servers.TryGetValue(server, out var node) && node.IsDown;

    public void Send(Instant now, IpAddress from, IpAddress to, ControlMessage message)
    {
        if (Withheld.Contains(message.MessageType) || !_servers.TryGetValue(to, out var receiver) || receiver.IsDown)
        {
            return;
        }

        LargestFrame = Math.Max(LargestFrame, message.GetEncodedLength());
        Carry(now, from, to, ControlMessageSealing.Seal(_servers[from].Host.Authenticator, message, Identity(from), Identity(to)));
    }

    /// <summary>Puts raw envelope bytes on the control connection from <paramref name="from"/> to <paramref name="to"/>: what an attacker who reaches it could do.</summary>
    public void Inject(Instant now, IpAddress from, IpAddress to, byte[] envelope) => Carry(now, from, to, envelope);

    /// <summary>The identity a server's control messages are bound to: its service address.</summary>
    public static byte[] Identity(IpAddress server) => Encoding.UTF8.GetBytes(server.ToString());

    private void Carry(Instant now, IpAddress from, IpAddress to, byte[] envelope)
    {
        MessagesCarried++;
        BytesCarried += envelope.Length;

        // One control connection per pair: messages arrive in the order they were sent.
        var at = now + Latency;
        if (_lastArrival.TryGetValue((from, to), out var last) && last > at)
        {
            at = last;
        }

        _lastArrival[(from, to)] = at;
        _inFlight.Enqueue((from, to, envelope), (at, _order++));
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
            var receiver = _servers[item.To];
            if (receiver.IsDown || _servers[item.From].IsDown)
            {
                // A crashed node's control connections die with it, and what was on them.
                continue;
            }

            var result = ControlMessageSealing.TryOpen(receiver.Host.Authenticator, item.Envelope, Identity(item.From), Identity(item.To), out var message);
            if (result == ControlOpenResult.MalformedFrame)
            {
                throw new InvalidOperationException("an authenticated control frame failed to decode");
            }

            if (message is null)
            {
                Rejected.Add((item.From, item.To, result));
                continue;
            }

            Delivered.Add((item.From, item.To, message));
            receiver.HandleControl(now, item.From, message);
        }
    }
}
