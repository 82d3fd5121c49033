using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using Xunit.Abstractions;

namespace Mtcp.Process.Tests;

/// <summary>
/// <c>dotnet pack MtcpActors.sln</c> (README, "Using the libraries"): a package for each library and none for the
/// hosts and tests, each with its metadata and readme, depending on the others by package.
/// </summary>
[Trait("Category", "Process")]
public sealed class PackagingTests(ITestOutputHelper output) : IDisposable
{
    private const string Version = "0.1.0-preview";
    private static readonly string[] Libraries = ["Mtcp.Wire", "Mtcp.Stack", "Mtcp.Transports", "Mtcp.Actors", "Mtcp.Policies", "Mtcp.Hosting"];
    private readonly DirectoryInfo _out = Directory.CreateTempSubdirectory("mtcp-pack-");

    [Fact]
    public async Task Packing_the_solution_must_give_one_package_per_library_with_its_metadata_and_readme()
    {
        var (repository, configuration, _) = ProcessTestbed.BuildLayout();
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { "pack", "MtcpActors.sln", "--no-build", "-c", configuration, "-o", _out.FullName },
            WorkingDirectory = repository.FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var pack = System.Diagnostics.Process.Start(info)!;
        var stdout = pack.StandardOutput.ReadToEndAsync();
        var stderr = pack.StandardError.ReadToEndAsync();
        await pack.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        output.WriteLine(await stdout + await stderr);
        Assert.Equal(0, pack.ExitCode);

        var packages = _out.GetFiles("*.nupkg").Select(file => file.Name).Order().ToList();
        Assert.Equal(Libraries.Select(library => $"{library}.{Version}.nupkg").Order(), packages);
        foreach (var library in Libraries)
        {
            using var package = ZipFile.OpenRead(Path.Combine(_out.FullName, $"{library}.{Version}.nupkg"));
            var metadata = XDocument.Load(package.GetEntry($"{library}.nuspec")!.Open()).Root!.Elements().Single(element => element.Name.LocalName == "metadata");
            string Field(string name) => metadata.Elements().SingleOrDefault(element => element.Name.LocalName == name)?.Value ?? "";

            Assert.Equal(library, Field("id"));
            Assert.Equal(Version, Field("version"));
            Assert.False(string.IsNullOrWhiteSpace(Field("description")), $"{library} has no description");
            Assert.Equal("README.md", Field("readme"));
            using var readme = new StreamReader(package.GetEntry("README.md")!.Open());
            Assert.StartsWith($"# {library}", await readme.ReadToEndAsync());
            Assert.NotNull(package.GetEntry($"lib/net10.0/{library}.dll"));
        }

        using var hosting = ZipFile.OpenRead(Path.Combine(_out.FullName, $"Mtcp.Hosting.{Version}.nupkg"));
        var dependencies = XDocument.Load(hosting.GetEntry("Mtcp.Hosting.nuspec")!.Open()).Descendants()
            .Where(element => element.Name.LocalName == "dependency")
            .Select(element => element.Attribute("id")!.Value)
            .ToList();
        Assert.Contains("Mtcp.Actors", dependencies);
        Assert.Contains("Microsoft.Extensions.Hosting.Abstractions", dependencies);
    }

    public void Dispose() => _out.Delete(recursive: true);
}
