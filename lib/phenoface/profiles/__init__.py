"""Disease profiles: weighted facial HPO terms per age band, with evidence, JSON and prompt text.

    >>> from phenoface.profiles import kg_profile, Profile
    >>> p = kg_profile("OMIM:190685")
    >>> p.terms(age=None)            # HPO id -> weight in [0, 1]
    >>> p.to_text(age=6.0)           # "a 6-year-old child with ..."
    >>> Profile.from_json(p.to_json()) == p

Later evidence (llm, images) joins through ``Profile.with_evidence`` and :func:`fuse`.
"""

from .fusion import DEFAULT_WEIGHTS, fuse
from .images import learn_image_profile
from .kg import ONSET_YEARS, kg_profile
from .profile import (ALL, BANDS, NO_EVIDENCE, SCHEMA, Evidence, Profile, ProfileSchemaError, TermEntry,
                      load_profiles, profile_matrix, renderable_vocabulary, save_profiles, term_phrase,
                      validate)

__all__ = ["Profile", "kg_profile", "learn_image_profile", "fuse", "DEFAULT_WEIGHTS", "Evidence", "TermEntry", "SCHEMA",
           "ProfileSchemaError", "validate", "save_profiles", "load_profiles", "renderable_vocabulary",
           "term_phrase", "profile_matrix", "BANDS", "ALL", "NO_EVIDENCE", "ONSET_YEARS"]
