using System.Diagnostics;

namespace Mtcp.Wire;

/// <summary>
/// A 32-bit TCP sequence number. Ordering is modular (RFC 9293 §3.4, RFC 1982): a is before b when
/// the signed 32-bit difference b - a is positive, so comparisons stay correct across the 2^32 wrap.
/// Raw <c>&lt;</c> on <see cref="uint"/> sequence values must never appear elsewhere.
/// </summary>
[DebuggerDisplay("{Value}")]
public readonly struct SeqNumber : IEquatable<SeqNumber>, IComparable<SeqNumber>
{
    public SeqNumber(uint value) => Value = value;

    public uint Value { get; }

    public static SeqNumber operator +(SeqNumber seq, int delta) => new(unchecked(seq.Value + (uint)delta));

    public static SeqNumber operator +(SeqNumber seq, uint delta) => new(unchecked(seq.Value + delta));

    public static SeqNumber operator -(SeqNumber seq, int delta) => new(unchecked(seq.Value - (uint)delta));

    /// <summary>Signed distance from <paramref name="b"/> to <paramref name="a"/>: positive when a is after b.</summary>
    public static int operator -(SeqNumber a, SeqNumber b) => unchecked((int)(a.Value - b.Value));

    public static bool operator <(SeqNumber a, SeqNumber b) => (a - b) < 0;

    public static bool operator >(SeqNumber a, SeqNumber b) => (a - b) > 0;

    public static bool operator <=(SeqNumber a, SeqNumber b) => (a - b) <= 0;

    public static bool operator >=(SeqNumber a, SeqNumber b) => (a - b) >= 0;

    public static bool operator ==(SeqNumber a, SeqNumber b) => a.Value == b.Value;

    public static bool operator !=(SeqNumber a, SeqNumber b) => a.Value != b.Value;

    public static SeqNumber Max(SeqNumber a, SeqNumber b) => a >= b ? a : b;

    public static SeqNumber Min(SeqNumber a, SeqNumber b) => a <= b ? a : b;

    /// <summary>True when <paramref name="low"/> &lt;= this &lt; <paramref name="high"/> in modular order.</summary>
    public bool InRange(SeqNumber low, SeqNumber high) => unchecked(Value - low.Value) < unchecked(high.Value - low.Value);

    public bool Equals(SeqNumber other) => Value == other.Value;

    public override bool Equals(object? obj) => obj is SeqNumber other && Equals(other);

    public override int GetHashCode() => (int)Value;

    /// <summary>Orders relative to <paramref name="other"/> in modular arithmetic; only meaningful within 2^31.</summary>
    public int CompareTo(SeqNumber other) => Math.Sign(this - other);

    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
