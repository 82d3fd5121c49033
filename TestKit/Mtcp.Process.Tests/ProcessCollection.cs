namespace Mtcp.Process.Tests;

/// <summary>Process tests run one at a time: each starts several processes on a machine with few cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessCollection
{
    public const string Name = "Process";
}
