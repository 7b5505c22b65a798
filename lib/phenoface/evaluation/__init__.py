"""The evaluation suite: which disease, how severe, how far along, how realistic, who, and copied?

One concern per module:

- :mod:`.recogniser` - GestaltMatcher-style disease recogniser (CNN embedding + cosine gallery,
  top-k, confusion); dlib descriptors as the embedding backend for real photos;
- :mod:`.training` - its training (blur / noise / colour augmentation), the choice of width and epochs
  on validation faces, and its test report (top-1 with an interval, blurred faces, chance, majority);
- :mod:`.severity` - per-disease severity in [0, 1] from measured phenotypes projected on a
  disease profile (calibrated on the cohort);
- :mod:`.progression` - severity Spearman with the age-only baseline and the age-partialled figure,
  progression order accuracy and its control on unaffected people;
- :mod:`.realism` - Fréchet distance and KID through torchmetrics with the recogniser backbone
  (standard Inception FID when its weights are given by path);
- :mod:`.identity` - identity similarity (cohort identity parameters, embedding cosine, dlib);
- :mod:`.privacy` - memorisation check (feature-space nearest neighbours vs the train-to-train
  distribution, exact and perceptual-hash copies);
- :mod:`.probes` - memorisation probes beyond the detector's design (shifts, crops, flips, blur, another
  age), the ROC and the threshold chosen on validation faces;
- :mod:`.perturb` - the image perturbations (blur, shift, crop, flip, noise);
- :mod:`.figures` - confusion matrix, memorisation pairs, severity scatter, progression strips;
- :mod:`.pipeline` - notebook 07's steps, each returning a result with its metrics and figures.

    >>> from phenoface.evaluation import train_recogniser, memorisation_check, frechet_distance
    >>> rec = train_recogniser(train.images, train.table["disease_id"], epochs=20, seed=0)
    >>> rec.evaluate(test.images, test.table["disease_id"])["top1"]
    >>> memorisation_check(generated, train.images, features=rec).rate
    >>> detector = MemorisationDetector(train.images, features=rec)   # calibrated once, then many batches
    >>> detector.check(generated).rate, detector.check(baseline_faces).rate
    >>> frechet_distance(train.images, generated, rec.feature_extractor())
"""

from .identity import (DLIB_SAME_PERSON, dlib_identity, embedding_cosine, identity_pairs,
                       identity_parameter_distance, identity_parameters)
from .perturb import blur_images, crop_resize, flip_images, noise_images, shift_images
from .privacy import MemorisationDetector, MemorisationReport, dhash, hamming, memorisation_check, phash, plant_copies
from .probes import PROBE_KINDS, detection_by_kind, make_probes, roc_summary, threshold_at_fpr
from .progression import (age_order_accuracy, order_accuracy, progression_series, progression_table,
                          severity_spearman, severity_table)
from .realism import (InceptionWeightsError, frechet_distance, frechet_from_features, inception_extractor,
                      kernel_distance, realism)
from .recogniser import FACE_BOX, Gallery, Recogniser, dlib_embed, topk_accuracy, topk_hits
from .severity import SeverityScorer, profile_weights
from .recogniser_training import augment, choose_recogniser, majority_top1, recogniser_report, train_recogniser

__all__ = ["Recogniser", "Gallery", "train_recogniser", "choose_recogniser", "recogniser_report", "majority_top1",
           "augment", "dlib_embed", "topk_accuracy", "topk_hits", "FACE_BOX",
           "SeverityScorer", "profile_weights", "severity_spearman", "severity_table", "order_accuracy",
           "progression_table", "progression_series", "age_order_accuracy",
           "frechet_distance", "kernel_distance", "realism", "frechet_from_features",
           "inception_extractor", "InceptionWeightsError", "identity_parameters", "identity_parameter_distance",
           "embedding_cosine", "dlib_identity", "DLIB_SAME_PERSON", "identity_pairs",
           "memorisation_check", "MemorisationDetector", "MemorisationReport", "phash", "dhash", "hamming", "plant_copies",
           "PROBE_KINDS", "make_probes", "threshold_at_fpr", "roc_summary", "detection_by_kind",
           "blur_images", "shift_images", "crop_resize", "flip_images", "noise_images"]
