using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>A segment the engine emitted, with its payload copied out.</summary>
internal readonly record struct Emitted(TcpSegmentRepr Header, byte[] Payload)
{
    public SeqNumber Seq => Header.SequenceNumber;

    public SeqNumber Ack => Header.AcknowledgmentNumber;

    public TcpFlags Flags => Header.Flags;

    public override string ToString() => $"seq={Seq} ack={Ack} {Flags} win={Header.Window} len={Payload.Length}";
}

/// <summary>
/// Drives one <see cref="TcpConnection"/> by hand, playing the remote end segment by segment (smoltcp's test style).
/// Sequence numbers start just below 2^32 so every test also crosses the wrap.
/// </summary>
internal sealed class ScriptedPeer
{
    public const ushort LocalPort = 80;
    public const ushort RemotePort = 49500;

    /// <summary>Our ISS: 256 below the wrap, so the first KB of data crosses 2^32.</summary>
    public static readonly SeqNumber LocalIss = new(0xFFFF_FF00);

    /// <summary>The remote ISS: 16 below the wrap.</summary>
    public static readonly SeqNumber RemoteIss = new(0xFFFF_FFF0);

    private readonly byte[] _payload = new byte[65536];

    public ScriptedPeer(TcpConnection connection, Instant now)
    {
        Connection = connection;
        Now = now;
    }

    public TcpConnection Connection { get; }

    public Instant Now { get; set; }

    /// <summary>The remote's next sequence number (what it would send next).</summary>
    public SeqNumber RemoteNext { get; set; } = RemoteIss + 1;

    /// <summary>
    /// Config used by the fixtures: small buffers, scaling offered, delayed ACK on, NewReno's avoidance so that the
    /// scripted windows follow RFC 5681's arithmetic (CUBIC has its own tests).
    /// </summary>
    public static TcpConfig DefaultConfig { get; } = TcpConfig.Default with
    {
        CongestionControl = CongestionControlAlgorithm.NewReno,
        MaxSegmentSize = 1000,
        SendBufferSize = 64 * 1024,
        ReceiveBufferSize = 64 * 1024,
        WindowScaleShift = 2,
    };

    public TcpState State => Connection.State;

    /// <summary>A segment from the remote end, ports filled in.</summary>
    public static TcpSegmentRepr Segment(TcpFlags flags, SeqNumber seq, SeqNumber ack = default, ushort window = 16384, TcpOptions options = default) => new()
    {
        SourcePort = RemotePort,
        DestinationPort = LocalPort,
        SequenceNumber = seq,
        AcknowledgmentNumber = ack,
        Flags = flags,
        Window = window,
        Options = options,
    };

    public void Send(TcpSegmentRepr segment, byte[]? payload = null) => Connection.HandleSegment(Now, segment, payload ?? []);

    /// <summary>Sends data from the remote at <see cref="RemoteNext"/> acknowledging <paramref name="ack"/>, and advances RemoteNext.</summary>
    public void SendData(byte[] payload, SeqNumber ack, ushort window = 16384, TcpFlags extra = TcpFlags.None)
    {
        Send(Segment(TcpFlags.Ack | extra, RemoteNext, ack, window), payload);
        RemoteNext += payload.Length + ((extra & TcpFlags.Fin) != 0 ? 1 : 0);
    }

    /// <summary>Every segment the engine wants to send now.</summary>
    public List<Emitted> Drain()
    {
        var list = new List<Emitted>();
        while (Connection.PollTransmit(Now, _payload, out var header, out var length))
        {
            list.Add(new Emitted(header, _payload.AsSpan(0, length).ToArray()));
            Assert.True(list.Count < 10_000, "PollTransmit never returned false");
        }

        return list;
    }

    /// <summary>Asserts exactly one segment is pending and returns it.</summary>
    public Emitted Single()
    {
        var list = Drain();
        Assert.True(list.Count == 1, $"expected one segment, got {list.Count}: {string.Join("; ", list)}");
        return list[0];
    }

    public void AssertSilent()
    {
        var list = Drain();
        Assert.True(list.Count == 0, $"expected no segment, got: {string.Join("; ", list)}");
    }

    public List<TcpEvent> Events()
    {
        var list = new List<TcpEvent>();
        while (Connection.PollEvent(out var e))
        {
            list.Add(e);
        }

        return list;
    }

    /// <summary>Moves the clock to the next deadline and fires it; returns that deadline.</summary>
    public Instant FireNextTimer()
    {
        var deadline = Connection.PollTimeout();
        Assert.True(deadline.HasValue, "no timer armed");
        Now = Instant.Max(Now, deadline.Value);
        Connection.HandleTimeout(Now);
        return deadline.Value;
    }

    // ---- Fixtures: each drives a fresh connection to one state by a scripted exchange. ----

    public static ScriptedPeer Listen(TcpConfig? config = null) =>
        new(TcpConnection.Listen(config ?? DefaultConfig, LocalPort, LocalIss), Instant.FromMilliseconds(1000));

    public static ScriptedPeer SynSent(TcpConfig? config = null)
    {
        var now = Instant.FromMilliseconds(1000);
        var peer = new ScriptedPeer(TcpConnection.Connect(config ?? DefaultConfig, LocalPort, RemotePort, LocalIss, now), now);
        var syn = peer.Single();
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        return peer;
    }

    /// <summary>Passive open: LISTEN, then the remote's SYN (MSS 1000, WS 3) and our SYN,ACK.</summary>
    public static ScriptedPeer SynReceived(TcpConfig? config = null)
    {
        var peer = Listen(config);
        peer.Send(Segment(TcpFlags.Syn, RemoteIss, window: 20000, options: new TcpOptions { MaxSegmentSize = 1000, WindowScale = 3 }));
        var synAck = peer.Single();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        return peer;
    }

    /// <summary>Active open completed: our SYN, the remote's SYN,ACK (MSS 1000, WS 3), our ACK.</summary>
    public static ScriptedPeer Established(TcpConfig? config = null)
    {
        var peer = SynSent(config);
        peer.Send(Segment(TcpFlags.Syn | TcpFlags.Ack, RemoteIss, LocalIss + 1, window: 20000, options: new TcpOptions { MaxSegmentSize = 1000, WindowScale = 3 }));
        var ack = peer.Single();
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal([TcpEvent.Connected], peer.Events());
        return peer;
    }

    /// <summary>ESTABLISHED, then Close: our FIN is out, unacknowledged.</summary>
    public static ScriptedPeer FinWait1(TcpConfig? config = null)
    {
        var peer = Established(config);
        peer.Connection.Close(peer.Now);
        var fin = peer.Single();
        Assert.Equal(TcpFlags.Fin | TcpFlags.Ack, fin.Flags);
        return peer;
    }

    /// <summary>FIN-WAIT-1, then the remote acknowledges our FIN.</summary>
    public static ScriptedPeer FinWait2(TcpConfig? config = null)
    {
        var peer = FinWait1(config);
        peer.Send(Segment(TcpFlags.Ack, peer.RemoteNext, LocalIss + 2, window: 2500));
        peer.AssertSilent();
        return peer;
    }

    /// <summary>FIN-WAIT-1, then the remote's own FIN crosses ours (simultaneous close).</summary>
    public static ScriptedPeer Closing(TcpConfig? config = null)
    {
        var peer = FinWait1(config);
        peer.SendData([], LocalIss + 1, window: 2500, extra: TcpFlags.Fin);
        Assert.Equal(TcpFlags.Ack, peer.Single().Flags);
        return peer;
    }

    /// <summary>FIN-WAIT-2, then the remote's FIN, which we acknowledge.</summary>
    public static ScriptedPeer TimeWait(TcpConfig? config = null)
    {
        var peer = FinWait2(config);
        peer.SendData([], LocalIss + 2, window: 2500, extra: TcpFlags.Fin);
        Assert.Equal(TcpFlags.Ack, peer.Single().Flags);
        return peer;
    }

    /// <summary>ESTABLISHED, then the remote's FIN, which we acknowledge at once.</summary>
    public static ScriptedPeer CloseWait(TcpConfig? config = null)
    {
        var peer = Established(config);
        peer.SendData([], LocalIss + 1, window: 2500, extra: TcpFlags.Fin);
        Assert.Equal(TcpFlags.Ack, peer.Single().Flags);
        return peer;
    }

    /// <summary>CLOSE-WAIT, then Close: our FIN is out, unacknowledged.</summary>
    public static ScriptedPeer LastAck(TcpConfig? config = null)
    {
        var peer = CloseWait(config);
        peer.Connection.Close(peer.Now);
        Assert.Equal(TcpFlags.Fin | TcpFlags.Ack, peer.Single().Flags);
        return peer;
    }

    public static ScriptedPeer For(TcpState state) => state switch
    {
        TcpState.Listen => Listen(),
        TcpState.SynSent => SynSent(),
        TcpState.SynReceived => SynReceived(),
        TcpState.Established => Established(),
        TcpState.FinWait1 => FinWait1(),
        TcpState.FinWait2 => FinWait2(),
        TcpState.CloseWait => CloseWait(),
        TcpState.Closing => Closing(),
        TcpState.LastAck => LastAck(),
        TcpState.TimeWait => TimeWait(),
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };
}
