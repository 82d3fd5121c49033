namespace Mtcp.Wire.Tests;

/// <summary>
/// The hot path (segments with standard options only) must not allocate. Segments of a migration
/// handshake, which carry MTCP options, allocate one small object for them.
/// </summary>
[Trait("Category", "Wire")]
public sealed class AllocationTests
{
    [Fact]
    public void Parse_and_emit_of_segments_with_standard_options_must_not_allocate()
    {
        var segments = Golden.Segments().Where(s => s.Repr.Options.Unknown.IsEmpty && !s.Repr.Options.HasMtcp).ToArray();
        var buffer = new byte[128];
        Assert.NotEmpty(segments);

        // Warm up so that JIT and type initialisation do not count.
        Run();
        var before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);

        void Run()
        {
            for (var i = 0; i < 100; i++)
            {
                foreach (var (_, bytes, _, source, destination) in segments)
                {
                    Assert.True(TcpSegmentRepr.TryParse(bytes, source, destination, ChecksumPolicy.Verify, out var repr, out var offset, out _));
                    Assert.True(repr.TryEmit(buffer, bytes.AsSpan(offset), source, destination, out _, out _));
                }
            }
        }
    }
}
