using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mtcp.Hosting;

/// <summary>The files of one certificate: the certificate and its private key, both PEM.</summary>
public sealed record CertificateFiles(string CertificatePath, string KeyPath);

/// <summary>
/// The cluster's own certificate authority and the certificates it issues to server nodes, made with .NET's
/// <see cref="CertificateRequest"/> (docs/threat-model.md, "control network"). Every node presents a certificate of
/// this CA on Akka.Remote and accepts only peers that present one too (mutual TLS). Keys are ECDSA P-256; private
/// keys are written readable by their owner only.
/// </summary>
public static class ClusterCertificates
{
    public const string AuthorityName = "ca";

    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    /// <summary>The certificate and key files of <paramref name="name"/> in <paramref name="directory"/>: name.crt and name.key.</summary>
    public static CertificateFiles FilesOf(string directory, string name) =>
        new(Path.Combine(directory, $"{name}.crt"), Path.Combine(directory, $"{name}.key"));

    /// <summary>Creates a new CA (ca.crt, ca.key) in <paramref name="directory"/>; refuses to overwrite one.</summary>
    /// <exception cref="IOException">the directory already holds a CA.</exception>
    public static CertificateFiles CreateAuthority(string directory, string commonName, TimeSpan validity)
    {
        var files = FilesOf(directory, AuthorityName);
        RefuseOverwrite(files);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={Escape(commonName)}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now + validity);
        Write(files, certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
        return files;
    }

    /// <summary>
    /// Issues a node certificate for <paramref name="name"/> under the CA in <paramref name="authorityDirectory"/>,
    /// valid for TLS server and client authentication (a node is both ends of its associations); the addresses and
    /// host names in <paramref name="subjectAlternativeNames"/> go in its subject alternative names.
    /// </summary>
    public static CertificateFiles IssueNode(string authorityDirectory, string name, IReadOnlyList<string> subjectAlternativeNames, string directory, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(subjectAlternativeNames);
        var files = FilesOf(directory, name);
        RefuseOverwrite(files);
        var authorityFiles = FilesOf(authorityDirectory, AuthorityName);
        using var authority = X509Certificate2.CreateFromPemFile(authorityFiles.CertificatePath, authorityFiles.KeyPath);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={Escape(name)}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuthentication, ClientAuthentication], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        foreach (var alternative in subjectAlternativeNames)
        {
            if (System.Net.IPAddress.TryParse(alternative, out var address))
            {
                names.AddIpAddress(address);
            }
            else
            {
                names.AddDnsName(alternative);
            }
        }

        request.CertificateExtensions.Add(names.Build());
        var now = DateTimeOffset.UtcNow;
        var notAfter = now + validity < authority.NotAfter ? now + validity : new DateTimeOffset(authority.NotAfter.ToUniversalTime());
        using var certificate = request.Create(authority, now.AddMinutes(-5), notAfter, RandomNumberGenerator.GetBytes(16));
        Write(files, certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
        return files;
    }

    /// <summary>
    /// The <c>mtcp.security</c> lines that make a node present <paramref name="node"/> and trust the CA of
    /// <paramref name="authorityDirectory"/>.
    /// </summary>
    public static string SecurityConfig(string authorityDirectory, CertificateFiles node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return $"mtcp.security {{ ca-certificate = \"{FilesOf(authorityDirectory, AuthorityName).CertificatePath}\", "
            + $"node-certificate = \"{node.CertificatePath}\", node-key = \"{node.KeyPath}\" }}";
    }

    private static void RefuseOverwrite(CertificateFiles files)
    {
        if (File.Exists(files.CertificatePath) || File.Exists(files.KeyPath))
        {
            throw new IOException($"{files.CertificatePath} or {files.KeyPath} already exists; remove it first to replace it");
        }
    }

    private static void Write(CertificateFiles files, string certificatePem, string keyPem)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(files.KeyPath))!);

        // The key is created empty with owner-only permissions before the secret is written into it.
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var keyFile = new StreamWriter(files.KeyPath, options))
        {
            keyFile.Write(keyPem + "\n");
        }

        // Ending in a newline, as PEM files do, so that "cat old-ca.crt new-ca.crt" makes a bundle of two.
        File.WriteAllText(files.CertificatePath, certificatePem + "\n");
    }

    private static string Escape(string name) =>
        name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? name
            : throw new ArgumentException($"a certificate name is letters, digits, '-', '_' and '.', got \"{name}\"", nameof(name));
}
