"""Data: the synthetic gait world, the pretraining pool, the evaluation suites and real-data readers.

- :mod:`.world` (with :mod:`.body`): WorldConfig, Walks, render() - the deterministic, vectorised generator.
- :mod:`.corpus`: PretrainPool - the unlabeled, disk-cached pretraining pool with nested fractions.
- :mod:`.suites`: SUITE_NAMES, build_suite(), evaluate(), baseline_embeddings() - zero-shot evaluation.
- :mod:`.protocols`: CASIA-B / GREW / Gait3D / PsyMo-style metrics on embeddings + labels (real data too).
- :mod:`.formats`: read_opengait(), read_npz(), casia_b_suite() - real pose data.
"""

from gaitforecast.data.corpus import PretrainPool
from gaitforecast.data.formats import LoadedPoses, casia_b_suite, read_npz, read_opengait
from gaitforecast.data.suites import SUITE_NAMES, Suite, baseline_embeddings, build_suite, evaluate
from gaitforecast.data.world import Walks, WorldConfig, random_walks, render, sample_identities

__all__ = [
    "PretrainPool", "LoadedPoses", "casia_b_suite", "read_npz", "read_opengait", "SUITE_NAMES", "Suite",
    "baseline_embeddings", "build_suite", "evaluate", "Walks", "WorldConfig", "random_walks", "render",
    "sample_identities",
]
