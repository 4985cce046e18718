"""Which speaker adapter speaks for `[bgp] speaker` (docs/scale-out.md).

The runtime builds the speaker through `Ports.speaker`; this is its default.
Both adapters are imported on demand: a director without `[bgp]` never
loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lvsha.config.model import BgpConfig

if TYPE_CHECKING:
    from lvsha.adapters.bird import BirdSpeaker
    from lvsha.adapters.exabgp import ExabgpSpeaker


def speaker_for(cfg: BgpConfig) -> ExabgpSpeaker | BirdSpeaker:
    """The adapter for `cfg.speaker`: "exabgp" (the default) or "bird"."""
    if cfg.speaker == "exabgp":
        from lvsha.adapters.exabgp import ExabgpSpeaker

        return ExabgpSpeaker(cfg)
    if cfg.speaker == "bird":
        from lvsha.adapters.bird import BirdSpeaker

        return BirdSpeaker(cfg)
    raise ValueError(f"bgp.speaker: unknown speaker {cfg.speaker!r} (exabgp or bird)")
