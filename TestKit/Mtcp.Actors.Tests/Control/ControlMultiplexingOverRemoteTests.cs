using System.Diagnostics;
using Akka.Actor;
using Akka.TestKit;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests;

/// <summary>
/// Many state transfers at once on the one control connection between two nodes over Akka.Remote, with the
/// reference limits: small replies travel whole, a 1 MB one in chunks, all interleaved on one association.
/// </summary>
[Trait("Category", "Actors")]
[Trait("Category", "MultiNode")]
[Collection(MultiNodeCollection.Name)]
public sealed class ControlMultiplexingOverRemoteTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly ActorSystem _origin;
    private readonly TestProbe _originRegistry;
    private readonly IActorRef _destinationManager;
    private readonly Address _originAddress;
    private readonly ITestOutputHelper _output;

    public ControlMultiplexingOverRemoteTests(ITestOutputHelper output)
        : base(TestNodes.Remote(), "destination", output)
    {
        _output = output;
        _origin = ActorSystem.Create("origin", TestNodes.Remote().WithFallback(DefaultConfig));
        _originRegistry = CreateTestProbe(_origin);
        _origin.StartControlConnectionManager(_originRegistry.Ref);
        _destinationManager = Sys.StartControlConnectionManager(CreateTestProbe().Ref);
        _originAddress = TestNodes.AddressOf(_origin);
    }

    protected override void AfterAll()
    {
        Shutdown(_origin, verifySystemShutdown: true);
        base.AfterAll();
    }

    private static StateRequest Request(ulong requestId) => new(
        requestId, ControlSamples.MigratingCid, ControlSamples.NewEndpointCid, new Mtcp.Wire.SeqNumber(1), ReadOnlyMemory<byte>.Empty);

    [Fact]
    public async Task Fifty_concurrent_transfers_including_a_1_MB_reply_must_each_arrive_intact_once()
    {
        const int Transfers = 50;
        const ulong LargeRequest = 25;
        var states = Enumerable.Range(1, Transfers).ToDictionary(
            id => (ulong)id,
            id => ControlSamples.RandomBytes((ulong)id == LargeRequest ? 1 << 20 : 100 * id, seed: id));
        _originRegistry.SetAutoPilot(new ReplyingRegistry(id => ControlSamples.Replying(id, states[id])));
        var endpoints = states.Keys.ToDictionary(id => id, _ => CreateTestProbe());

        foreach (var (id, endpoint) in endpoints)
        {
            _destinationManager.Tell(new RequestState(_originAddress, Request(id), endpoint.Ref));
        }

        foreach (var (id, endpoint) in endpoints)
        {
            var reply = await endpoint.ExpectMsgAsync<StateReply>(Patience);
            Assert.Equal(id, reply.RequestId);
            Assert.True(states[id].AsSpan().SequenceEqual(reply.AppState.Span), $"application state of transfer {id} differs");
            endpoint.Reply(new StateAck(id, ControlSamples.MigratingCid));
        }

        foreach (var endpoint in endpoints.Values)
        {
            await endpoint.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(50));
        }

        _destinationManager.Tell(GetControlConnections.Instance, TestActor);
        Assert.Single((await ExpectMsgAsync<ControlConnections>(Patience)).ByPeer);
    }

    /// <summary>Reports the control round trip (request to delivered reply, 16 bytes of state); asserts only that every one completes.</summary>
    [Fact]
    public async Task Control_round_trip_must_complete_for_every_request_in_sequence()
    {
        const int Warmup = 20;
        const int Measured = 200;
        _originRegistry.SetAutoPilot(new ReplyingRegistry(id => ControlSamples.Replying(id, new byte[16])));
        var endpoint = CreateTestProbe();
        var samples = new List<double>(Measured);

        for (var id = 1UL; id <= Warmup + Measured; id++)
        {
            var started = Stopwatch.GetTimestamp();
            _destinationManager.Tell(new RequestState(_originAddress, Request(id), endpoint.Ref));
            var reply = await endpoint.ExpectMsgAsync<StateReply>(Patience);
            Assert.Equal(id, reply.RequestId);
            if (id > Warmup)
            {
                samples.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            }
        }

        samples.Sort();
        _output.WriteLine($"control round trip over Akka.Remote (loopback, 16 B state, {Measured} samples): p50 {samples[Measured / 2]:F0} us, p99 {samples[(Measured * 99) / 100]:F0} us");
    }
}
