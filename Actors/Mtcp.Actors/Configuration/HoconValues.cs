using Akka.Configuration;

namespace Mtcp.Actors;

/// <summary>
/// Reads single keys for the settings records, failing with a <see cref="ConfigurationException"/> that names
/// the key, the rule and the value found.
/// </summary>
internal static class HoconValues
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
            var requirement = config.GetString(path).TrimStart().StartsWith('-') ? "must not be negative" : "must be a duration such as 2s or 500ms";
            throw Invalid(config, path, requirement, e);
        }

        if (value < TimeSpan.Zero || (!allowZero && value == TimeSpan.Zero))
        {
            throw Invalid(config, path, allowZero ? "must not be negative" : "must be positive");
        }

        return value;
    }

    public static int Size(Config config, string path, long min, long max)
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

        return (int)value;
    }

    public static int Integer(Config config, string path, int min, int max)
    {
        RequirePresent(config, path);
        if (!int.TryParse(config.GetString(path), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value)
            || value < min || value > max)
        {
            throw Invalid(config, path, $"must be an integer from {min} to {max}");
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

    public static void RequirePresent(Config config, string path)
    {
        if (!config.HasPath(path))
        {
            throw new ConfigurationException(
                $"{path} is missing: layer the node's configuration over the reference one with MtcpConfig.WithFallback");
        }
    }

    public static ConfigurationException Invalid(Config config, string path, string requirement, Exception? cause = null)
    {
        var message = $"{path} {requirement}, got {config.GetString(path)}";
        return cause is null ? new ConfigurationException(message) : new ConfigurationException(message, cause);
    }
}
