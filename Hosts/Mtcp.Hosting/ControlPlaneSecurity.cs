using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;
using Mtcp.Actors.Api;
using Mtcp.Actors.Configuration;

namespace Mtcp.Hosting;

/// <summary>
/// How a server node protects its control plane (Akka.Remote: cluster gossip and control connections), from
/// <c>mtcp.security</c>: mutual TLS with certificates of the cluster's own CA (<see cref="ClusterCertificates"/>), or,
/// only when <c>mtcp.security.insecure-control-plane = on</c> says so, plain TCP. A node configured with neither
/// does not start. With TLS every association presents this node's certificate and accepts a peer only when the peer
/// presents a certificate that chains to one of the cluster's CAs (the ca-certificate file holds one, or two during a
/// rotation), whatever the system certificate store trusts (docs/threat-model.md, "control network"). The CAs reload
/// without a restart (<see cref="ReloadAuthorities"/>); the node's own certificate is read at start only.
/// </summary>
public sealed class ControlPlaneSecurity
{
    public const string Section = "mtcp.security";
    public const string AuthorityPath = $"{Section}.ca-certificate";
    public const string CertificatePath = $"{Section}.node-certificate";
    public const string KeyPath = $"{Section}.node-key";
    public const string InsecurePath = $"{Section}.insecure-control-plane";

    private const string SeedNodesPath = "akka.cluster.seed-nodes";

    private readonly X509Certificate2? _certificate;
    private readonly Lock _refusalGate = new();
    private X509Certificate2Collection _authorities;
    private ActorSystem? _refusalLog;
    private long _refusedBeforeLog;
    private string _lastRefusalBeforeLog = "";

    private ControlPlaneSecurity(X509Certificate2Collection authorities, X509Certificate2? certificate)
    {
        _authorities = authorities;
        _certificate = certificate;
    }

    /// <summary>True when the node runs without TLS because the configuration asked for it explicitly.</summary>
    public bool Insecure => _certificate is null;

    /// <summary>The URI scheme of this node's Akka addresses and of its seed nodes: Akka.Remote prefixes "ssl." with TLS on.</summary>
    public string Scheme => Insecure ? "akka.tcp" : "akka.ssl.tcp";

    /// <summary>The subject of this node's certificate, for the start-up log; null without TLS.</summary>
    public string? Subject => _certificate?.Subject;

    /// <summary>
    /// Mutual TLS for a connection of the node's own beside Akka.Remote (<see cref="SslStream"/>), as its associations
    /// have it: this node's certificate, and the peer's accepted only when it chains to the cluster's CAs in force.
    /// </summary>
    /// <exception cref="InvalidOperationException">the control plane runs without TLS.</exception>
    public SslServerAuthenticationOptions ServerAuthentication() => new()
    {
        ServerCertificate = _certificate ?? throw new InvalidOperationException("the control plane runs without TLS"),
        ClientCertificateRequired = true,
        RemoteCertificateValidationCallback = (_, peer, _, errors) => ValidatePeer(peer as X509Certificate2, null, "a client", errors, null),
    };

    /// <inheritdoc cref="ServerAuthentication"/>
    /// <param name="server">the peer's address, as its certificate names it.</param>
    public SslClientAuthenticationOptions ClientAuthentication(string server) => new()
    {
        TargetHost = server,
        ClientCertificates = [_certificate ?? throw new InvalidOperationException("the control plane runs without TLS")],
        RemoteCertificateValidationCallback = (_, peer, _, errors) => ValidatePeer(peer as X509Certificate2, null, server, errors, null),
    };

    /// <summary>
    /// The direct replication channel's mutual TLS (docs/failover.md): <see cref="ServerAuthentication"/> and
    /// <see cref="ClientAuthentication"/>; null when the control plane runs without TLS (the channel is then not used).
    /// </summary>
    public ReplicationChannelSecurity? ReplicationChannel => Insecure ? null : new ReplicationChannelSecurity(ServerAuthentication, ClientAuthentication);

    /// <summary>The subjects of the CAs whose certificates peers may present; empty without TLS.</summary>
    public IReadOnlyList<string> Authorities => Volatile.Read(ref _authorities).Select(authority => authority.Subject).ToList();

    /// <summary>
    /// Reads and checks <c>mtcp.security</c>: the three files must all be named (TLS) or all be empty with
    /// <c>insecure-control-plane = on</c>; the node's certificate must have its key and chain to the CA; every seed
    /// node must use <see cref="Scheme"/>.
    /// </summary>
    /// <exception cref="ConfigurationException">the node has no TLS and is not explicitly insecure, or a file or seed is wrong; the message names the key.</exception>
    public static ControlPlaneSecurity Read(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var insecure = HoconValues.Boolean(config, InsecurePath);
        var authorityFile = HoconValues.Text(config, AuthorityPath);
        var certificateFile = HoconValues.Text(config, CertificatePath);
        var keyFile = HoconValues.Text(config, KeyPath);
        ControlPlaneSecurity security;
        if (authorityFile.Length == 0 && certificateFile.Length == 0 && keyFile.Length == 0)
        {
            if (!insecure)
            {
                throw new ConfigurationException(
                    $"the control plane has no TLS: set {AuthorityPath}, {CertificatePath} and {KeyPath} (made by \"Mtcp.Server certs init\" and "
                    + $"\"certs issue\"), or run unauthenticated on a trusted network with {InsecurePath} = on");
            }

            security = new ControlPlaneSecurity([], null);
        }
        else
        {
            foreach (var (path, value) in new[] { (AuthorityPath, authorityFile), (CertificatePath, certificateFile), (KeyPath, keyFile) })
            {
                if (value.Length == 0)
                {
                    throw HoconValues.Invalid(config, path, "must name a PEM file when any of the mtcp.security files is set");
                }

                if (!File.Exists(value))
                {
                    throw HoconValues.Invalid(config, path, "must name an existing PEM file");
                }
            }

            var authorities = LoadAuthorities(config, authorityFile);
            var certificate = Load(config, CertificatePath, $"a readable PEM certificate whose key is {KeyPath}", () => WithPersistableKey(X509Certificate2.CreateFromPemFile(certificateFile, keyFile)));
            if (!ChainsTo(authorities, certificate, out var status))
            {
                throw HoconValues.Invalid(config, CertificatePath, $"must be issued by a CA of {AuthorityPath} and valid now ({status})");
            }

            security = new ControlPlaneSecurity(authorities, certificate);
        }

        foreach (var seed in config.GetStringList(SeedNodesPath) ?? [])
        {
            if (!seed.StartsWith(security.Scheme + "://", StringComparison.Ordinal))
            {
                throw new ConfigurationException(
                    $"{SeedNodesPath} entry {seed} must start with {security.Scheme}:// ({(security.Insecure ? "the control plane runs without TLS" : "the control plane runs with TLS")})");
            }
        }

        return security;
    }

    /// <summary>
    /// The setup of the node's actor system: <paramref name="config"/> with Akka.Remote's TLS turned on and this node's
    /// certificate and peer validation, or <paramref name="config"/> as it is when insecure.
    /// </summary>
    public ActorSystemSetup SystemSetup(Config config)
    {
        if (_certificate is null)
        {
            return ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(config));
        }

        var withTls = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = true").WithFallback(config);
        return BootstrapSetup.Create().WithConfig(withTls).And(new DotNettySslSetup(
            _certificate,
            suppressValidation: false,
            requireMutualAuthentication: true,
            validateCertificateHostname: false,
            customValidator: ValidatePeer));
    }

    /// <summary>
    /// Puts the CAs of <paramref name="config"/>'s <c>ca-certificate</c> in force for the associations made from now
    /// on: a step of a certificate rotation (docs/threat-model.md). The node's own certificate must chain to one of
    /// them, or the file is refused and the CAs in force stay.
    /// </summary>
    /// <exception cref="ConfigurationException">the node runs without TLS, or the file is unreadable or does not cover this node's certificate.</exception>
    public IReadOnlyList<string> ReloadAuthorities(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (_certificate is null)
        {
            throw new ConfigurationException($"the control plane runs without TLS ({InsecurePath} = on): TLS turns on only at a start");
        }

        var authorities = LoadAuthorities(config, HoconValues.Text(config, AuthorityPath));
        if (!ChainsTo(authorities, _certificate, out var status))
        {
            throw HoconValues.Invalid(config, AuthorityPath, $"must hold the CA that issued this node's certificate {_certificate.Subject} ({status})");
        }

        Volatile.Write(ref _authorities, authorities);
        return Authorities;
    }

    /// <summary>True when <paramref name="peer"/>'s certificate chains to one of the cluster's CAs; called for both ends of every association.</summary>
    private bool ValidatePeer(X509Certificate2? peer, X509Chain? chain, string? remotePeer, SslPolicyErrors errors, ILoggingAdapter? log)
    {
        var status = "no certificate";
        if (peer is not null && ChainsTo(Volatile.Read(ref _authorities), peer, out status))
        {
            return true;
        }

        var reason = peer is null ? "presented no certificate" : $"presented {peer.Subject} ({status})";
        Refused($"refused the TLS association with {remotePeer}: it {reason}, not a certificate of this cluster's CA");
        return false;
    }

    /// <summary>
    /// From now on refused TLS peers go to <paramref name="system"/>'s refusal log (class tls-peer-refused: a line per
    /// interval, counted on mtcp.refused), with those refused since the control port opened: a flood of handshakes
    /// costs bounded log lines, as every other refusal a stranger can cause.
    /// </summary>
    public void ReportRefusalsTo(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        lock (_refusalGate)
        {
            _refusalLog = system;
            if (_refusedBeforeLog > 0)
            {
                NodeRefusals.TlsPeerRefused(system, _lastRefusalBeforeLog, _refusedBeforeLog);
                _refusedBeforeLog = 0;
            }
        }
    }

    private void Refused(string detail)
    {
        lock (_refusalGate)
        {
            if (_refusalLog is { } system)
            {
                NodeRefusals.TlsPeerRefused(system, detail);
                return;
            }

            // Before the node's log is attached (its control port opens while the actor system starts) only the
            // first refusal is written; the rest are counted and handed over with it.
            if (_refusedBeforeLog++ == 0)
            {
                ConsoleLog.Warning($"control plane: {detail}");
            }

            _lastRefusalBeforeLog = detail;
        }
    }

    /// <summary>The certificate chains to one of <paramref name="authorities"/> as its only trusted roots, and is valid now for both TLS ends.</summary>
    private static bool ChainsTo(X509Certificate2Collection authorities, X509Certificate2 certificate, out string status)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        var built = chain.Build(certificate)
            && chain.ChainElements.Count > 1
            && authorities.Any(authority => chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(authority.RawDataMemory.Span));
        status = built ? "valid" : string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).DefaultIfEmpty("not issued by this cluster's CA"));
        return built;
    }

    /// <summary>The CA certificates of a PEM file: one, or the old and the new during a rotation.</summary>
    private static X509Certificate2Collection LoadAuthorities(Config config, string file)
    {
        var authorities = Load(config, AuthorityPath, "a readable PEM file of CA certificates", () =>
        {
            var certificates = new X509Certificate2Collection();
            certificates.ImportFromPemFile(file);
            return certificates;
        });
        if (authorities.Count == 0)
        {
            throw HoconValues.Invalid(config, AuthorityPath, "must hold at least one PEM certificate");
        }

        return authorities;
    }

    private static T Load<T>(Config config, string path, string requirement, Func<T> load)
    {
        try
        {
            return load();
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            throw HoconValues.Invalid(config, path, $"must be {requirement} ({e.Message})", e);
        }
    }

    /// <summary>SslStream needs a key it can hand to the TLS library; a PEM-loaded key is ephemeral, a PKCS#12 round trip makes it usable.</summary>
    private static X509Certificate2 WithPersistableKey(X509Certificate2 certificate)
    {
        using (certificate)
        {
            return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), password: null);
        }
    }
}
