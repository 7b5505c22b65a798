"""The one declaration of every notebook parameter: type, allowed values, help text, and the notebooks
that read it. The runner checks a profile file against it before any notebook runs, so a typo, a
missing key or a value out of range stops the run with the parameter's name instead of a traceback
deep inside numpy; ``python -m phenoface.params --docs`` renders it as the table of ``docs/parameters.md``.

Relative paths in a profile are taken from ``notebooks/`` (papermill runs every notebook there),
wherever the profile file itself lives.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from .config import params_path, repo_root

ALL = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # int | float | bool | str | choice | list | path | url
    help: str
    notebooks: tuple[str, ...]
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str = ""          # what each comma-separated item of a ``list`` must match (when no choices)
    must_exist: bool = False   # ``path``: a non-empty value must exist
    auto: bool = False         # ``float``: the string "auto" is allowed too
    nonempty: bool = False     # ``path``: "" is not allowed

    def allowed(self) -> str:
        """What the table and the error messages say is allowed."""
        if self.kind in ("int", "float"):
            lo, hi = _num(self.low), _num(self.high)
            rng = f"{lo} ≤ x ≤ {hi}" if lo and hi else f"x ≥ {lo}" if lo else f"x ≤ {hi}" if hi else "any"
            what = ("an integer" if self.kind == "int" else "a number") + ("" if rng == "any" else f", {rng}")
            return what + (', or "auto"' if self.auto else "")
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "list":
            item = ("any of " + ", ".join(self.choices)) if self.choices else f"items like {self.pattern_help()}"
            return f"comma-separated, {item}"
        if self.kind == "path":
            return "a path (relative to notebooks/)" + ("; must exist unless empty" if self.must_exist else "")
        if self.kind == "url":
            return '"embedded", "" (use OPENAI_BASE_URL) or an http(s):// URL'
        return "text" + (f" matching {self.pattern}" if self.pattern else "")

    def pattern_help(self) -> str:
        return {"recogniser": "16x20 (width x epochs)", "search": "1+flip (shift px, +flip)",
                "disease": "OMIM:147920"}.get(self.pattern, self.pattern)

    def check(self, value: Any, base: Path) -> str | None:
        """None when ``value`` is allowed, else what is wrong (without the name)."""
        k = self.kind
        if k in ("int", "float"):
            if self.auto and value == "auto":
                return None
            ok_type = isinstance(value, int) if k == "int" else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok_type or (k == "float" and not math.isfinite(value)):
                return f"{value!r} is not {self.allowed()}"
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                return f"{value!r} is out of range: {self.allowed()}"
            return None
        if k == "bool":
            return None if isinstance(value, bool) else f"{value!r} is not {self.allowed()}"
        if not isinstance(value, str):
            return f"{value!r} is not text ({self.allowed()})"
        if k == "choice" and value not in self.choices:
            close = difflib.get_close_matches(value, self.choices, n=1)
            return f"{value!r} is not {self.allowed()}" + (f" (did you mean {close[0]!r}?)" if close else "")
        if k == "list":
            items = [v.strip() for v in value.split(",")]
            bad = [v for v in items if not v or (v not in self.choices if self.choices else not _ITEM[self.pattern].fullmatch(v))]
            return f"{value!r}: {', '.join(repr(b) for b in bad)} not allowed ({self.allowed()})" if bad else None
        if k == "path":
            if self.must_exist and value and not resolve_param_path(value, base).exists():
                return f"{value!r} does not exist (looked for {resolve_param_path(value, base).resolve()})"
            if self.nonempty and not value:
                return "must not be empty"
            return None
        if k == "url":
            ok = value in ("", "embedded") or re.fullmatch(r"https?://\S+", value)
            return None if ok else f"{value!r} is not {self.allowed()}"
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"{value!r} does not match {self.pattern}"
        return None


def _num(v: float | None) -> str:
    if v is None:
        return ""
    return f"{int(v):,}".replace(",", " ") if float(v).is_integer() else f"{v:g}"


_ITEM = {"recogniser": re.compile(r"[1-9]\d*x[1-9]\d*"), "search": re.compile(r"\d+(\+flip)?"),
         "disease": re.compile(r"(OMIM|ORPHA):\d+")}


def _p(name, kind, help, notebooks, **kw) -> Param:
    return Param(name, kind, help, tuple(notebooks), **kw)


PARAMS: tuple[Param, ...] = (
    _p("PROFILE", "str", "name of the profile, shown in reports", ALL, pattern=r"[A-Za-z0-9_.-]+"),
    _p("SEED", "int", "seed of every random draw (splits are SEED, +1000, +2000)", ALL, low=0, high=2**31 - 1),
    _p("DATA_DIR", "path", "where this profile's artifacts go", ALL, nonempty=True),
    _p("RAW_DIR", "path", "user-supplied datasets (read only); must exist unless REAL_PHOTOS is packaged", ("00", "04", "07")),
    _p("IMAGE_SIZE", "int", "render size of the cohort, px", ("00",), low=32, high=1024),
    _p("COHORT_N", "int", "training cohort faces", ("00",), low=16),
    _p("VAL_N", "int", "validation cohort faces (new people): every choice is made on it", ("00",), low=16),
    _p("TEST_N", "int", "test cohort faces (new people): scored once and reported", ("00",), low=16),
    _p("FACE_CHECK_N", "int", "renders checked by MediaPipe at 256 px", ("00",), low=0, high=100_000),
    _p("REAL_PHOTOS", "choice", "real photos shown beside the renders", ("00", "04", "07"),
       choices=("packaged", "celeba", "disease_faces", "gmdb")),
    _p("SHOW_REAL_PATIENTS", "bool", "show real patient photos in reports (privacy: default false)", ("00", "04", "07")),
    _p("KG_MODEL", "choice", "PyKEEN embedding model", ("02",), choices=("TransE", "RotatE", "ComplEx")),
    _p("KG_DIM", "int", "KG embedding dimension", ("02",), low=2, high=4096),
    _p("KG_EPOCHS", "int", "KG training epochs", ("02",), low=1, high=10_000),
    _p("KG_DISEASES", "int", "diseases in the face subgraph (0 = all with facial terms)", ("02",), low=0),
    _p("KG_TEST_DISEASES", "int", "test diseases with hidden facial terms (link prediction)", ("02",), low=1),
    _p("KG_VALID_DISEASES", "int", "validation diseases (prior weight, neighbour count)", ("02",), low=1),
    _p("PRIMEKG_PATH", "path", 'PrimeKG kg.csv to merge ("" = HPO only)', ("02",), must_exist=True),
    _p("LLM_BASE_URL", "url", "LLM endpoint: embedded (packaged SmolLM2), \"\" (env OPENAI_BASE_URL) or a URL", ("03",)),
    _p("LLM_MODEL", "str", 'model at that endpoint ("" = env OPENAI_MODEL)', ("03",)),
    _p("LLM_DISEASES", "int", "diseases asked about (0 = all)", ("03",), low=0),
    _p("LLM_BANDS", "list", "age bands asked about", ("03",), choices=("infant", "child", "adolescent", "adult")),
    _p("LLM_FEATURES", "int", "features asked for per reply", ("03",), low=1, high=50),
    _p("LLM_MAX_TOKENS", "int", "reply length cap, tokens", ("03",), low=8, high=32_768),
    _p("LLM_RETRIES", "int", "retries of a malformed reply", ("03",), low=0, high=10),
    _p("LLM_NEGATIVES", "bool", "generative negative mining per disease", ("03",)),
    _p("LLM_NEIGHBOURS", "int", "nearest KG diseases named in the negative-mining prompt", ("03",), low=0, high=50),
    _p("LLM_THRESHOLD", "float", "grounding similarity threshold (auto = chosen on validation phrases)", ("03",),
       low=0, high=1, auto=True),
    _p("LLM_TIMEOUT", "float", "seconds per request before the endpoint counts as unreachable", ("03",), low=1, high=3600),
    _p("LLM_BUDGET_S", "float", "stop asking after this many seconds (0 = no limit)", ("03",), low=0),
    _p("LLM_CACHE", "choice", "packaged: the embedded model's shipped replies answer the prompts they hold "
       "(same model file, server, settings); none: every prompt live", ("03",), choices=("packaged", "none")),
    _p("REGRESSOR_EPOCHS", "int", "landmark regressor epochs", ("04", "07"), low=1, high=10_000),
    _p("REGRESSOR_WIDTH", "int", "landmark regressor channel width", ("04", "07"), low=2, high=512),
    _p("BACKEND_CHECK_N", "int", "renders at 256 px for the MediaPipe / dlib comparison", ("04",), low=4, high=100_000),
    _p("MIN_POSITIVES", "int", "fewer positives: the disease is flagged, not ranked", ("04",), low=1),
    _p("INSTRUMENT_SOURCE", "choice", "pixel instrument: the packaged quick checkpoint, or trained in notebook 04",
       ("04",), choices=("packaged", "train")),
    _p("INSTRUMENT_TRAIN_N", "int", "independent-term renders the pixel instrument learns from", ("04",), low=64),
    _p("INSTRUMENT_EPOCHS", "int", "pixel instrument epochs", ("04",), low=1, high=10_000),
    _p("INSTRUMENT_WIDTH", "int", "pixel instrument width (stages w, 2w, 4w, 8w)", ("04",), low=2, high=256),
    _p("CHECK_N", "int", "independent-term renders of new people for the scale check", ("04",), low=16),
    _p("CONTROL_IDENTITIES", "int", "people per term / disease in the controlled series", ("04",), low=1, high=1000),
    _p("TRAIN_BASELINES", "bool", "train the class-conditional and prompt-only baselines here (CPU hours); false "
       "installs the shipped ones", ("01",)),
    _p("PORTRAIT_N", "int", "generated latents averaged per average portrait", ("01",), low=1, high=100_000),
    _p("WARP_DISEASES", "list", "diseases whose HPO profile the landmark warp applies to the packaged photos",
       ("01",), pattern="disease"),
    _p("EDIT_N", "int", "faces per edit direction (healthy -> diseased and back) in notebook 06", ("06",), low=1,
       high=100_000),
    _p("EDIT_STRENGTH", "float", "share of the noise chain an edit inverts (DDIM) or noises (SDEdit)", ("06",),
       low=0.01, high=1),
    _p("SLIDES", "bool", "also render notebook 08 as reveal.js slides (served locally, no CDN)", ("08",)),
    _p("TRAIN_MODEL", "bool", "train the generator here (hours on 2 CPU cores); false installs the shipped checkpoint",
       ("05",)),
    _p("MODEL_SIZE", "choice", "generator size: quick (f = 4 autoencoder, ~6 M-parameter UNet) | pixel (the same UNet in pixel "
       "space, 4 x 4 patches; train with PREDICTION: v_prediction) | tiny (tests)", ("05",),
       choices=("quick", "pixel", "tiny")),
    _p("SD_MODEL_PATH", "path", "a local Stable Diffusion 1.5 / 2.x folder (diffusers layout, safetensors): "
       "TRAIN_MODEL fine-tunes LoRA + the condition tokens on it; empty: the small model", ("05",), must_exist=True),
    _p("LORA_RANK", "int", "LoRA rank on the UNet's attention projections (SD_MODEL_PATH)", ("05",), low=1, high=1024),
    _p("AE_STEPS", "int", "autoencoder training steps (TRAIN_MODEL; the pixel size trains none)", ("05",), low=1, high=10_000_000),
    _p("AUTOENCODER", "choice", "TRAIN_MODEL: train the autoencoder, or reuse the shipped quick generator's "
       "(its ceiling is measured in notebook 05; the pixel size has none)", ("05",), choices=("train", "shipped")),
    _p("INDEPENDENT_N", "int", "TRAIN_MODEL: renders of new people whose terms vary independently, added to the "
       "UNet's data with the disease unknown (decorrelates terms from diseases)", ("05",), low=0, high=10_000_000),
    _p("UNET_STEPS", "int", "UNet training steps (TRAIN_MODEL; the baselines' budget too)", ("01", "05"), low=1,
       high=10_000_000),
    _p("GEN_BATCH", "int", "generator training batch size", ("01", "05"), low=1, high=65_536),
    _p("GEN_LR", "float", "UNet peak learning rate", ("01", "05"), low=1e-7, high=1),
    _p("PREDICTION", "choice", "what the UNet predicts", ("05",), choices=("epsilon", "v_prediction")),
    _p("CONDITION_TAGS", "choice", "each face's term tags: measured from pixels, or the cohort truth (ablation)",
       ("05",), choices=("measured", "true")),
    _p("ZERO_SHOT_DISEASES", "list", "diseases left out of image training, drawn from their KG profile alone",
       ("01", "05", "06"), pattern="disease"),
    _p("DEVICES", "str", 'Lightning devices: "auto" or a number (GPUs; CPU processes with DDP)', ("05",),
       pattern=r"auto|[1-9]\d*"),
    _p("NUM_NODES", "int", "machines for DDP (SLURM: one task per GPU)", ("05",), low=1, high=4096),
    _p("PRECISION", "choice", "auto = bf16-mixed where the GPU has it, else 32-true", ("05",),
       choices=("auto", "32-true", "bf16-mixed", "16-mixed")),
    _p("GEN_STEPS", "int", "sampling steps (DPM-Solver++: 10-25)", ("01", "05", "06", "07"), low=1, high=1000),
    _p("GUIDANCE", "float", "classifier-free guidance scale", ("01", "06", "07"), low=0, high=30),
    _p("SCHEDULER", "choice", "sampler", ("01", "06"), choices=("dpm++", "ddim", "ddpm")),
    _p("GEN_PER_DISEASE", "int", "faces generated per disease (and unaffected) for notebook 07", ("01", "06"), low=1,
       high=100_000),
    _p("FAULT_PER_DISEASE", "int", "faces per disease for each before/after check of the sampling-side faults",
       ("07",), low=1, high=10_000),
    _p("RECOGNISER_GRID", "list", "recogniser candidates, width x epochs; best validation top-1 kept (05: the first)", ("05", "07"),
       pattern="recogniser"),
    _p("RECOGNISER_LR", "float", "recogniser peak learning rate (one-cycle)", ("07",), low=1e-6, high=1),
    _p("RECOGNISER_BLUR", "float", "largest blur sigma (px) of the recogniser's augmentation", ("07",), low=0, high=10),
    _p("PROGRESSION_IDENTITIES", "int", "people per disease rendered over age", ("07",), low=2, high=1000),
    _p("UNAFFECTED_IDENTITIES", "int", "unaffected people rendered over age (progression control)", ("07",), low=1),
    _p("PROBES_PER_KIND", "int", "memorisation probes per kind", ("07",), low=1),
    _p("MEMORISATION_FPR", "float", "share of validation faces the memorisation threshold may flag", ("07",),
       low=1e-4, high=0.5),
    _p("MEMORISATION_SEARCH", "list", "memorisation detector searches: shift px, +flip = mirrored too", ("07",),
       pattern="search"),
    _p("SEVERITY_METHODS", "list", "severity scores tried; best validation Spearman reported", ("07",),
       choices=("fitted", "profile")),
    _p("STUDY_ANSWERS", "path", 'reader-study answers: a study database (answers.sqlite) or its CSV export ("" = '
       "simulated raters of the accuracies below)", ("09",), must_exist=True),
    _p("STUDY_SIM_RATERS", "int", "simulated raters (when STUDY_ANSWERS is empty)", ("09",), low=2, high=10_000),
    _p("STUDY_SIM_DETECT", "float", "simulated raters' chance of telling real from generated correctly", ("09",),
       low=0, high=1),
    _p("STUDY_SIM_DISEASE_REAL", "float", "simulated raters' chance of naming the disease of a real face", ("09",),
       low=0, high=1),
    _p("STUDY_SIM_DISEASE_GENERATED", "float", "simulated raters' chance of naming the disease of a generated face",
       ("09",), low=0, high=1),
    _p("STUDY_BOOTSTRAP", "int", "bootstrap replicates of the study's intervals (raters and faces resampled)", ("09",),
       low=100, high=100_000),
    _p("STUDY_SCREENSHOT", "bool", "put a headless-Chromium screenshot of the rating page into the report", ("09",)),
    _p("INCEPTION_WEIGHTS", "path", 'torch-fidelity Inception-v3 weights for standard FID ("" = skip)', ("07",),
       must_exist=True),
)
BY_NAME = {p.name: p for p in PARAMS}


class ParameterError(ValueError):
    """A profile file that does not match the schema; the message names every bad parameter."""


def resolve_param_path(value: str, base: Path) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else (base / p)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error: YAML says keys are
    unique, but PyYAML silently keeps the last one, so ``SEED: 7`` appended to a profile would win unnoticed."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found {key!r} twice (first on line {seen[key] + 1}): each parameter may be given only once",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_profile(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ParameterError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); save the profile as "
                             "UTF-8 (plain ASCII is fine)") from None
    try:
        params = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ParameterError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(params, dict):
        raise ParameterError(f"{path} must hold a flat mapping NAME: value, got {type(params).__name__}.")
    return params


def problems(params: dict[str, Any], base: Path) -> list[str]:
    """Every way ``params`` breaks the schema, one line each, naming the parameter."""
    out = []
    for name in params:
        if name not in BY_NAME:
            close = difflib.get_close_matches(str(name), BY_NAME, n=1)
            out.append(f"{name}: unknown parameter" + (f" (did you mean {close[0]}?)" if close else ""))
    for p in PARAMS:
        if p.name not in params:
            out.append(f"{p.name}: missing ({p.help}; {p.allowed()})")
            continue
        why = p.check(params[p.name], base)
        if why:
            out.append(f"{p.name}: {why}")
    photos, raw = params.get("REAL_PHOTOS"), params.get("RAW_DIR")
    if photos not in (None, "packaged") and isinstance(raw, str) and not resolve_param_path(raw, base).is_dir():
        out.append(f"RAW_DIR: {raw!r} does not exist, but REAL_PHOTOS={photos} reads its photos from there")
    return out


def validate(params: dict[str, Any], base: Path, source: str = "parameters") -> dict[str, Any]:
    """Return ``params`` when they match the schema; otherwise raise one error listing every problem."""
    found = problems(params, base)
    if found:
        raise ParameterError(f"{source}: {len(found)} bad parameter(s)\n  " + "\n  ".join(found))
    return params


def load_params(profile: str | os.PathLike = "quick", validate: bool = True) -> dict[str, Any]:
    """A profile's parameters (a name under ``notebooks/params`` or a YAML path: :func:`~phenoface.config.params_path`),
    checked against the schema unless ``validate=False``."""
    path = params_path(profile)
    params = read_profile(path)
    return _check(params, repo_root() / "notebooks", str(path)) if validate else params


_check = validate  # load_params' keyword ``validate`` hides the function of that name inside it


def coerce_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Values given on a command line arrive as text: read them as YAML scalars, as the profile file would."""
    return {k: (yaml.safe_load(v) if isinstance(v, str) and v.strip() else v) for k, v in overrides.items()}


def markdown_table(params: Iterable[Param] = PARAMS) -> str:
    rows = ["| parameter | notebooks | allowed | what it does |", "|---|---|---|---|"]
    for p in params:
        cell = p.allowed().replace("|", "\\|")
        rows.append(f"| `{p.name}` | {', '.join(p.notebooks)} | {cell} | {p.help.replace('|', '/')} |")
    return "\n".join(rows)


DOCS_PAGE = Path("docs") / "parameters.md"
TABLE_START, TABLE_END = "<!-- params:start (generated by python -m phenoface.params --docs) -->", "<!-- params:end -->"


def page_with_table(text: str) -> str:
    """``text`` (the parameters page) with the generated table between its markers."""
    if TABLE_START not in text or TABLE_END not in text:
        raise ValueError(f"the page has no {TABLE_START} ... {TABLE_END} block")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{markdown_table()}\n{TABLE_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m phenoface.params", description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=Path, nargs="?", const=DOCS_PAGE, help=f"rewrite the table in {DOCS_PAGE}")
    ap.add_argument("--check", type=Path, nargs="*", help="validate these profile files")
    args = ap.parse_args(argv)
    if args.check:
        for path in args.check:
            validate(read_profile(path), repo_root() / "notebooks", str(path))
            print(f"{path}: ok")
        return 0
    if args.docs:
        args.docs.write_text(page_with_table(args.docs.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
