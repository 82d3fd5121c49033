using Mtcp.Stack;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

[Trait("Category", "Stack")]
public sealed class SimulatedTransferTests(ITestOutputHelper output)
{
    [Fact]
    public void Lossless_transfer_must_deliver_both_directions_and_close_both_ends()
    {
        var pair = new TcpPair(seed: 1, LinkConditions.Perfect, TcpConfig.Default, clientBytes: 1_000_000, serverBytes: 700_000);

        Assert.True(pair.DriveToClose(TimeSpan.FromMinutes(5)), pair.Describe());

        output.WriteLine(pair.Describe());
        Assert.Equal(700_000, pair.ClientApp.BytesRead);
        Assert.Equal(1_000_000, pair.ServerApp.BytesRead);
        Assert.Equal(-1, pair.ClientApp.FirstMismatch);
        Assert.Equal(-1, pair.ServerApp.FirstMismatch);
        Assert.Equal(0, pair.ClientConnection.Stats.Retransmissions);
    }
}
