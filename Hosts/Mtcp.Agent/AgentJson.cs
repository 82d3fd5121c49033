using System.Text.Json.Serialization;

namespace Mtcp.Agent;

/// <summary>Source-generated JSON for the control endpoint's answers.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(AgentStatus))]
[JsonSerializable(typeof(MigrateResult))]
internal sealed partial class AgentJson : JsonSerializerContext;
