"""The reader study: study sets of real and generated faces, a local rating server with answers in SQLite,
and the analysis of the answers (notebook 09).

    python -m phenoface.study serve --set data/processed/quick/study          # http://127.0.0.1:8765/
    python -m phenoface.study serve --set ... --host 0.0.0.0                   # a classroom: token in the URL
    python -m phenoface.study export --db data/processed/quick/study/answers.sqlite --out answers.csv
"""

from .analysis import analyse, fleiss_kappa, krippendorff_alpha_nominal, recogniser_answers, simulate_answers
from .store import Store, read_answers
from .studyset import StudySet, build_study_set, collect_sources, load_study_set, write_study_set

__all__ = ["StudySet", "Store", "analyse", "build_study_set", "collect_sources", "fleiss_kappa",
           "krippendorff_alpha_nominal", "load_study_set", "read_answers", "recogniser_answers", "simulate_answers",
           "write_study_set"]
