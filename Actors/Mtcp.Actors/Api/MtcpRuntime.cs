using Akka.Actor;
using Akka.Configuration;
using Mtcp.Actors.Configuration;
using Mtcp.Actors.Control;
using Mtcp.Actors.Endpoints;
using Mtcp.Actors.Migration;
using Mtcp.Actors.Packets;
using Mtcp.Transports;
using Mtcp.Wire;

namespace Mtcp.Actors.Api;

/// <summary>
/// The MTCP runtime of one node inside an <see cref="ActorSystem"/>: its packet actor over one transport, and the
/// listeners and connections above it. Settings come from <c>mtcp.runtime</c> and <c>mtcp.tcp</c> (the reference
/// configuration is the fallback). Listeners and clients are made with <see cref="MtcpListener"/> and
/// <see cref="MtcpClient"/>.
/// </summary>
public sealed class MtcpRuntime : IAsyncDisposable
{
    /// <summary>
    /// The meter of the runtime's migration instruments (client: started, completed, failed, duration; server:
    /// state bytes, state wait, migrated away, refused), for dotnet-counters, OpenTelemetry or a MeterListener.
    /// </summary>
    public const string MigrationMeterName = MigrationMetrics.MeterName;

    /// <summary>The instrument of <see cref="MigrationMeterName"/> recording each state reply's size at its destination, in bytes.</summary>
    public const string StateSizeInstrument = MigrationMetrics.StateSizeName;

    /// <summary>The instrument of <see cref="MigrationMeterName"/> recording a destination's wait from state request to reply, in seconds.</summary>
    public const string StateRequestDurationInstrument = MigrationMetrics.StateRequestDurationName;

    /// <summary>The instrument of <see cref="MigrationMeterName"/> counting connections that left their origin on a state ack.</summary>
    public const string MigratedAwayInstrument = MigrationMetrics.MigratedAwayName;

    /// <summary>The meter of the runtime's packet, listener and TCP instruments (refusals, SYN cookies, retransmission timeouts).</summary>
    public const string RuntimeMeterName = Diagnostics.RefusalLog.MeterName;

    /// <summary>The counter of retransmission-timer expirations of every connection of the process, on <see cref="RuntimeMeterName"/>.</summary>
    public const string RetransmissionTimeoutsInstrument = Endpoints.TcpMetrics.RetransmissionTimeoutsName;

    /// <summary>The counter of path MTU black holes the connections of the process detected, on <see cref="RuntimeMeterName"/>.</summary>
    public const string PathMtuBlackHolesInstrument = Endpoints.TcpMetrics.PathMtuBlackHolesName;

    /// <summary>The counter of path MTU probes the connections of the process sent, on <see cref="RuntimeMeterName"/>.</summary>
    public const string PathMtuProbesInstrument = Endpoints.TcpMetrics.PathMtuProbesName;

    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private readonly bool _ownsRegistry;

    private MtcpRuntime(ActorSystem system, IActorRef packetActor, IActorRef registry, bool ownsRegistry, RuntimeSettings settings, IpAddress localAddress, string transport)
    {
        _ownsRegistry = ownsRegistry;
        System = system;
        PacketActor = packetActor;
        ConnectionRegistry = registry;
        Settings = settings;
        LocalAddress = localAddress;
        TransportDescription = transport;
    }

    public ActorSystem System { get; }

    /// <summary>The packet actor: the parent of every listener and connection of this runtime.</summary>
    public IActorRef PacketActor { get; }

    /// <summary>
    /// This node's <see cref="Migration.ConnectionRegistry"/>: the control connection manager hands it peers' state
    /// requests and acks, so that they reach the endpoints holding the connections.
    /// </summary>
    internal IActorRef ConnectionRegistry { get; }

    internal RuntimeSettings Settings { get; }

    /// <summary>The transport <c>mtcp.runtime.transport</c> asked for (auto, raw, udp or memory).</summary>
    public string ConfiguredTransport => Settings.Transport.ToString().ToLowerInvariant();

    /// <summary>The address this node's segments come from.</summary>
    public IpAddress LocalAddress { get; }

    /// <summary>Which transport carries the segments, e.g. "raw IPv4 protocol 253 at 127.0.0.2".</summary>
    public string TransportDescription { get; }

    /// <summary>
    /// Reads and validates the runtime's settings (<c>mtcp.runtime</c>, <c>mtcp.tcp</c>, over the reference
    /// configuration) without starting anything, so that a host can refuse a bad configuration before it starts.
    /// </summary>
    /// <exception cref="ConfigurationException">a setting is missing or invalid; the message names it.</exception>
    public static void ValidateSettings(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var withReference = MtcpConfig.WithFallback(config);
        RuntimeSettings.Create(withReference);
        TcpSettings.Create(withReference);
    }

    /// <summary>Starts a runtime on the transport <c>mtcp.runtime.transport</c> names (not <c>memory</c>).</summary>
    /// <param name="name">the packet actor's name, unique within the system.</param>
    public static MtcpRuntime Start(ActorSystem system, string name = "mtcp") => Start(system, fabric: null, overrides: null, name);

    /// <summary>
    /// Starts a runtime with <paramref name="overrides"/> layered over the system's configuration (e.g. another
    /// <c>mtcp.runtime.local-address</c> for a second node in the same system); <paramref name="fabric"/> serves
    /// <c>mtcp.runtime.transport = memory</c>.
    /// </summary>
    /// <param name="connectionRegistry">
    /// a <see cref="Actors.ConnectionRegistry"/> shared by several runtimes of one node (one control connection manager
    /// serves them all; Cids tell their connections apart); null: the runtime starts its own.
    /// </param>
    /// <exception cref="ConfigurationException">a setting is missing or invalid.</exception>
    /// <exception cref="PacketTransportException">the transport could not be opened.</exception>
    public static MtcpRuntime Start(ActorSystem system, InMemoryPacketFabric? fabric, Config? overrides, string name = "mtcp", IActorRef? connectionRegistry = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        var config = MtcpConfig.WithFallback(overrides is null ? system.Settings.Config : overrides.WithFallback(system.Settings.Config));
        var settings = RuntimeSettings.Create(config);
        return Start(system, PacketTransports.Open(settings, fabric), settings, TcpSettings.Create(config), name, connectionRegistry);
    }

    /// <summary>
    /// Starts a runtime over a transport the caller opened (e.g. raw protocol 6 for kernel TCP peers, or a
    /// transport with injected faults); the runtime owns it from now on. <c>mtcp.runtime.transport</c> is not read.
    /// </summary>
    /// <param name="connectionRegistry">a registry shared by several runtimes of one node, as for the other overload; null: the runtime starts its own.</param>
    public static MtcpRuntime Start(ActorSystem system, IPacketTransport transport, Config? overrides, string name = "mtcp", IActorRef? connectionRegistry = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(transport);
        var config = MtcpConfig.WithFallback(overrides is null ? system.Settings.Config : overrides.WithFallback(system.Settings.Config));
        return Start(system, new OpenedTransport(transport, "the transport was supplied by the host"), RuntimeSettings.Create(config), TcpSettings.Create(config), name, connectionRegistry);
    }

    private static MtcpRuntime Start(ActorSystem system, OpenedTransport opened, RuntimeSettings settings, Stack.TcpConfig tcp, string name, IActorRef? connectionRegistry)
    {
        IActorRef packetActor;
        IActorRef registry;
        try
        {
            registry = connectionRegistry ?? system.ActorOf(Migration.ConnectionRegistry.Props(), name + "-registry");
            packetActor = system.ActorOf(Packets.PacketActor.Props(opened, settings, tcp, registry: registry), name);
        }
        catch
        {
            opened.Transport.Dispose();
            throw;
        }

        return new MtcpRuntime(system, packetActor, registry, ownsRegistry: connectionRegistry is null, settings, opened.Transport.LocalAddress, opened.Transport.ToString() ?? settings.Transport.ToString());
    }

    /// <summary>
    /// Turns migration on for the connections this runtime opens from now on (thesis ch. 4): they can migrate
    /// (<see cref="MtcpClient.MigrateAsync"/>), follow a server's MIGRATE_TRIGGER, and leave a server that stopped
    /// answering for an alternate (<c>mtcp.migration.failover</c>). A client holds no key: each
    /// connection's secret comes on its server's SYN+ACK. Server nodes turn migration on with
    /// <see cref="MtcpServerNode.StartAsync"/>. Call before connecting.
    /// </summary>
    /// <exception cref="ConfigurationException">a <c>mtcp.migration.failover</c> setting is invalid.</exception>
    public Task EnableClientMigrationAsync(CancellationToken cancellationToken = default) =>
        EnableMigrationAsync(new MigrationSupport(Authenticator: null, Failover: FailoverSettings.Create(MtcpConfig.WithFallback(System.Settings.Config))), cancellationToken);

    /// <summary>
    /// Turns migration on. On a server node (<paramref name="support"/> with the cluster key's authenticator and the
    /// node's control connection manager): listeners' connections keep a read log, take special SYNs, answer state
    /// requests and announce the directory's alternates on SYN+ACKs, and the control connection manager seals
    /// control messages under the cluster key. Without them, only the connections this runtime opens migrate.
    /// </summary>
    internal async Task EnableMigrationAsync(MigrationSupport support, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(support);
        if (support.ControlManager is { } controlManager)
        {
            var authenticator = support.Authenticator
                ?? throw new ArgumentException("a server node's migration needs the cluster key's authenticator", nameof(support));
            await controlManager.Ask<ControlAuthenticatorInUse>(new UseControlAuthenticator(authenticator), StopTimeout, cancellationToken).ConfigureAwait(false);
        }

        await PacketActor.Ask<MigrationEnabled>(new EnableMigration(support), StopTimeout, cancellationToken).ConfigureAwait(false);
        MigrationEnabled = true;
    }

    /// <summary>True once migration is on (<see cref="EnableClientMigrationAsync"/>, <see cref="MtcpServerNode.StartAsync"/>).</summary>
    public bool MigrationEnabled { get; private set; }

    /// <summary>The packet actor's counters: segments received, routed, malformed by reason, strays and RSTs sent.</summary>
    public Task<PacketStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default) =>
        PacketActor.Ask<PacketStatistics>(GetPacketStatistics.Instance, cancellationToken);

    /// <summary>
    /// Sends the client of <paramref name="grant"/>'s connection a MIGRATE_TRIGGER from this node, port
    /// <paramref name="senderPort"/>, as a third party holding the connection's trigger key (thesis 3.2.1). Best effort,
    /// like any trigger: the client acts on it only if it verifies for its current epoch and no migration is in progress.
    /// </summary>
    public void SendMigrationTrigger(MigrationTriggerGrant grant, ushort senderPort)
    {
        ArgumentNullException.ThrowIfNull(grant);
        PacketActor.Tell(new SendMigrationTrigger(grant, senderPort));
    }

    internal Task<EndpointChannel> ConnectAsync(IpAddress remoteAddress, ushort remotePort, CancellationToken cancellationToken)
    {
        var connected = new TaskCompletionSource<EndpointChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        PacketActor.Tell(new ConnectTo(remoteAddress, remotePort, connected, cancellationToken));
        return connected.Task;
    }

    /// <summary>Stops the packet actor, every listener and connection under it, and closes the transport.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await PacketActor.GracefulStop(StopTimeout).ConfigureAwait(false);
        }
        catch (TaskCanceledException)
        {
            // The actor did not confirm in time; it is stopping regardless.
        }

        if (_ownsRegistry)
        {
            System.Stop(ConnectionRegistry);
        }
    }
}
