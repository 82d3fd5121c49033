using System.Diagnostics.Metrics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using System.Text;

namespace Mtcp.Process.Tests;

/// <summary>
/// docs/metrics.md against the hosts as built: every instrument of every <c>Mtcp.*</c> meter the server node and the
/// agent can create, with its type, unit and description, and nothing else. The hosts' assemblies are loaded in a
/// context of their own (as their processes load them), every class that holds a <see cref="Meter"/> is initialised,
/// and a <see cref="MeterListener"/> records what is published.
/// </summary>
[Trait("Category", "Process")]
public sealed class InstrumentCatalogTests
{
    private const string MeterPrefix = "Mtcp.";

    [Fact]
    public void Docs_metrics_must_list_every_instrument_of_the_hosts_as_the_code_defines_it()
    {
        var instruments = InstrumentsOf(ProcessTestbed.ServerDll).Concat(InstrumentsOf(ProcessTestbed.AgentDll)).Distinct().ToList();
        var expected = Catalog(instruments);
        var documented = Catalog(File.ReadAllLines(Path.Combine(ProcessTestbed.Repository.FullName, "docs", "metrics.md")));

        Assert.Contains(instruments, instrument => instrument.Meter == "Mtcp.Agent");
        Assert.Contains(instruments, instrument => instrument.Meter == "Mtcp.Server");
        Assert.True(
            expected.SequenceEqual(documented),
            $"docs/metrics.md does not match the code; its tables should read:\n\n{Tables(instruments)}\n"
            + $"missing or different: {string.Join("; ", expected.Except(documented))}\nnot in the code: {string.Join("; ", documented.Except(expected))}");
    }

    [Fact]
    public void Every_instrument_must_have_a_unit_and_seconds_for_durations()
    {
        var instruments = InstrumentsOf(ProcessTestbed.ServerDll).Concat(InstrumentsOf(ProcessTestbed.AgentDll)).Distinct().ToList();

        Assert.All(instruments, instrument =>
        {
            Assert.Matches("^mtcp(\\.[a-z][a-z0-9_]*)+$", instrument.Name);
            Assert.False(string.IsNullOrEmpty(instrument.Unit), $"{instrument.Name} has no unit");
            Assert.False(string.IsNullOrEmpty(instrument.Description), $"{instrument.Name} has no description");
            if (instrument.Name.EndsWith(".duration", StringComparison.Ordinal))
            {
                Assert.Equal("s", instrument.Unit);
            }
        });
        Assert.DoesNotContain(instruments, instrument => instrument.Unit is "ms" or "us" or "bytes");
    }

    private sealed record Instrument(string Meter, string Name, string Type, string Unit, string Description);

    /// <summary>Each instrument as one comparable line, sorted.</summary>
    private static List<string> Catalog(IEnumerable<Instrument> instruments) =>
        [.. instruments.Select(i => $"{i.Meter} | {i.Name} | {i.Type} | {i.Unit} | {i.Description}").Order(StringComparer.Ordinal)];

    /// <summary>The rows of docs/metrics.md's tables, each under its "## `meter`" heading, as <see cref="Catalog(IEnumerable{Instrument})"/> writes them.</summary>
    private static List<string> Catalog(string[] lines)
    {
        var rows = new List<Instrument>();
        var meter = "";
        foreach (var line in lines)
        {
            if (line.StartsWith("## `", StringComparison.Ordinal))
            {
                meter = line.Trim('#', ' ', '`');
            }
            else if (line.StartsWith("| `mtcp.", StringComparison.Ordinal))
            {
                var cells = line.Trim('|').Split('|').Select(cell => cell.Trim()).ToArray();
                rows.Add(new Instrument(meter, cells[0].Trim('`'), cells[1], cells[2].Trim('`'), cells[3]));
            }
        }

        return Catalog(rows);
    }

    private static string Tables(IEnumerable<Instrument> instruments)
    {
        var text = new StringBuilder();
        foreach (var meter in instruments.GroupBy(instrument => instrument.Meter).OrderBy(group => group.Key, StringComparer.Ordinal))
        {
            text.Append("## `").Append(meter.Key).Append("`\n\n| instrument | type | unit | meaning |\n|---|---|---|---|\n");
            foreach (var i in meter.OrderBy(instrument => instrument.Name, StringComparer.Ordinal))
            {
                text.Append($"| `{i.Name}` | {i.Type} | `{i.Unit}` | {i.Description} |\n");
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    /// <summary>
    /// Loads the host at <paramref name="hostDll"/> and its <c>Mtcp.*</c> assemblies in a context of their own, runs the
    /// static constructor of every type with a static <see cref="Meter"/> field and constructs every type with an
    /// instance one (with default arguments: instruments are created in constructors, observed only when collected).
    /// </summary>
    private static List<Instrument> InstrumentsOf(string hostDll)
    {
        var published = new List<Instrument>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name.StartsWith(MeterPrefix, StringComparison.Ordinal))
                {
                    lock (published)
                    {
                        published.Add(new Instrument(instrument.Meter.Name, instrument.Name, TypeOf(instrument), instrument.Unit ?? "", instrument.Description ?? ""));
                    }
                }
            },
        };
        listener.Start();

        var context = new HostLoadContext(hostDll);
        var directory = Path.GetDirectoryName(hostDll)!;
        foreach (var dll in Directory.GetFiles(directory, MeterPrefix + "*.dll"))
        {
            var assembly = context.LoadFromAssemblyPath(dll);
            foreach (var type in assembly.GetTypes())
            {
                var fields = type.GetFields(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
                    .Where(field => field.FieldType == typeof(Meter))
                    .ToList();
                if (fields.Any(field => field.IsStatic))
                {
                    RuntimeHelpers.RunClassConstructor(type.TypeHandle);
                }

                if (fields.Any(field => !field.IsStatic))
                {
                    var constructor = type.GetConstructors().Single();
                    var meterHolder = constructor.Invoke([.. constructor.GetParameters().Select(parameter => parameter.ParameterType.IsValueType ? Activator.CreateInstance(parameter.ParameterType) : null)]);
                    (meterHolder as IDisposable)?.Dispose();
                }
            }
        }

        lock (published)
        {
            return [.. published.Distinct()];
        }
    }

    private static string TypeOf(System.Diagnostics.Metrics.Instrument instrument) => instrument.GetType().GetGenericTypeDefinition().Name switch
    {
        "Counter`1" or "ObservableCounter`1" => "counter",
        "UpDownCounter`1" or "ObservableUpDownCounter`1" => "up-down counter",
        "Histogram`1" => "histogram",
        "Gauge`1" or "ObservableGauge`1" => "gauge",
        var other => other,
    };

    /// <summary>The host's own assemblies and packages, resolved as its process resolves them; the framework's from the default context.</summary>
    private sealed class HostLoadContext(string hostDll) : AssemblyLoadContext($"instruments of {Path.GetFileName(hostDll)}")
    {
        private readonly AssemblyDependencyResolver _resolver = new(hostDll);

        protected override Assembly? Load(AssemblyName assemblyName) =>
            assemblyName.Name!.StartsWith("System.", StringComparison.Ordinal) || _resolver.ResolveAssemblyToPath(assemblyName) is not { } path
                ? null
                : LoadFromAssemblyPath(path);
    }
}
