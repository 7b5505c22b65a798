"""The evaluation suite: which disease, how severe, how far along, how realistic, who, and copied?

One concern per module:

- :mod:`.recogniser` - GestaltMatcher-style disease recogniser (CNN embedding + cosine gallery,
  top-k, confusion); dlib descriptors as the embedding backend for real photos;
- :mod:`.severity` - per-disease severity in [0, 1] from measured phenotypes projected on a
  disease profile (calibrated on the cohort); progression as correctly ordered pairs;
- :mod:`.realism` - Fréchet distance and KID through torchmetrics with the recogniser backbone
  (standard Inception FID when its weights are given by path);
- :mod:`.identity` - identity similarity (cohort identity parameters, embedding cosine, dlib);
- :mod:`.privacy` - memorisation check (feature-space nearest neighbours vs the train-to-train
  distribution, exact and perceptual-hash copies);
- :mod:`.figures` - confusion matrix, memorisation pairs, severity scatter, progression strips.

    >>> from phenoface.evaluation import train_recogniser, memorisation_check, frechet_distance
    >>> rec = train_recogniser(train.images, train.table["disease_id"], epochs=20, seed=0)
    >>> rec.evaluate(test.images, test.table["disease_id"])["top1"]
    >>> memorisation_check(generated, train.images, features=rec).rate
    >>> frechet_distance(train.images, generated, rec.feature_extractor())
"""

from .identity import (DLIB_SAME_PERSON, dlib_identity, embedding_cosine, identity_parameter_distance,
                       identity_parameters)
from .privacy import MemorisationReport, dhash, hamming, memorisation_check, phash, plant_copies
from .realism import (InceptionWeightsError, frechet_distance, frechet_from_features, inception_extractor,
                      kernel_distance, realism)
from .recogniser import FACE_BOX, Gallery, Recogniser, dlib_embed, topk_accuracy, train_recogniser
from .severity import (SeverityScorer, order_accuracy, profile_weights, progression_series, progression_table,
                       severity_spearman)

__all__ = ["Recogniser", "Gallery", "train_recogniser", "dlib_embed", "topk_accuracy", "FACE_BOX",
           "SeverityScorer", "profile_weights", "severity_spearman", "order_accuracy", "progression_table",
           "progression_series", "frechet_distance", "kernel_distance", "realism", "frechet_from_features",
           "inception_extractor", "InceptionWeightsError", "identity_parameters", "identity_parameter_distance",
           "embedding_cosine", "dlib_identity", "DLIB_SAME_PERSON", "memorisation_check", "MemorisationReport",
           "phash", "dhash", "hamming", "plant_copies"]
