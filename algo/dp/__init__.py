"""fedchem.algo.dp: distributed differential privacy for the shared trunk, under secure aggregation.

noise      Gaussian noise from a cryptographic generator (ChaCha20 keystream keyed by `secrets`)
mechanism  what a partner does to its round's trunk update: L2 clip, its share of the noise, the ring-bound check
accounting epsilon at the consortium's delta, per partner and per round, composed over a run (Google's dp-accounting)
"""

from fedchem.algo.dp.mechanism import TAIL_SIGMAS, check_ring_bound, clip_l2, noise_share_std, privatize

__all__ = ["TAIL_SIGMAS", "check_ring_bound", "clip_l2", "noise_share_std", "privatize"]
