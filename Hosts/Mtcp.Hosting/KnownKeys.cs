using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace Mtcp.Hosting;

/// <summary>
/// The <c>mtcp.*</c> keys a host reads: every key of the reference configuration and of the host's own file, which
/// document them. An override file's key under <c>mtcp</c> that is not one of them is a mistake (a misspelled
/// <c>cluster-kee</c> would otherwise leave migration silently off) and stops the host, naming the nearest known key.
/// Akka.NET's own keys (<c>akka.*</c>) are not checked here: Akka reads them itself.
/// </summary>
public sealed class KnownKeys
{
    /// <summary>The section this check covers.</summary>
    public const string Section = "mtcp";

    private readonly HashSet<string> _keys;
    private readonly string[] _openSections;

    /// <param name="documented">the configurations that document the keys: the reference and the host's own file.</param>
    public KnownKeys(IEnumerable<Config> documented)
    {
        ArgumentNullException.ThrowIfNull(documented);
        var leaves = documented.SelectMany(Leaves).Where(leaf => InSection(leaf.Path)).ToList();
        _keys = leaves.Select(leaf => leaf.Path).ToHashSet(StringComparer.Ordinal);

        // An empty object in a documenting file is a map whose keys the user chooses.
        _openSections = [.. leaves.Where(leaf => leaf.Value.IsObject()).Select(leaf => leaf.Path + ".")];
    }

    /// <exception cref="ConfigurationException">
    /// <paramref name="config"/> sets a key under <c>mtcp</c> that no documenting file has, or a key with no value; the
    /// message names <paramref name="source"/>, the key and the nearest known key.
    /// </exception>
    public void Check(Config config, string source)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var (path, value) in Leaves(config))
        {
            if (!value.IsObject() && value.Values.Count == 0)
            {
                throw new ConfigurationException($"{source} is not valid HOCON: {path} has no value");
            }

            if (!InSection(path) || _keys.Contains(path) || _openSections.Any(section => path.StartsWith(section, StringComparison.Ordinal)))
            {
                continue;
            }

            var problem = _keys.Any(key => key.StartsWith(path + ".", StringComparison.Ordinal))
                ? $"{path} is a section, not a value"
                : $"unknown key {path}";
            throw new ConfigurationException($"{source}: {problem} (did you mean {Nearest(path)}?)");
        }
    }

    /// <summary>The known key with the smallest edit distance to <paramref name="path"/> (the first in order on a tie).</summary>
    public string Nearest(string path) =>
        _keys.Order(StringComparer.Ordinal).MinBy(key => EditDistance(path, key)) ?? Section;

    /// <summary>Levenshtein distance: the fewest single-character insertions, deletions and substitutions.</summary>
    public static int EditDistance(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private static bool InSection(string path) => path.StartsWith(Section + ".", StringComparison.Ordinal);

    /// <summary>Every value that is not a non-empty object, with its full path (keys holding a dot quoted).</summary>
    private static IEnumerable<(string Path, HoconValue Value)> Leaves(Config config)
    {
        var pending = new Stack<(string Path, HoconValue Value)>();
        pending.Push(("", config.Root));
        while (pending.TryPop(out var entry))
        {
            var items = entry.Value.IsObject() ? entry.Value.GetObject().Items : null;
            if (items is null || (items.Count == 0 && entry.Path.Length > 0))
            {
                yield return entry;
                continue;
            }

            foreach (var (key, value) in items)
            {
                var segment = key.Contains('.', StringComparison.Ordinal) ? $"\"{key}\"" : key;
                pending.Push((entry.Path.Length == 0 ? segment : $"{entry.Path}.{segment}", value));
            }
        }
    }
}
