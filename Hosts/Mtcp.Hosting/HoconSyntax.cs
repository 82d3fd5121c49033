using Akka.Configuration;

namespace Mtcp.Hosting;

/// <summary>
/// The structural checks Akka.NET's HOCON parser leaves out. It accepts <c>{{{ unbalanced</c> as a key with no value
/// and silently drops whatever follows an unclosed brace, so a typo can turn off half a file. This scan finds
/// unbalanced braces and brackets (<c>${</c> substitutions included) and unterminated strings, skipping comments
/// (<c>#</c>, <c>//</c>) and quoted text, and names the line.
/// </summary>
public static class HoconSyntax
{
    /// <exception cref="ConfigurationException">the text is not well formed; the message names the line.</exception>
    public static void Check(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var open = new Stack<(char Bracket, int Line)>();
        var line = 1;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case '\n':
                    line++;
                    break;
                case '#':
                case '/' when i + 1 < text.Length && text[i + 1] == '/':
                    while (i + 1 < text.Length && text[i + 1] != '\n')
                    {
                        i++;
                    }

                    break;
                case '"':
                    i = SkipString(text, i, ref line, source);
                    break;
                case '{' or '[':
                    open.Push((c, line));
                    break;
                case '}' or ']':
                    var expected = c == '}' ? '{' : '[';
                    if (!open.TryPop(out var opened))
                    {
                        throw Error(source, line, $"'{c}' closes nothing");
                    }

                    if (opened.Bracket != expected)
                    {
                        throw Error(source, line, $"'{c}' does not match the '{opened.Bracket}' opened on line {opened.Line}");
                    }

                    break;
            }
        }

        if (open.TryPeek(out var unclosed))
        {
            throw Error(source, unclosed.Line, $"'{unclosed.Bracket}' is never closed");
        }
    }

    /// <summary>Index of the closing quote of the string starting at <paramref name="start"/> (triple-quoted or not).</summary>
    private static int SkipString(string text, int start, ref int line, string source)
    {
        var startLine = line;
        if (string.CompareOrdinal(text, start, "\"\"\"", 0, 3) == 0)
        {
            // A triple-quoted string spans lines and has no escapes; it ends at the last quote of a run of three or more.
            var end = text.IndexOf("\"\"\"", start + 3, StringComparison.Ordinal);
            if (end < 0)
            {
                throw Error(source, startLine, "a \"\"\" string is never closed");
            }

            while (end + 3 < text.Length && text[end + 3] == '"')
            {
                end++;
            }

            line += text.AsSpan(start, end - start).Count('\n');
            return end + 2;
        }

        for (var i = start + 1; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '\\':
                    i++;
                    break;
                case '"':
                    return i;
                case '\n':
                    throw Error(source, startLine, "a quoted string is not closed on its line");
            }
        }

        throw Error(source, startLine, "a quoted string is never closed");
    }

    private static ConfigurationException Error(string source, int line, string problem) =>
        new($"{source} is not valid HOCON: line {line}: {problem}");
}
