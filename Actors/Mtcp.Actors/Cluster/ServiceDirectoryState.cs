using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;

namespace Mtcp.Actors.Cluster;

/// <summary>
/// What one node's <see cref="ServiceDirectory"/> knows, as an immutable value the actor swaps (the logic is
/// tested without actors). A member is in the view when it is Up, reachable from here, and has announced its
/// addresses; leaving, exiting, being downed or removed, or becoming unreachable takes it out at once.
/// </summary>
internal sealed class ServiceDirectoryState
{
    private readonly ImmutableHashSet<Address> _up;
    private readonly ImmutableHashSet<Address> _unreachable;
    private readonly ImmutableDictionary<Address, ServiceAnnouncement> _announcements;

    private ServiceDirectoryState(
        ServiceAnnouncement self,
        ImmutableHashSet<Address> up,
        ImmutableHashSet<Address> unreachable,
        ImmutableDictionary<Address, ServiceAnnouncement> announcements)
    {
        Self = self;
        _up = up;
        _unreachable = unreachable;
        _announcements = announcements;
        Alternates = new AlternateServerList(
            Visible().Where(address => !address.Equals(self.ControlAddress)).SelectMany(address => _announcements[address].ServiceEndpoints));
        ControlMappings = new ControlMappings(
            Visible().SelectMany(address => _announcements[address].ServiceEndpoints.Select(endpoint => KeyValuePair.Create(endpoint, address)))
                .DistinctBy(pair => pair.Key),
            Visible().Where(address => _announcements[address].ReplicationChannelPort != 0)
                .Select(address => KeyValuePair.Create(address, _announcements[address].ReplicationChannelPort)));
    }

    /// <summary>This node's own announcement (<see cref="ServiceAnnouncement.ReplyRequested"/> clear).</summary>
    public ServiceAnnouncement Self { get; }

    public AlternateServerList Alternates { get; }

    public ControlMappings ControlMappings { get; }

    /// <summary>Members the failure detector marks unreachable, not removed yet.</summary>
    public IReadOnlySet<Address> Unreachable => _unreachable;

    /// <summary>Up members other than this node whose announcement has not arrived.</summary>
    public IEnumerable<Address> SilentMembers => _up.Where(address => !address.Equals(Self.ControlAddress) && !_announcements.ContainsKey(address));

    public static ServiceDirectoryState Initial(ServiceAnnouncement self)
    {
        ArgumentNullException.ThrowIfNull(self);
        self = self.WithReplyRequested(false);
        return new ServiceDirectoryState(self, [], [], ImmutableDictionary<Address, ServiceAnnouncement>.Empty.Add(self.ControlAddress, self));
    }

    public bool HasAnnouncementFrom(Address member) => _announcements.ContainsKey(member);

    public ServiceDirectoryState WithMemberUp(Address member) =>
        _up.Contains(member) ? this : new ServiceDirectoryState(Self, _up.Add(member), _unreachable, _announcements);

    /// <summary>The member left, exited, was downed or removed; its announcement is forgotten (a restarted node announces again).</summary>
    public ServiceDirectoryState WithMemberGone(Address member) =>
        !_up.Contains(member) && !_unreachable.Contains(member) && (member.Equals(Self.ControlAddress) || !_announcements.ContainsKey(member))
            ? this
            : new ServiceDirectoryState(
                Self,
                _up.Remove(member),
                _unreachable.Remove(member),
                member.Equals(Self.ControlAddress) ? _announcements : _announcements.Remove(member));

    public ServiceDirectoryState WithUnreachable(Address member) =>
        _unreachable.Contains(member) ? this : new ServiceDirectoryState(Self, _up, _unreachable.Add(member), _announcements);

    public ServiceDirectoryState WithReachable(Address member) =>
        !_unreachable.Contains(member) ? this : new ServiceDirectoryState(Self, _up, _unreachable.Remove(member), _announcements);

    /// <summary>Records <paramref name="announcement"/> as its node's current addresses; this node's own address cannot be announced by another.</summary>
    public ServiceDirectoryState WithAnnouncement(ServiceAnnouncement announcement)
    {
        ArgumentNullException.ThrowIfNull(announcement);
        var address = announcement.ControlAddress;
        if (address.Equals(Self.ControlAddress)
            || (_announcements.TryGetValue(address, out var known) && known.SameContent(announcement)))
        {
            return this;
        }

        return new ServiceDirectoryState(Self, _up, _unreachable, _announcements.SetItem(address, announcement.WithReplyRequested(false)));
    }

    private IEnumerable<Address> Visible() =>
        _up.Where(address => !_unreachable.Contains(address) && _announcements.ContainsKey(address)).Order(Member.AddressOrdering);
}
