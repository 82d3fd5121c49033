using System.Globalization;
using Akka.Configuration;

namespace Mtcp.Policies;

/// <summary>
/// Reads single keys of <c>mtcp.policies</c> and fails with a <see cref="ConfigurationException"/> that names
/// the key, the requirement and the value found, as Mtcp.Actors' settings do.
/// </summary>
internal static class HoconReader
{
    public static TimeSpan Duration(Config config, string path, bool allowZero)
    {
        RequirePresent(config, path);
        TimeSpan value;
        try
        {
            value = config.GetTimeSpan(path, null, allowInfinite: false);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            // Akka's HOCON reader cannot parse a negative duration at all; say what is wrong with it.
            var requirement = config.GetString(path).TrimStart().StartsWith('-')
                ? (allowZero ? "must not be negative" : "must be positive")
                : "must be a duration such as 2s or 500ms";
            throw Invalid(config, path, requirement, e);
        }

        if (value < TimeSpan.Zero || (!allowZero && value == TimeSpan.Zero))
        {
            throw Invalid(config, path, allowZero ? "must not be negative" : "must be positive");
        }

        return value;
    }

    /// <summary>A number in [<paramref name="min"/>, <paramref name="max"/>]; an exclusive minimum when <paramref name="minExclusive"/>.</summary>
    public static double Number(Config config, string path, double min, double max, bool minExclusive = false)
    {
        RequirePresent(config, path);
        var text = config.GetString(path);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            throw Invalid(config, path, "must be a number");
        }

        if (value < min || (minExclusive && value == min) || value > max)
        {
            var lower = minExclusive ? $"greater than {Format(min)}" : $"at least {Format(min)}";
            var range = double.IsPositiveInfinity(max) ? lower : $"{lower} and at most {Format(max)}";
            throw Invalid(config, path, $"must be {range}");
        }

        return value;
    }

    public static int Count(Config config, string path, int min)
    {
        RequirePresent(config, path);
        var text = config.GetString(path);
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            throw Invalid(config, path, "must be a whole number");
        }

        if (value < min)
        {
            throw Invalid(config, path, $"must be at least {min}");
        }

        return value;
    }

    public static bool Switch(Config config, string path)
    {
        RequirePresent(config, path);
        return config.GetString(path).Trim().ToLowerInvariant() switch
        {
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            _ => throw Invalid(config, path, "must be on or off"),
        };
    }

    /// <summary>One of <paramref name="names"/>, matched exactly (the HOCON spelling, e.g. <c>round-robin</c>).</summary>
    public static T Choice<T>(Config config, string path, IReadOnlyDictionary<string, T> names)
    {
        RequirePresent(config, path);
        var text = config.GetString(path);
        return names.TryGetValue(text, out var value)
            ? value
            : throw Invalid(config, path, $"must be one of {string.Join(", ", names.Keys)}");
    }

    public static IReadOnlyList<T> Choices<T>(Config config, string path, IReadOnlyDictionary<string, T> names)
    {
        RequirePresent(config, path);

        // Akka's reader turns a plain string into an empty list without complaint: `triggers = latency`
        // would silently switch every trigger off.
        if (config.GetValue(path).IsString())
        {
            throw Invalid(config, path, $"must be a list such as [{names.Keys.First()}]");
        }

        IList<string> texts;
        try
        {
            texts = config.GetStringList(path);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw Invalid(config, path, $"must be a list of {string.Join(", ", names.Keys)}", e);
        }

        var values = new List<T>();
        foreach (var text in texts)
        {
            if (!names.TryGetValue(text, out var value))
            {
                throw new ConfigurationException($"{path} must list only {string.Join(", ", names.Keys)}, got {text}");
            }

            if (!values.Contains(value))
            {
                values.Add(value);
            }
        }

        return values;
    }

    private static void RequirePresent(Config config, string path)
    {
        if (!config.HasPath(path))
        {
            throw new ConfigurationException(
                $"{path} is missing: layer the node's configuration over the reference one with MtcpConfig.WithFallback");
        }
    }

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static ConfigurationException Invalid(Config config, string path, string requirement, Exception? cause = null)
    {
        var message = $"{path} {requirement}, got {config.GetString(path)}";
        return cause is null ? new ConfigurationException(message) : new ConfigurationException(message, cause);
    }
}
