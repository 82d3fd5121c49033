using Akka.Actor;
using Mtcp.Actors.Cluster;
using Mtcp.TestKit;
using Mtcp.Wire;
using Xunit.Abstractions;

namespace Mtcp.Actors.Tests.Cluster;

/// <summary>
/// Random and mutated service announcements to <see cref="ServiceAnnouncement.TryDecode"/>, the decoder of what any
/// member of the cluster sends the service directory: it may never throw, a rejection carries a typed error, and what it
/// accepts re-encodes to an announcement that decodes equal. Harness: <see cref="FuzzRun"/>.
/// </summary>
[Trait("Category", "Wire")]
public sealed class ServiceAnnouncementFuzzTests(ITestOutputHelper output)
{
    private const int DefaultSeed = 0x53444130;

    [Fact]
    public void Announcement_decoder_must_survive_random_and_mutated_input_and_round_trip_what_it_accepts()
    {
        var outcome = FuzzRun.Run(DefaultSeed, BaseVectors(new Random(DefaultSeed - 1)), input =>
        {
            if (!ServiceAnnouncement.TryDecode(input, out var announcement, out var error))
            {
                FuzzRun.Require(error != ServiceAnnouncementError.None && announcement is null, "a rejection without an error");
                return false;
            }

            FuzzRun.Require(error == ServiceAnnouncementError.None, "an acceptance with an error");
            FuzzRun.Require(
                ServiceAnnouncement.TryDecode(announcement.ToArray(), out var again, out _) && again.Equals(announcement),
                "re-encoding an accepted announcement changed it");
            return true;
        });

        output.WriteLine(outcome.ToString());
        Assert.True(outcome.Accepted > outcome.Inputs / 10, $"only {outcome.Accepted} accepted: the fuzzer is not reaching the control address");
    }

    private static List<(byte[] Bytes, int[] LengthFields)> BaseVectors(Random random)
    {
        var bases = new List<(byte[] Bytes, int[] LengthFields)>();
        for (var i = 0; i < 256; i++)
        {
            var endpoints = Enumerable.Range(0, random.Next(6)).Select(_ => random.Next(3) == 0
                ? new ServerEndpoint(IpAddress.Parse($"2001:db8::{random.Next(1, 0xFFFF):x}"), (ushort)random.Next(1, 65536))
                : new ServerEndpoint(IpAddress.Parse($"10.{random.Next(256)}.{random.Next(256)}.{random.Next(1, 255)}"), (ushort)random.Next(1, 65536))).ToList();
            var host = random.Next(4) == 0 ? $"[2001:db8::{random.Next(1, 0xFFFF):x}]" : $"127.0.{random.Next(256)}.{random.Next(1, 255)}";
            var control = Address.Parse($"akka.tcp://mtcp@{host}:{random.Next(1, 65536)}");
            var bytes = new ServiceAnnouncement(endpoints, control, replyRequested: random.Next(2) == 0, replicationChannelPort: (ushort)(random.Next(2) * random.Next(1, 65536))).ToArray();
            var controlLengthField = 4 + endpoints.Sum(endpoint => 1 + endpoint.Address.Length + 2);
            bases.Add((bytes, [2, controlLengthField]));
        }

        return bases;
    }
}
