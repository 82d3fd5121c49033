using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Wire.Control;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests;

[Trait("Category", "Actors")]
public sealed class StateReplyAssemblerTests(ITestOutputHelper output)
{
    private const int ChunkSize = 1000;

    private static (StateReply Reply, IReadOnlyList<StateReplyChunk> Chunks) Chunked(ulong requestId, int appStateLength, int seed)
    {
        var reply = ControlSamples.Replying(requestId, ControlSamples.RandomBytes(appStateLength, seed));
        return (reply, StateReplyChunk.Split(requestId, reply.ToArray(), ChunkSize));
    }

    private static StateReplyAssembler Assembler(int maxReply = 1 << 20, long budget = 4 << 20, params ulong[] expected)
    {
        var assembler = new StateReplyAssembler(maxReply, budget);
        foreach (var requestId in expected.Length == 0 ? [1UL, 2UL] : expected)
        {
            Assert.True(assembler.Expect(requestId));
        }

        return assembler;
    }

    private static void AssertBuffered(AssemblyResult result)
    {
        Assert.Equal(AssemblyStatus.Buffered, result.Status);
        Assert.Null(result.Reply);
    }

    [Fact]
    public void Chunks_in_order_must_rebuild_the_reply()
    {
        var (reply, chunks) = Chunked(1, 10_000, seed: 10);
        var assembler = Assembler();

        foreach (var chunk in chunks.Take(chunks.Count - 1))
        {
            AssertBuffered(assembler.Add(chunk));
        }

        var result = assembler.Add(chunks[^1]);

        Assert.Equal(AssemblyStatus.Completed, result.Status);
        Assert.Equal(reply, result.Reply);
        Assert.False(assembler.IsPending(1));
        Assert.Equal(0, assembler.ReservedBytes);
    }

    [Fact]
    public void Chunks_in_any_order_must_rebuild_the_reply()
    {
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var random = new Random(seed);
        for (var round = 0; round < 50; round++)
        {
            var (reply, chunks) = Chunked((ulong)round, random.Next(1, 20_000), seed: round);
            var shuffled = chunks.ToArray();
            random.Shuffle(shuffled);
            var assembler = Assembler(expected: (ulong)round);

            var results = shuffled.Select(assembler.Add).ToList();

            Assert.All(results[..^1], AssertBuffered);
            Assert.Equal(AssemblyStatus.Completed, results[^1].Status);
            Assert.Equal(reply, results[^1].Reply);
        }
    }

    [Fact]
    public void Last_chunk_first_must_start_the_transfer()
    {
        var (reply, chunks) = Chunked(1, 2500, seed: 11);
        var assembler = Assembler();

        AssertBuffered(assembler.Add(chunks[^1]));
        Assert.True(assembler.IsPending(1));
        Assert.Equal(reply.GetEncodedLength(), assembler.ReservedBytes);

        var results = chunks.Take(chunks.Count - 1).Select(assembler.Add).ToList();

        Assert.Equal(reply, results[^1].Reply);
    }

    [Fact]
    public void Duplicate_chunk_must_change_nothing()
    {
        var (reply, chunks) = Chunked(1, 2500, seed: 12);
        var assembler = Assembler();
        assembler.Add(chunks[0]);

        var duplicate = assembler.Add(chunks[0]);
        var rest = chunks.Skip(1).Select(assembler.Add).ToList();

        Assert.Equal(AssemblyStatus.Duplicate, duplicate.Status);
        Assert.False(duplicate.IsRejection);
        Assert.Equal(reply, rest[^1].Reply);
    }

    [Fact]
    public void Duplicate_after_completion_must_be_refused_without_allocating()
    {
        var (_, chunks) = Chunked(1, 2500, seed: 13);
        var assembler = Assembler();
        foreach (var chunk in chunks)
        {
            assembler.Add(chunk);
        }

        var late = assembler.Add(chunks[0]);

        Assert.Equal(AssemblyStatus.UnexpectedRequest, late.Status);
        Assert.True(late.IsRejection);
        Assert.False(assembler.IsPending(1));
        Assert.Equal(0, assembler.ReservedBytes);
    }

    [Fact]
    public void Chunk_for_a_request_never_sent_must_be_refused_without_allocating()
    {
        var (_, chunks) = Chunked(7, 2500, seed: 23);
        var assembler = Assembler();

        var result = assembler.Add(chunks[0]);

        Assert.Equal(AssemblyStatus.UnexpectedRequest, result.Status);
        Assert.Equal(0, assembler.ReservedBytes);
        Assert.Equal(2, assembler.PendingTransfers);
    }

    [Fact]
    public void Request_must_be_expected_only_once()
    {
        var assembler = Assembler();

        Assert.False(assembler.Expect(1));
        Assert.True(assembler.Expect(3));
    }

    [Fact]
    public void Chunks_after_abandon_must_be_refused()
    {
        var (_, chunks) = Chunked(1, 2500, seed: 24);
        var assembler = Assembler();
        assembler.Add(chunks[0]);

        Assert.True(assembler.Abandon(1));
        var late = assembler.Add(chunks[1]);

        Assert.Equal(AssemblyStatus.UnexpectedRequest, late.Status);
        Assert.Equal(0, assembler.ReservedBytes);
    }

    [Fact]
    public void Chunk_with_other_bytes_at_a_held_position_must_be_rejected_and_change_nothing()
    {
        var (reply, chunks) = Chunked(1, 2500, seed: 14);
        var forged = new StateReplyChunk(1, chunks[0].TotalLength, ChunkSize, 0, new byte[ChunkSize]);
        var assembler = Assembler();
        assembler.Add(chunks[0]);

        var result = assembler.Add(forged);
        var rest = chunks.Skip(1).Select(assembler.Add).ToList();

        Assert.Equal(AssemblyStatus.InconsistentChunk, result.Status);
        Assert.True(result.IsRejection);
        Assert.Equal(reply, rest[^1].Reply);
    }

    [Fact]
    public void Chunk_disagreeing_on_the_transfer_shape_must_be_rejected_and_change_nothing()
    {
        var (reply, chunks) = Chunked(1, 2500, seed: 15);
        var otherTotal = new StateReplyChunk(1, chunks[0].TotalLength + 1, ChunkSize, 1, new byte[ChunkSize]);
        var otherChunkSize = new StateReplyChunk(1, chunks[0].TotalLength, ChunkSize / 2, 1, new byte[ChunkSize / 2]);
        var assembler = Assembler();
        assembler.Add(chunks[0]);

        Assert.Equal(AssemblyStatus.InconsistentChunk, assembler.Add(otherTotal).Status);
        Assert.Equal(AssemblyStatus.InconsistentChunk, assembler.Add(otherChunkSize).Status);
        var rest = chunks.Skip(1).Select(assembler.Add).ToList();

        Assert.Equal(reply, rest[^1].Reply);
    }

    [Fact]
    public void Missing_chunk_must_leave_the_transfer_pending_until_abandoned()
    {
        var (_, chunks) = Chunked(1, 5000, seed: 16);
        var assembler = Assembler();

        var results = chunks.Where(c => c.ChunkIndex != 2).Select(assembler.Add).ToList();

        Assert.All(results, AssertBuffered);
        Assert.True(assembler.IsPending(1));
        Assert.Equal(chunks[0].TotalLength, assembler.ReservedBytes);
        Assert.True(assembler.Abandon(1));
        Assert.False(assembler.Abandon(1));
        Assert.False(assembler.IsPending(1));
        Assert.Equal(0, assembler.ReservedBytes);
        Assert.Equal(AssemblyStatus.UnexpectedRequest, assembler.Add(chunks[2]).Status);
    }

    [Fact]
    public void Interleaved_transfers_must_complete_independently()
    {
        var (first, firstChunks) = Chunked(1, 3000, seed: 17);
        var (second, secondChunks) = Chunked(2, 4000, seed: 18);
        var assembler = Assembler();
        var completed = new List<StateReply>();

        foreach (var chunk in secondChunks.Zip(firstChunks).SelectMany(pair => new[] { pair.First, pair.Second }).Concat(secondChunks.Skip(firstChunks.Count)))
        {
            var result = assembler.Add(chunk);
            if (result.Reply is not null)
            {
                completed.Add(result.Reply);
            }
        }

        Assert.Equal([first, second], completed);
    }

    [Fact]
    public void Reply_above_the_size_limit_must_be_refused_without_reserving_memory()
    {
        var (reply, chunks) = Chunked(1, 5000, seed: 19);
        var assembler = Assembler(maxReply: reply.GetEncodedLength() - 1);

        var result = assembler.Add(chunks[0]);

        Assert.Equal(AssemblyStatus.ReplyTooLarge, result.Status);
        Assert.True(result.IsRejection);
        Assert.Equal(0, assembler.ReservedBytes);
    }

    [Fact]
    public void Transfer_beyond_the_reassembly_budget_must_be_refused_until_another_finishes()
    {
        var (first, firstChunks) = Chunked(1, 5000, seed: 20);
        var (second, secondChunks) = Chunked(2, 5000, seed: 21);
        var assembler = Assembler(maxReply: first.GetEncodedLength(), budget: first.GetEncodedLength() + 100);
        assembler.Add(firstChunks[0]);

        var refused = assembler.Add(secondChunks[0]);
        var firstDone = firstChunks.Skip(1).Select(assembler.Add).ToList();
        var secondDone = secondChunks.Select(assembler.Add).ToList();

        Assert.Equal(AssemblyStatus.ReassemblyBudgetExceeded, refused.Status);
        Assert.Equal(first, firstDone[^1].Reply);
        Assert.Equal(second, secondDone[^1].Reply);
    }

    [Fact]
    public void Complete_bytes_that_are_no_state_reply_must_be_reported_with_the_wire_error()
    {
        var garbage = StateReplyChunk.Split(1, Enumerable.Repeat((byte)0xFF, 3000).ToArray(), ChunkSize);
        var notAReply = StateReplyChunk.Split(2, ControlSamples.Ack.ToArray(), 10);
        var assembler = Assembler();

        var garbageResult = garbage.Select(assembler.Add).ToList()[^1];
        var ackResult = notAReply.Select(assembler.Add).ToList()[^1];

        Assert.Equal(AssemblyStatus.MalformedReply, garbageResult.Status);
        Assert.Equal(ControlWireError.UnsupportedVersion, garbageResult.WireError);
        Assert.Equal(AssemblyStatus.MalformedReply, ackResult.Status);
        Assert.Equal(ControlWireError.UnexpectedMessageType, ackResult.WireError);
        Assert.False(assembler.IsPending(1));
        Assert.False(assembler.IsPending(2));
        Assert.Equal(0, assembler.ReservedBytes);
    }

    [Fact]
    public void Reply_under_another_request_id_must_be_refused()
    {
        var reply = ControlSamples.Replying(99, new byte[3000]);
        var chunks = StateReplyChunk.Split(1, reply.ToArray(), ChunkSize);
        var assembler = Assembler();

        var result = chunks.Select(assembler.Add).ToList()[^1];

        Assert.Equal(AssemblyStatus.RequestIdMismatch, result.Status);
        Assert.Null(result.Reply);
        Assert.False(assembler.IsPending(1));
    }

    [Fact]
    public void Assembler_must_take_its_limits_from_the_settings()
    {
        var settings = ControlSettings.Create(MtcpConfig.Reference);

        var assembler = new StateReplyAssembler(settings);

        Assert.Equal(settings.MaxStateReplySize, assembler.MaxStateReplySize);
        Assert.Equal(settings.MaxReassemblyBytes, assembler.MaxReassemblyBytes);
    }
}
