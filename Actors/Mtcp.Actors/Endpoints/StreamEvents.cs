using Mtcp.Stack;

namespace Mtcp.Actors.Endpoints;

/// <summary>
/// An endpoint actor's side of its application stream: serves the read or write waiting on the channel as the engine's
/// events come, and remembers the peer's FIN so that a read past the last byte ends the stream (RFC 9293 §3.10.7.4).
/// Connected and Closed are the endpoint's own events; it calls <see cref="EndIfPeerFinished"/> on Closed.
/// </summary>
internal sealed class StreamEvents(EndpointChannel channel, IStreamBuffers buffers)
{
    private bool _peerFinished;

    public void ServeRead() => channel.Reader.ServeRead(buffers, _peerFinished);

    public void ServeWrite() => channel.Writer.ServeWrite(buffers);

    /// <summary>
    /// The endpoint took an export of the application's (recorded its restart point, or refused it): the reads and
    /// writes asked since, which waited for it (<see cref="ExportsInFlight"/>), are served now.
    /// </summary>
    public void ExportTaken()
    {
        channel.Exports.Taken();
        ServeRead();
        ServeWrite();
    }

    /// <summary>Serves <paramref name="e"/> for the stream; the reason the stream fails with on a reset or a timeout, else null.</summary>
    public string? Serve(TcpEvent e)
    {
        switch (e)
        {
            case TcpEvent.Readable:
                ServeRead();
                return null;
            case TcpEvent.Writable:
                ServeWrite();
                return null;
            case TcpEvent.PeerClosed:
                _peerFinished = true;
                ServeRead();
                return null;
            case TcpEvent.Reset:
                return "the connection was reset by the peer (RST)";
            case TcpEvent.TimedOut:
                return "the connection timed out (RFC 9293 §3.8.3: no answer within the retransmission limit)";
            default:
                return null;
        }
    }

    /// <summary>The connection closed: a reader after the peer's FIN gets the end of the stream rather than an error.</summary>
    public void EndIfPeerFinished()
    {
        if (_peerFinished)
        {
            channel.Reader.EndOfStream();
        }
    }
}
