using System.Reflection;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;

namespace Mtcp.Hosting;

/// <summary>
/// Creates a host's actor system, turning the exceptions Akka.NET throws on a bad <c>akka.*</c> value (a
/// <see cref="FormatException"/> several layers deep, e.g. for <c>akka.remote.dot-netty.tcp.port = "x"</c>) into one
/// <see cref="ConfigurationException"/>, and any other start-up failure into an <see cref="InvalidOperationException"/>,
/// each with the innermost message, so that the host reports one line instead of a stack trace.
/// </summary>
public static class HostActorSystem
{
    /// <exception cref="ConfigurationException">Akka.NET refused a value of <paramref name="config"/>.</exception>
    /// <exception cref="InvalidOperationException">the system did not start for another reason (e.g. its port is taken).</exception>
    public static ActorSystem Create(string name, Config config) => Create(name, ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(config)));

    /// <inheritdoc cref="Create(string, Config)"/>
    public static ActorSystem Create(string name, ActorSystemSetup setup)
    {
        try
        {
            return ActorSystem.Create(name, setup);
        }
        catch (Exception e) when (Innermost(e) is FormatException or ConfigurationException or InvalidCastException or OverflowException)
        {
            throw new ConfigurationException($"Akka.NET refused the akka configuration: {Innermost(e).Message}", e);
        }
        catch (Exception e) when (e is AggregateException or TargetInvocationException)
        {
            throw new InvalidOperationException($"the actor system did not start: {Innermost(e).Message}", e);
        }
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }
}
