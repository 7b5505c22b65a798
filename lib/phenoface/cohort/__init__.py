"""The synthetic face cohort: offline ground truth for phenoface.

Faces are rendered from a 68-point landmark layout (dlib ordering) with shading, skin tone, hair,
sex, age (child -> adult proportions) and per-identity shape variation; every face keeps its exact
landmarks and render parameters. Diseases show the renderable HPO terms annotated to them with the
HPO frequency (after a small, seeded, recorded divergence from the KG), scaled by a severity that
grows with age (see :mod:`phenoface.cohort.diseases`).

    >>> from phenoface.cohort import Cohort, TERMS, render_face
    >>> c = Cohort.generate(n=512, diseases=None, seed=0, size=64)
    >>> c.images.shape, c.landmarks.shape, list(c.table.columns)[:6]
"""

# The package is its modules' public face: submodules import their siblings directly, never this file.
from .diseases import COURSE, DISEASES, DIVERGENCE_SEED, UNAFFECTED, disease_names, diverge, kg_frequencies, severity_course
from .splits import SPLITS, assert_disjoint, load_split, load_splits, make_splits, save_splits
from .table import (AGE_BANDS, EXCLUSIVE, SEVERITY_FACTOR, TEXTURE_KEYS, Cohort, add_pose_jitter, build_params, face_table,
                    identity_attributes, render_face, render_table, true_frequencies)
from .terms import EFFECT, KIND, TERM_IDS, TERMS, apply_terms, head_scale

__all__ = ["Cohort", "TERMS", "KIND", "EFFECT", "DISEASES", "UNAFFECTED", "COURSE", "render_face",
           "render_table", "face_table", "disease_names", "severity_course", "kg_frequencies", "true_frequencies",
           "SPLITS", "make_splits", "save_splits", "load_split", "load_splits", "assert_disjoint", "SEVERITY_FACTOR"]
