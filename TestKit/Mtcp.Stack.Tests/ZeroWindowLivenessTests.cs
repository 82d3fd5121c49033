using Mtcp.Wire;

namespace Mtcp.Stack.Tests;

/// <summary>
/// A closed receive window of ours is no silence of the peer's (RFC 9293 §3.8.6.1, §3.8.4, §3.10.7.4): a live peer
/// whose segments our zero window cannot take still answers our keep-alives, and a dead one still leaves them
/// unanswered.
/// </summary>
[Trait("Category", "Stack")]
public sealed class ZeroWindowLivenessTests
{
    private const int Window = 16 * 1024;

    private static readonly TimeSpan KeepAliveIdle = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_FIN_sent_into_a_zero_window_must_leave_the_peers_keep_alives_answered(bool sack)
    {
        var link = ClosedWindow(sack);

        // The server's application closes once its bytes are all acknowledged: the FIN goes alone into the client's
        // zero window, which cannot take it (it lies past RCV.NXT + RCV.WND), so SND.NXT stays one past RCV.NXT.
        link.Server.Close(link.Now);
        link.Exchange();
        var unanswered = 0;
        for (var i = 0; i < 200; i++)
        {
            link.Elapse(TimeSpan.FromMilliseconds(50));
            unanswered = Math.Max(unanswered, link.Client.UnansweredKeepAlives);
        }

        Assert.True(link.Client.Stats.KeepAliveProbes >= 2, $"{link.Client.Stats.KeepAliveProbes} probes");
        Assert.True(unanswered <= 1, $"{unanswered} keep-alive probes in a row unanswered by a live peer");
        Assert.Equal(TcpState.Established, link.Client.State);

        // Once the reader drains the window, the FIN is taken and the connection closes as usual.
        Assert.Equal(Window, link.Client.Read(new byte[Window]));
        for (var i = 0; i < 200 && link.Client.State != TcpState.CloseWait; i++)
        {
            link.Elapse(TimeSpan.FromMilliseconds(50));
        }

        Assert.Equal(TcpState.CloseWait, link.Client.State);
    }

    [Fact]
    public void A_peer_that_dies_while_our_window_is_zero_must_leave_our_keep_alives_unanswered()
    {
        var link = ClosedWindow(sack: true);
        link.Drop = (_, _) => true;
        for (var i = 0; i < 200; i++)
        {
            link.Elapse(TimeSpan.FromMilliseconds(50));
        }

        // Idle 2 s, then probes at most 1 s apart: about nine in the remaining 8 s, none answered.
        Assert.True(link.Client.UnansweredKeepAlives >= 4, $"{link.Client.UnansweredKeepAlives} unanswered probes");
    }

    /// <summary>
    /// A connection whose server sent exactly the client's window, all acknowledged, with the client's application
    /// reading nothing: the client's window is zero (no window scaling, so no rounding leaves a few bytes open).
    /// </summary>
    private static DirectLink ClosedWindow(bool sack)
    {
        var config = TcpConfig.Default with { ReceiveBufferSize = Window, SendBufferSize = 4 * Window, SelectiveAcknowledgment = sack, WindowScaleShift = null };
        var link = new DirectLink(config, config);
        link.Client.KeepAliveIdle = KeepAliveIdle;
        Assert.Equal(Window, link.Server.Write(new byte[Window]));
        for (var i = 0; i < 40; i++)
        {
            link.Elapse(TimeSpan.FromMilliseconds(50));
        }

        Assert.Equal(Window, link.Client.BytesReadable);
        Assert.Equal(0, link.Server.SendWindow);
        Assert.Equal(link.Server.SendMax, link.Server.SendUnacknowledged);
        return link;
    }
}
