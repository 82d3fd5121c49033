using System.Globalization;
using Akka.Configuration;

namespace Mtcp.Actors.Api;

/// <summary>
/// Reads single keys for the settings records of the runtime, the policies and the hosts, failing with a <see cref="ConfigurationException"/> that names
/// the key, the rule and the value found.
/// </summary>
public static class HoconValues
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
            var requirement = !config.GetString(path).TrimStart().StartsWith('-') ? "must be a duration such as 2s or 500ms"
                : allowZero ? "must not be negative" : "must be positive";
            throw Invalid(config, path, requirement, e);
        }

        if (value < TimeSpan.Zero || (!allowZero && value == TimeSpan.Zero))
        {
            throw Invalid(config, path, allowZero ? "must not be negative" : "must be positive");
        }

        return value;
    }

    public static int Size(Config config, string path, int min, int max) => (int)LongSize(config, path, min, max);

    public static long LongSize(Config config, string path, long min, long max)
    {
        RequirePresent(config, path);
        long? size;
        try
        {
            size = config.GetByteSize(path);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw Invalid(config, path, "must be a size in bytes such as 65536b or 256KiB", e);
        }

        if (size is not { } value || value < min || value > max)
        {
            throw Invalid(config, path, $"must be a size of {min} to {max} bytes");
        }

        return value;
    }

    public static int Integer(Config config, string path, int min, int max)
    {
        RequirePresent(config, path);
        if (!int.TryParse(config.GetString(path), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            || value < min || value > max)
        {
            throw Invalid(config, path, $"must be an integer from {min} to {max}");
        }

        return value;
    }

    /// <summary>
    /// A finite number in [<paramref name="min"/>, <paramref name="max"/>] (<paramref name="max"/> may be infinite: no
    /// upper bound); the minimum is excluded when <paramref name="minExclusive"/>.
    /// </summary>
    public static double Number(Config config, string path, double min, double max, bool minExclusive = false)
    {
        RequirePresent(config, path);
        if (!double.TryParse(config.GetString(path), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            throw Invalid(config, path, "must be a number");
        }

        if (value < min || (minExclusive && value == min) || value > max)
        {
            var lower = minExclusive ? $"greater than {Format(min)}" : $"at least {Format(min)}";
            var range = !double.IsFinite(max) ? lower
                : minExclusive ? $"{lower} and at most {Format(max)}"
                : $"a number from {Format(min)} to {Format(max)}";
            throw Invalid(config, path, $"must be {range}");
        }

        return value;
    }

    public static bool Boolean(Config config, string path)
    {
        RequirePresent(config, path);
        return config.GetString(path).Trim().ToLowerInvariant() switch
        {
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            _ => throw Invalid(config, path, "must be on or off"),
        };
    }

    public static string Text(Config config, string path)
    {
        RequirePresent(config, path);
        return config.GetString(path).Trim();
    }

    /// <summary>One of <paramref name="names"/>, matched exactly (the HOCON spelling, e.g. <c>round-robin</c>).</summary>
    public static T Choice<T>(Config config, string path, IReadOnlyDictionary<string, T> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        RequirePresent(config, path);
        return names.TryGetValue(config.GetString(path), out var value)
            ? value
            : throw Invalid(config, path, $"must be one of {string.Join(", ", names.Keys)}");
    }

    /// <summary>A list of <paramref name="names"/>, each matched exactly; a name listed twice counts once.</summary>
    public static IReadOnlyList<T> Choices<T>(Config config, string path, IReadOnlyDictionary<string, T> names)
    {
        ArgumentNullException.ThrowIfNull(names);
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

    /// <summary>An "address:port" string with a concrete IPv4 or IPv6 address.</summary>
    public static System.Net.IPEndPoint EndPoint(Config config, string path)
    {
        var text = Text(config, path);
        if (!System.Net.IPEndPoint.TryParse(text, out var endPoint) || endPoint.Port == 0 || !text.Contains(':', StringComparison.Ordinal) || text.EndsWith(']'))
        {
            throw Invalid(config, path, "must be \"address:port\" with a port from 1 to 65535, e.g. 127.0.0.1:8080");
        }

        return endPoint;
    }

    /// <summary>A list of "address:port" strings, each with a concrete address that clients can connect to.</summary>
    public static IReadOnlyList<System.Net.IPEndPoint> EndPoints(Config config, string path)
    {
        RequirePresent(config, path);
        IList<string> texts;
        try
        {
            texts = config.GetStringList(path);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw new ConfigurationException($"{path} must be a list of \"address:port\" strings", e);
        }

        var endPoints = new List<System.Net.IPEndPoint>(texts.Count);
        foreach (var text in texts)
        {
            if (!System.Net.IPEndPoint.TryParse(text, out var endPoint) || !text.Contains(':', StringComparison.Ordinal) || text.EndsWith(']'))
            {
                throw new ConfigurationException($"{path} entry {text} must be \"address:port\", e.g. 10.0.0.2:80 or [2001:db8::2]:80");
            }

            if (endPoint.Port == 0)
            {
                throw new ConfigurationException($"{path} entry {text} must have a port from 1 to 65535");
            }

            if (endPoint.Address.Equals(System.Net.IPAddress.Any) || endPoint.Address.Equals(System.Net.IPAddress.IPv6Any))
            {
                throw new ConfigurationException($"{path} entry {text} must name a concrete address: clients cannot connect to {endPoint.Address}");
            }

            endPoints.Add(endPoint);
        }

        return endPoints;
    }

    public static void RequirePresent(Config config, string path)
    {
        if (!config.HasPath(path))
        {
            throw new ConfigurationException(
                $"{path} is missing: layer the configuration over the reference one (MtcpConfig.WithFallback)");
        }
    }

    public static ConfigurationException Invalid(Config config, string path, string requirement, Exception? cause = null)
    {
        var message = $"{path} {requirement}, got {config.GetString(path)}";
        return cause is null ? new ConfigurationException(message) : new ConfigurationException(message, cause);
    }

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}
