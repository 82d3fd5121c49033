using System.Diagnostics;
using Mtcp.Actors.Replication;
using Mtcp.Wire;
using Mtcp.Wire.Control;

namespace Mtcp.Actors.Tests;

/// <summary>
/// <see cref="ReplicaUpdateTimes"/>, behind <c>mtcp.replication.round_trip.duration</c> and <c>mtcp.replication.buddy.hold</c>:
/// an ack measures the update it names, forgets every update it covers, and an ack for an update never seen (a stranger's
/// connection, a forged or late request id) measures nothing.
/// </summary>
[Trait("Category", "Failover")]
public sealed class ReplicaUpdateTimesTests
{
    private static readonly ConnectionId Cid = ControlSamples.MigratingCid;
    private static readonly ConnectionId OtherCid = ControlSamples.NewEndpointCid;
    private static readonly long Second = Stopwatch.Frequency;

    [Fact]
    public void Ack_must_measure_the_update_it_names_and_forget_those_it_covers()
    {
        var times = new ReplicaUpdateTimes();
        times.Passed(Cid, 1, 10 * Second);
        times.Passed(Cid, 2, 11 * Second);
        times.Passed(Cid, 3, 12 * Second);

        Assert.Equal(TimeSpan.FromSeconds(4), times.Acknowledged(new ReplicaAck(2, Cid, ReplicaAckStatus.Held), 15 * Second));

        // Updates 1 and 2 are gone: their ack again measures nothing; update 3 is still awaited.
        Assert.Null(times.Acknowledged(new ReplicaAck(2, Cid, ReplicaAckStatus.Held), 16 * Second));
        Assert.Equal(TimeSpan.FromSeconds(5), times.Acknowledged(new ReplicaAck(3, Cid, ReplicaAckStatus.Held), 17 * Second));
    }

    [Fact]
    public void Ack_of_an_update_not_seen_must_measure_nothing()
    {
        var times = new ReplicaUpdateTimes();
        times.Passed(Cid, 5, 10 * Second);

        // Another connection's ack, and an ack naming an update below the first one seen, leave update 5 awaited.
        Assert.Null(times.Acknowledged(new ReplicaAck(5, OtherCid, ReplicaAckStatus.Held), 11 * Second));
        Assert.Null(times.Acknowledged(new ReplicaAck(4, Cid, ReplicaAckStatus.Held), 11 * Second));

        // An ack beyond anything sent covers update 5 without naming it: nothing measured, nothing left.
        Assert.Null(times.Acknowledged(new ReplicaAck(9, Cid, ReplicaAckStatus.Held), 12 * Second));
        Assert.Null(times.Acknowledged(new ReplicaAck(5, Cid, ReplicaAckStatus.Held), 12 * Second));
    }

    [Fact]
    public void Forgotten_connection_must_measure_nothing()
    {
        var times = new ReplicaUpdateTimes();
        times.Passed(Cid, 1, 10 * Second);
        times.Passed(OtherCid, 1, 10 * Second);
        times.Forget(Cid);

        Assert.Null(times.Acknowledged(new ReplicaAck(1, Cid, ReplicaAckStatus.Held), 11 * Second));
        Assert.Equal(TimeSpan.FromSeconds(1), times.Acknowledged(new ReplicaAck(1, OtherCid, ReplicaAckStatus.Held), 11 * Second));
    }
}
