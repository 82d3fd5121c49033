using System.Collections.Immutable;
using System.Reflection;
using Akka.Actor;
using Akka.Cluster;
using Akka.Util;

namespace Mtcp.Actors.Tests;

/// <summary>
/// Cluster members with any address and status, for feeding cluster events by hand. Akka.Cluster builds them only
/// internally (<c>Member.Create</c>); a member for tests is made through that same factory.
/// </summary>
internal static class ClusterMembers
{
    private static readonly MethodInfo Create = typeof(Member).GetMethod(
        "Create",
        BindingFlags.Static | BindingFlags.NonPublic,
        [typeof(UniqueAddress), typeof(int), typeof(MemberStatus), typeof(ImmutableHashSet<string>), typeof(AppVersion)])
        ?? throw new InvalidOperationException("Akka.Cluster has no internal Member.Create(UniqueAddress, int, MemberStatus, roles, AppVersion) any more");

    /// <summary>A member at <paramref name="node"/> with <paramref name="status"/> and <paramref name="roles"/>.</summary>
    public static Member Of(UniqueAddress node, MemberStatus status, params string[] roles) =>
        (Member)Create.Invoke(null, [node, 1, status, roles.ToImmutableHashSet(), AppVersion.Zero])!;

    /// <summary>A node of system <c>mtcp</c> at <paramref name="host"/>:<paramref name="port"/>.</summary>
    public static UniqueAddress Node(string host, int port = 4053, int uid = 1) => new(new Address("akka.tcp", "mtcp", host, port), uid);
}
