using Mtcp.Actors.Endpoints;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Actors.Tests.Runtime;

[Trait("Category", "Actors")]
public sealed class InitialSequenceNumbersTests
{
    private static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly IpAddress Local = IpAddress.Parse("192.0.2.1");
    private static readonly IpAddress Remote = IpAddress.Parse("198.51.100.7");

    [Fact]
    public void Same_key_tuple_and_time_must_give_the_same_isn()
    {
        var a = new InitialSequenceNumbers(Key).Next(Instant.FromMilliseconds(5), Local, 80, Remote, 40000);
        var b = new InitialSequenceNumbers(Key).Next(Instant.FromMilliseconds(5), Local, 80, Remote, 40000);

        Assert.Equal(a, b);
    }

    [Fact]
    public void Isn_must_advance_one_per_4_microseconds_for_a_tuple()
    {
        var isn = new InitialSequenceNumbers(Key);

        var earlier = isn.Next(new Instant(1_000_000), Local, 80, Remote, 40000);
        var later = isn.Next(new Instant(1_000_400), Local, 80, Remote, 40000);

        Assert.Equal(100, later - earlier);
    }

    [Fact]
    public void Other_tuples_and_keys_must_give_unrelated_isns()
    {
        var isn = new InitialSequenceNumbers(Key);
        var now = Instant.FromMilliseconds(5);
        var reference = isn.Next(now, Local, 80, Remote, 40000);

        Assert.NotEqual(reference, isn.Next(now, Local, 80, Remote, 40001));
        Assert.NotEqual(reference, isn.Next(now, Local, 81, Remote, 40000));
        Assert.NotEqual(reference, isn.Next(now, Local, 80, IpAddress.Parse("198.51.100.8"), 40000));
        Assert.NotEqual(reference, new InitialSequenceNumbers(Key.Reverse().ToArray()).Next(now, Local, 80, Remote, 40000));
        Assert.NotEqual(reference, isn.Next(now, IpAddress.Parse("2001:db8::1"), 80, IpAddress.Parse("2001:db8::2"), 40000));
    }

    [Fact]
    public void Short_key_must_be_refused()
    {
        Assert.Throws<ArgumentException>(() => new InitialSequenceNumbers(new byte[8]));
    }
}
