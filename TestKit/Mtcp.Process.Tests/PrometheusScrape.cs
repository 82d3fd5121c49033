using System.Globalization;
using System.Net;

namespace Mtcp.Process.Tests;

/// <summary>One scrape of a host's Prometheus endpoint (the text exposition format): the series and their values.</summary>
public sealed class PrometheusScrape
{
    private readonly List<(string Name, string Labels, double Value)> _series = [];

    private PrometheusScrape(string text)
    {
        Text = text;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }

            // name{label="value",...} value [timestamp], or name value [timestamp]
            var labelsStart = line.IndexOf('{', StringComparison.Ordinal);
            var labelsEnd = labelsStart < 0 ? -1 : line.LastIndexOf('}');
            var name = labelsStart < 0 ? line[..line.IndexOf(' ', StringComparison.Ordinal)] : line[..labelsStart];
            var labels = labelsStart < 0 ? "" : line[(labelsStart + 1)..labelsEnd];
            var value = line[((labelsStart < 0 ? name.Length : labelsEnd + 1) + 1)..].Split(' ')[0];
            _series.Add((name, labels, double.Parse(value, CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>The whole answer, for a failing assertion's message.</summary>
    public string Text { get; }

    /// <summary>GET <paramref name="endPoint"/>/metrics; the answer must be 200.</summary>
    public static async Task<PrometheusScrape> GetAsync(IPEndPoint endPoint, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = timeout };
        using var response = await http.GetAsync(new Uri($"http://{endPoint}/metrics"));
        var text = await response.Content.ReadAsStringAsync();
        return response.StatusCode == HttpStatusCode.OK
            ? new PrometheusScrape(text)
            : throw new HttpRequestException($"GET /metrics answered {(int)response.StatusCode}: {text}");
    }

    /// <summary>Whether any series of <paramref name="name"/> is exposed.</summary>
    public bool Has(string name) => _series.Any(series => series.Name == name);

    /// <summary>The sum of the series of <paramref name="name"/> whose labels include every one of <paramref name="labels"/> (<c>key="value"</c>).</summary>
    public double Sum(string name, params string[] labels) =>
        _series.Where(series => series.Name == name && labels.All(label => series.Labels.Split(',').Contains(label))).Sum(series => series.Value);
}
