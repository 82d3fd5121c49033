using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Stack;
using Mtcp.Wire;

namespace Mtcp.Policies.Tests;

/// <summary>Servers, connections and settings shared by the policy tests.</summary>
internal static class Samples
{
    public static readonly ServerEndpoint S1 = new(IpAddress.Parse("10.0.0.1"), 7000);
    public static readonly ServerEndpoint S2 = new(IpAddress.Parse("10.0.0.2"), 7000);
    public static readonly ServerEndpoint S3 = new(IpAddress.Parse("10.0.0.3"), 7000);

    public static ConnectionId Connection(int clientPort) =>
        new(IpAddress.Parse("192.168.1.10"), (ushort)clientPort, S1.Address, S1.Port);

    public static Instant Ms(double milliseconds) => new((long)Math.Round(milliseconds * 1000));

    /// <summary>The reference settings with <paramref name="overrides"/> (HOCON) on top, validated.</summary>
    public static PolicySettings Settings(string overrides = "") =>
        PolicySettings.Create(MtcpConfig.WithFallback(ConfigurationFactory.ParseString(overrides)));

    public static ClientPolicySettings Client(string overrides = "") => Settings(overrides).Client;

    public static ServerPolicySettings Server(string overrides = "") => Settings(overrides).Server;
}
