"""What notebook 08 and the top of ``reports/index.html`` show: the headline figures against their goals and
one comparison table of every method, read from the metrics the notebooks recorded (never typed in).

    >>> headline_table("reports/metrics")     # figure, value [95 % interval], goal, baseline, pass / miss
    >>> comparison_table("reports/metrics")   # methods x figures; a missing cell says why
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .report import read_metrics

_OPS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Headline:
    label: str
    stem: str
    key: str
    op: str | None  # ">=", "<=", or None: reported, no goal
    goal: float | None
    relative_to: str | None = None  # goal is a multiple of this metric (same stem)
    baseline: str | None = None  # the trivial baseline's metric key (same stem)
    baseline_label: str = ""
    relative_label: str = ""
    ceiling: str | None = None  # the same figure on real faces through the generator's autoencoder (same stem)

    def goal_text(self) -> str:
        if self.op is None:
            return "(yardstick)"
        sym = "≥" if self.op == ">=" else "≤"
        return f"{sym} {self.goal:g}" + (f" × {self.relative_label or self.relative_to}" if self.relative_to else "")


HEADLINES = (
    Headline("image-profile precision@k (pixels)", "04_image_profiles", "image_profile_precision_at_k", ">=", 0.95,
             baseline="frequency_profile_precision_at_k", baseline_label="frequency only"),
    Headline("term intensity Pearson, weakest term", "04_image_profiles", "term_intensity_pearson_min", ">=", 0.8),
    Headline("severity order, same age", "04_image_profiles", "severity_order_accuracy_same_age", ">=", 0.9),
    Headline("age MAE, years (pixels)", "04_image_profiles", "age_mae", "<=", 3.0,
             baseline="age_mae_mean_age_baseline", baseline_label="mean age"),
    Headline("recogniser top-1, real test faces", "07_evaluate", "recogniser_top1", None, None,
             baseline="recogniser_chance_top1", baseline_label="chance"),
    Headline("generated top-1 / real top-1", "07_evaluate", "generated_top1_ratio", ">=", 0.9,
             ceiling="autoencoder_top1_ratio_test"),
    Headline("autoencoder top-1 ratio (test)", "07_evaluate", "autoencoder_top1_ratio_test", ">=", 0.9),
    Headline("severity order along generated series", "07_evaluate", "generated_severity_order_accuracy", ">=", 0.9,
             ceiling="ceiling_severity_order_accuracy_autoencoder"),
    Headline("generated term Spearman, weakest term", "07_evaluate", "generated_term_spearman_min", ">=", 0.8,
             ceiling="ceiling_term_spearman_min_autoencoder"),
    Headline("generated age MAE, years", "07_evaluate", "generated_age_mae", "<=", 1.5,
             relative_to="generated_age_mae_real", relative_label="real faces' MAE", ceiling="autoencoder_age_mae_test"),
    Headline("zero-shot precision@k", "07_evaluate", "zero_shot_precision", ">=", 0.7,
             baseline="zero_shot_precision_chance", baseline_label="chance"),
    Headline("memorisation rate, generated faces", "07_evaluate", "generated_memorisation_rate", "<=", 0.01),
    Headline("edit identity kept (untouched regions, DDIM)", "07_evaluate", "edit_ddim_h2d_identity_untouched", ">=", 0.8,
             baseline="identity_calibration_different_untouched", baseline_label="different people"),
    Headline("edits: target is top-1 (DDIM, healthy → diseased)", "07_evaluate", "edit_ddim_h2d_target_top1", ">=", 0.8,
             baseline="recogniser_chance_top1", baseline_label="chance"),
)


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def headline_table(metrics_dir) -> pd.DataFrame:
    """One row per headline: value with its interval where recorded, goal, trivial baseline, ``ceiling`` (for
    generated faces: the same figure on real faces or renders through the generator's autoencoder, which a
    generator drawing through that decoder can hardly exceed; notebook 07) and ``status`` 'pass', 'miss', 'reported' (a
    yardstick without a goal) or 'not run' (the notebook or metric is missing)."""
    cache: dict[str, dict] = {}
    rows = []
    for h in HEADLINES:
        m = cache.setdefault(h.stem, read_metrics(h.stem, Path(metrics_dir)))
        value = _num(m.get(h.key))
        goal = h.goal if h.op else 0.0
        if h.relative_to:
            ref = _num(m.get(h.relative_to))
            goal = None if ref is None else h.goal * ref
        ci = m.get(f"{h.key}_ci")
        shown = "—" if value is None else f"{value:.3g}"
        if value is not None and isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
            shown += f" [{float(ci[0]):.3g}, {float(ci[1]):.3g}]"
        base = _num(m.get(h.baseline)) if h.baseline else None
        status = ("not run" if value is None or goal is None else "reported" if h.op is None
                  else "pass" if _OPS[h.op](value, goal) else "miss")
        top = _num(m.get(h.ceiling)) if h.ceiling else None
        rows.append({"figure": h.label, "value": shown, "goal": h.goal_text(),
                     "baseline": f"{base:.3g} ({h.baseline_label})" if base is not None else "",
                     "ceiling": f"{top:.3g}" if top is not None else "",
                     "status": status, "notebook": h.stem})
    return pd.DataFrame(rows)


METHODS = (
    ("class-conditional (GestaltGAN-style)", "class"),
    ("prompt-only (disease name)", "prompt"),
    ("KG profile only (swapped in at inference)", "kg"),
    ("KG + LLM + image profile (this work)", "profile"),
)


def comparison_table(metrics_dir) -> pd.DataFrame:
    """Every method against the same figures on the test split (07's metrics, 01's for the warp). A cell that
    cannot exist says why instead of being blank."""
    m7 = read_metrics("07_evaluate", Path(metrics_dir))
    m1 = read_metrics("01_baselines", Path(metrics_dir))
    m6 = read_metrics("06_generate", Path(metrics_dir))

    def fig(key, digits=3):
        v = _num(m7.get(key))
        if v is None:
            return "not measured (run 01/06/07)"
        ci = m7.get(f"{key}_ci")
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
            return f"{v:.{digits}g} [{float(ci[0]):.{digits}g}, {float(ci[1]):.{digits}g}]"
        return f"{v:.{digits}g}"

    no_sev = "n/a: no severity input"
    rows = {}
    for label, key in METHODS:
        p = f"method_{key}_"
        rows[label] = {
            "top-1": fig(p + "top1"), "top-5": fig(p + "top5"),
            "zero-shot top-1": ("n/a: no token for an unseen class" if key == "class" else fig(p + "zero_shot_top1")),
            "severity control (order along series)": (fig("generated_severity_order_accuracy") if key == "profile"
                                                      else "not measured: no series drawn" if key == "kg" else no_sev),
            "age MAE (years)": fig(p + "age_mae"),
            "identity kept (edits)": (fig("edit_ddim_h2d_identity_untouched") if key == "profile"
                                      else "n/a: not an editing method here"),
            "FD to test faces": fig(p + "fd"), "memorisation rate": fig(p + "memorisation_rate"),
            "seconds / image": fig(p + "seconds_per_image"),
        }
    rows["composition (terms only, zero-shot diseases)"] = {
        "top-1": fig("generated_zero_shot_top1"), "top-5": "not measured",
        "zero-shot top-1": fig("generated_zero_shot_top1"), "severity control (order along series)": no_sev,
        "age MAE (years)": "in this work's row", "identity kept (edits)": "n/a",
        "FD to test faces": "in this work's row", "memorisation rate": "in this work's row",
        "seconds / image": "in this work's row"}
    rows["SDEdit (healthy → diseased)"] = {
        "top-1": fig("edit_sdedit_h2d_target_top1"), "top-5": "n/a: edits", "zero-shot top-1": "n/a",
        "severity control (order along series)": "see DDIM progression",
        "age MAE (years)": "n/a: the input's age", "identity kept (edits)": fig("edit_sdedit_h2d_identity_untouched"),
        "FD to test faces": "n/a: edits of test faces", "memorisation rate": "n/a: edits of test faces",
        "seconds / image": f"{_num(m6.get('edit_seconds_per_face')):.3g}" if _num(m6.get("edit_seconds_per_face")) else "—"}
    rows["DDIM inversion edit (healthy → diseased)"] = {
        **rows["SDEdit (healthy → diseased)"], "top-1": fig("edit_ddim_h2d_target_top1"),
        "identity kept (edits)": fig("edit_ddim_h2d_identity_untouched"),
        "severity control (order along series)": fig("edit_progression_order_accuracy")}
    dlib_ref = _num(m7.get("photo_edit_dlib_distance_different_people"))
    ref = f" (two different people: {dlib_ref:.2f}; same < 0.6)" if dlib_ref is not None else ""
    photo = _num(m7.get("photo_edit_dlib_distance"))
    rows["DDIM edit of real photos (healthy → diseased)"] = {
        **{c: "n/a: public portraits, not the test split" for c in rows["SDEdit (healthy → diseased)"]},
        "top-1": fig("photo_edit_target_top1"),
        "identity kept (edits)": (f"dlib distance {photo:.2f}{ref}" if photo is not None
                                  else f"dlib found no face in the {m7['photo_edit_dlib_no_face']} edits" if m7.get("photo_edit_dlib_no_face")
                                  else "not measured (run 06/07)"),
        "seconds / image": rows["SDEdit (healthy → diseased)"]["seconds / image"]}
    warp = _num(m1.get("warp_applied_vs_measured_pearson"))
    warp_id = _num(m1.get("warp_dlib_distance"))
    rows["landmark warp (TPS)"] = {
        "top-1": "n/a: photos, not a cohort disease", "top-5": "n/a", "zero-shot top-1": "n/a",
        "severity control (order along series)": "n/a", "age MAE (years)": "n/a: the input's age",
        "identity kept (edits)": ((f"dlib distance {warp_id:.2f}{ref}; " if warp_id is not None else "")
                                  + "applied vs measured change r = " + (f"{warp:.2f}" if warp is not None else "—")),
        "FD to test faces": "n/a: a warp has no samples of its own", "memorisation rate": "n/a: warps a given photo",
        "seconds / image": "—"}
    for kind, key in (("average portrait (aligned mean)", "aligned"),
                      ("average portrait (mean of generated latents)", "latent")):
        rows[kind] = {"top-1": fig(f"portrait_top1_{key}"), "top-5": fig(f"portrait_top5_{key}"),
                      **{c: "n/a: one image per disease" for c in
                                             ("zero-shot top-1", "severity control (order along series)",
                                              "age MAE (years)", "identity kept (edits)", "FD to test faces",
                                              "memorisation rate", "seconds / image")}}
    return pd.DataFrame(rows).T
