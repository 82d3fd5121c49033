using Mtcp.Stack;
using Mtcp.Wire;
using static Mtcp.Policies.Tests.Samples;

namespace Mtcp.Policies.Tests;

/// <summary>
/// The request boundaries a relay sees (client bytes forwarded, server bytes read) on a scripted clock, and what they
/// feed the response-time and latency triggers: request/response exchanges give one response time each, a download
/// gives one and then only gaps.
/// </summary>
[Trait("Category", "Policy")]
public sealed class RequestBoundariesTests
{
    private static readonly ConnectionId Session = Connection(40100);

    private static TimeSpan Milliseconds(double value) => TimeSpan.FromMilliseconds(value);

    [Fact]
    public void Response_time_must_run_from_the_requests_last_bytes_to_the_answers_first()
    {
        var boundaries = new RequestBoundaries();

        // A request in two writes (the relay read it from its client in two pieces), answered in two reads.
        Assert.Equal(TimeSpan.Zero, boundaries.RequestForwarded(Ms(0)));
        Assert.Equal(Milliseconds(2), boundaries.RequestForwarded(Ms(2)));
        Assert.True(boundaries.RequestPending);
        var first = boundaries.AnswerReceived(Ms(7), TimeSpan.Zero);
        var second = boundaries.AnswerReceived(Ms(8), TimeSpan.Zero);

        Assert.Equal(new AnswerTiming(Milliseconds(5), null), first);
        Assert.Equal(new AnswerTiming(null, Milliseconds(1)), second);
        Assert.False(boundaries.RequestPending);
    }

    [Fact]
    public void Think_time_between_requests_must_not_count_as_response_time()
    {
        var boundaries = new RequestBoundaries();

        boundaries.RequestForwarded(Ms(0));
        Assert.Equal(Milliseconds(1), boundaries.AnswerReceived(Ms(1), TimeSpan.Zero).ResponseTime);

        // The user thinks for five seconds: no sample, the pause is the client's time, and the next request's clock
        // starts when it is sent.
        Assert.Equal(Milliseconds(4999), boundaries.RequestForwarded(Ms(5000)));
        var next = boundaries.AnswerReceived(Ms(5001.5), TimeSpan.Zero);

        Assert.Equal(new AnswerTiming(Milliseconds(1.5), null), next);
    }

    [Fact]
    public void Download_must_give_one_response_time_then_only_gaps_and_never_fire_the_response_time_trigger()
    {
        var boundaries = new RequestBoundaries();
        var trigger = new ResponseTimeTrigger(Client("mtcp.policies.client.response-time.min-observation-window = 0s").ResponseTime);

        boundaries.RequestForwarded(Ms(0));
        var responseTimes = new List<TimeSpan>();
        var gaps = new List<TimeSpan>();
        var fired = false;

        // 2,000 reads of one answer whose pace falls steadily from one read per ms to one per 200 ms.
        var at = 0.0;
        for (var read = 0; read < 2000; read++)
        {
            at += 1 + (read * 0.1);
            var timing = boundaries.AnswerReceived(Ms(at), TimeSpan.Zero);
            if (timing.ResponseTime is { } responseTime)
            {
                responseTimes.Add(responseTime);
                fired |= trigger.Observe(responseTime, Ms(at));
            }

            if (timing.Gap is { } gap)
            {
                gaps.Add(gap);
            }
        }

        Assert.Equal([Milliseconds(1)], responseTimes);
        Assert.Equal(1999, gaps.Count);
        Assert.False(fired);
    }

    [Fact]
    public void Server_bytes_without_a_request_must_be_gaps_from_the_previous_bytes()
    {
        var boundaries = new RequestBoundaries();

        // A greeting (nothing to measure it from), then a push 250 ms later.
        Assert.Equal(default, boundaries.AnswerReceived(Ms(0), TimeSpan.Zero));
        Assert.Equal(new AnswerTiming(null, Milliseconds(250)), boundaries.AnswerReceived(Ms(250), TimeSpan.Zero));
    }

    [Fact]
    public void A_read_held_back_by_the_relays_own_reader_must_measure_nothing()
    {
        var boundaries = new RequestBoundaries();

        boundaries.RequestForwarded(Ms(0));
        Assert.Equal(default, boundaries.AnswerReceived(Ms(40), Milliseconds(30)));
        Assert.Equal(default, boundaries.AnswerReceived(Ms(90), Milliseconds(45)));

        // The reader keeps up again: the next gap counts.
        Assert.Equal(new AnswerTiming(null, Milliseconds(2)), boundaries.AnswerReceived(Ms(92), TimeSpan.Zero));
    }

    [Fact]
    public void A_migration_must_drop_the_pending_request_and_gap()
    {
        var boundaries = new RequestBoundaries();

        boundaries.RequestForwarded(Ms(0));
        boundaries.Forget();
        Assert.False(boundaries.RequestPending);
        Assert.Equal(default, boundaries.AnswerReceived(Ms(300), TimeSpan.Zero));

        boundaries.Forget();
        Assert.Equal(default, boundaries.AnswerReceived(Ms(310), TimeSpan.Zero));
        Assert.Equal(new AnswerTiming(null, Milliseconds(5)), boundaries.AnswerReceived(Ms(315), TimeSpan.Zero));
    }

    [Fact]
    public void Degrading_request_server_must_be_left_for_its_response_time()
    {
        var policy = new ClientMigrationPolicy(
            Client("""
                mtcp.policies.client.triggers = [response-time]
                mtcp.policies.client.response-time.min-observation-window = 100ms
                """),
            Ms(0));
        policy.OnServersChanged(new ConnectionAlternatesChanged(Session, S1, [S2], Ms(0)));
        var boundaries = new RequestBoundaries();

        // Back-to-back requests: answers in 0.3 ms for 30 requests, then each 2 ms slower than the one before (the
        // request server's degrade-after-requests = 30, delay-step = 2ms).
        var at = 0.0;
        for (var request = 0; request < 200; request++)
        {
            boundaries.RequestForwarded(Ms(at));
            at += 0.3 + (request < 30 ? 0 : 2.0 * (request - 29));
            var responseTime = boundaries.AnswerReceived(Ms(at), TimeSpan.Zero).ResponseTime!.Value;
            if (policy.OnRequestCompleted(new RequestCompleted(Session, responseTime, Ms(at))) is { } outcome)
            {
                Assert.Equal(GuardVerdict.Allowed, outcome.Verdict);
                Assert.Equal(MigrationReason.ResponseTime, outcome.Decision.Reason);
                Assert.Equal(S2, outcome.Decision.Destination);

                // R first exceeds 2 x the 5 ms floor (not 2 x the 0.3 ms baseline) at request 36; three slow requests
                // in a row fire at request 38, whose answer took 18.3 ms.
                Assert.Equal(38, request);
                Assert.StartsWith("3 slow requests in a row: last 18.3 ms", outcome.Decision.Detail, StringComparison.Ordinal);
                Assert.EndsWith("baseline 0.3 ms (floor 5.0 ms)", outcome.Decision.Detail, StringComparison.Ordinal);
                return;
            }

            at += 0.1;
        }

        Assert.Fail("the response-time trigger never fired on a degrading server");
    }

    [Fact]
    public void Pauses_of_an_interactive_session_must_not_fire_the_throughput_trigger()
    {
        // A script sends bursts of five commands back to back (1 ms answers of 100 bytes, the next command 50 us after
        // each answer), then pauses two seconds. Fed the client's time before each request as the reader's, the
        // trigger leaves exactly the nine pauses out and keeps the rest; without it, the first pause reads as a drop to
        // a two-thousandth of the rate.
        var settings = Client("mtcp.policies.client.throughput.min-observation-window = 0s").Throughput;
        var leftOut = new ThroughputTrigger(settings);
        var counted = new ThroughputTrigger(settings);
        var boundaries = new RequestBoundaries();
        var firedLeftOut = false;
        var firedCounted = false;
        var at = 0.0;
        for (var command = 0; command < 50; command++)
        {
            at += command % 5 == 0 && command > 0 ? 2000 : 0.05;
            var clientTime = boundaries.RequestForwarded(Ms(at));
            at += 1;
            Assert.Equal(Milliseconds(1), boundaries.AnswerReceived(Ms(at), TimeSpan.Zero).ResponseTime);
            firedLeftOut |= leftOut.Observe(100, Ms(at), clientTime);
            firedCounted |= counted.Observe(100, Ms(at));
        }

        Assert.False(firedLeftOut);
        Assert.Equal(9, leftOut.ReaderLimitedSamples);
        Assert.Equal(40, leftOut.Samples);
        Assert.True(firedCounted);
    }
}
