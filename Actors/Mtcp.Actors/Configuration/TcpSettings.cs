using Akka.Configuration;
using Mtcp.Actors.Api;
using Mtcp.Stack;

namespace Mtcp.Actors.Configuration;

/// <summary>
/// The <c>mtcp.tcp</c> section, read once into the engine's <see cref="TcpConfig"/> and validated by it; a
/// rule the engine refuses is reported as a <see cref="ConfigurationException"/> naming the HOCON key.
/// </summary>
internal static class TcpSettings
{
    public const string Section = "mtcp.tcp";

    private const string PathMtuProbingSection = Section + ".path-mtu-probing";

    private static readonly Dictionary<string, CongestionControlAlgorithm> CongestionControls = new()
    {
        ["cubic"] = CongestionControlAlgorithm.Cubic,
        ["newreno"] = CongestionControlAlgorithm.NewReno,
    };

    public static TcpConfig Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string WindowScalePath = Section + ".window-scale";
        HoconValues.RequirePresent(config, WindowScalePath);
        var windowScaleText = config.GetString(WindowScalePath).Trim();
        byte? windowScale = windowScaleText is "off" or "false" or "no"
            ? null
            : (byte)HoconValues.Integer(config, WindowScalePath, 0, 14);

        var tcp = new TcpConfig
        {
            MaxSegmentSize = HoconValues.Integer(config, Section + ".max-segment-size", 64, 65495),
            SendBufferSize = HoconValues.Size(config, Section + ".send-buffer-size", 64, int.MaxValue),
            ReceiveBufferSize = HoconValues.Size(config, Section + ".receive-buffer-size", 64, int.MaxValue),
            WindowScaleShift = windowScale,
            SelectiveAcknowledgment = HoconValues.Boolean(config, Section + ".sack"),
            CongestionControl = HoconValues.Choice(config, Section + ".congestion-control", CongestionControls),
            Nagle = HoconValues.Boolean(config, Section + ".nagle"),
            InitialRto = HoconValues.Duration(config, Section + ".initial-rto", allowZero: false),
            MinRto = HoconValues.Duration(config, Section + ".min-rto", allowZero: false),
            MaxRto = HoconValues.Duration(config, Section + ".max-rto", allowZero: false),
            DelayedAckTimeout = HoconValues.Duration(config, Section + ".delayed-ack", allowZero: true),
            AckPerBurst = HoconValues.Boolean(config, Section + ".ack-per-burst"),
            MaximumSegmentLifetime = HoconValues.Duration(config, Section + ".maximum-segment-lifetime", allowZero: true),
            ConnectTimeout = HoconValues.Duration(config, Section + ".connect-timeout", allowZero: false),
            MaxSynRetransmissions = HoconValues.Integer(config, Section + ".max-syn-retransmissions", 0, int.MaxValue),
            MaxRetransmissions = HoconValues.Integer(config, Section + ".max-retransmissions", 1, int.MaxValue),
            InitialWindowSegments = HoconValues.Integer(config, Section + ".initial-window-segments", 1, int.MaxValue),
            PathMtuProbing = HoconValues.Boolean(config, PathMtuProbingSection + ".enabled"),
            BlackHoleTimeouts = HoconValues.Integer(config, PathMtuProbingSection + ".black-hole-timeouts", 1, int.MaxValue),
            BaseSegmentSize = HoconValues.Integer(config, PathMtuProbingSection + ".base-segment-size", 64, 65495),
            PathMtuRaiseInterval = HoconValues.Duration(config, PathMtuProbingSection + ".raise-interval", allowZero: false),
            PathMtuSearchStep = HoconValues.Integer(config, PathMtuProbingSection + ".search-step", 1, int.MaxValue),
        };

        try
        {
            return tcp.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ConfigurationException($"{Section}: {e.Message} (keys: {KeyOf(e.ParamName)})", e);
        }
    }

    private static string KeyOf(string? field) => field switch
    {
        nameof(TcpConfig.MaxSegmentSize) => Section + ".max-segment-size",
        nameof(TcpConfig.SendBufferSize) => Section + ".send-buffer-size",
        nameof(TcpConfig.ReceiveBufferSize) => Section + ".receive-buffer-size",
        nameof(TcpConfig.InitialRto) or nameof(TcpConfig.MinRto) or nameof(TcpConfig.MaxRto) => $"{Section}.initial-rto, min-rto, max-rto",
        nameof(TcpConfig.DelayedAckTimeout) => Section + ".delayed-ack",
        nameof(TcpConfig.PathMtuProbing) => PathMtuProbingSection + ".enabled",
        nameof(TcpConfig.BlackHoleTimeouts) => PathMtuProbingSection + ".black-hole-timeouts",
        nameof(TcpConfig.BaseSegmentSize) => PathMtuProbingSection + ".base-segment-size",
        nameof(TcpConfig.PathMtuRaiseInterval) => PathMtuProbingSection + ".raise-interval",
        nameof(TcpConfig.PathMtuSearchStep) => PathMtuProbingSection + ".search-step",
        _ => Section + "." + field,
    };
}
