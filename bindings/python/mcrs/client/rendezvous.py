"""RendezvousHash: the name HashClient's ``hasher`` takes by default. Placement
itself is computed by libmcrs: for each node "host:port" the score is
murmur3_x86_32("{node}-{key}", seed 0), the highest wins (pymemcache's
RendezvousHash, bit for bit)."""


class RendezvousHash:
    """Marker for pymemcache's default hasher; libmcrs does the hashing."""
