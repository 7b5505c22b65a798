"""Labels every data source shares (the synthetic cohort, real datasets, profiles, evaluation)."""

UNAFFECTED = "UNAFFECTED"  # the class of people without a disease (negatives)
