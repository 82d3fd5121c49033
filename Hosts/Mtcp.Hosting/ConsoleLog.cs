namespace Mtcp.Hosting;

/// <summary>
/// The hosts' log: one line per event on standard error, "time level message", so that standard output stays free
/// for a command's result and tests and operators can follow what a node does.
/// </summary>
public static class ConsoleLog
{
    private static readonly Lock Gate = new();

    public static void Info(string message) => Write("INFO ", message);

    public static void Warning(string message) => Write("WARN ", message);

    public static void Error(string message) => Write("ERROR", message);

    private static void Write(string level, string message)
    {
        lock (Gate)
        {
            Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {level} {message}");
        }
    }
}
