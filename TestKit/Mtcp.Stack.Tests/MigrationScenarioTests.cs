using Mtcp.Stack;
using Mtcp.Stack.Migration;
using Mtcp.TestKit;
using Xunit.Abstractions;

namespace Mtcp.Stack.Tests;

/// <summary>Named migration scenarios of thesis chapters 3 and 4, each on the multi-host simulator.</summary>
[Trait("Category", "Migration")]
public sealed class MigrationScenarioTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

    [Theory]
    [InlineData(ReferenceService.Stream)]
    [InlineData(ReferenceService.File)]
    [InlineData(ReferenceService.RequestResponse)]
    public void One_migration_must_deliver_the_reference_stream_byte_for_byte(ReferenceService service)
    {
        var bed = new MigrationTestbed(1, LinkConditions.Perfect, new TestbedOptions { Service = service });
        Assert.True(bed.RunUntil(() => bed.ClientApp.Received >= 16 * 1024, Limit), bed.Describe());
        Assert.True(bed.Migrate(1), bed.Describe());
        Assert.True(bed.RunToFinish(Limit), bed.Describe());
        output.WriteLine(bed.Describe());
        AssertExactStream(bed);
        Assert.Equal(1, bed.Connection.Stats.MigrationsCompleted);
        Assert.Equal(MigrationTestbed.EndpointOf(1), bed.Connection.CurrentServer);
    }

    internal static void AssertExactStream(MigrationTestbed bed)
    {
        Assert.True(bed.ClientApp.FirstMismatch < 0, $"stream differs at {bed.ClientApp.FirstMismatch}: {bed.Describe()}");
        Assert.Equal(bed.Expected.Length, bed.ClientApp.Received);
        Assert.DoesNotContain(bed.Sessions, s => s.Connection.State != TcpState.Closed);
    }
}
