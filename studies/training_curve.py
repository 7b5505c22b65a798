"""How fast does training reach the generation goals? Generated top-1 against the UNet's training wall time.

    .venv/bin/python -m studies.training_curve [--data-dir data/processed/quick] [--steps 2500]
                                                   [--at 250,500,1000,1500,2000,2500] [--work /tmp/curve]

Trains the quick UNet from scratch with the shipped recipe (``params`` of the model card in ``--data-dir``:
batch, learning rate, steps) on that data directory's training set (notebook 05's ``training_set``: measured
tags, zero-shot diseases left out), in the latent of that model's **trained autoencoder** (frozen; its own
training time is in the card and printed). At each ``--at`` step, the EMA and the online weights each draw
the same validation-split conditions (``generate_cohort``, the model card's zero-shot diseases by composition,
``--gen-steps`` DPM-Solver++ steps), measured with notebook 07's saved recogniser: top-1 on the conditioned
faces against the real validation faces' top-1, and FD in its features. The time of these evaluations is not
counted as training time.

``--autoencoder`` (a ``studies.autoencoder`` variant folder) and ``--unet`` train in another latent or with
another UNet shape instead, the same way, to see whether a richer latent lifts the curve:

    .venv/bin/python -m studies.training_curve --autoencoder /tmp/phenoface_ae/f2c8 --unet 32,64,128,128/D,A,A,D

``--control`` also measures term control at every point (online weights; each term alone at intensity 0 -> 1,
the same noise, seeds 101 and 102, the instrument's Spearman per term: ``phenoface.evaluation.generator_figures.term_control``), and once
its ceiling: the same series rendered and passed through the autoencoder in use.

The validation split: this is a choosing tool (how long to train), not a reported test figure. Resumable: a
killed run continues from its Lightning checkpoint in ``--work`` and keeps the points already measured (the
training seconds between the last point and the kill are lost from the sum, so a resumed curve reads slightly
fast). Run it with nothing else on the machine: the seconds are the figure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from phenoface.benchmarks import results_path, write_results
from phenoface.config import repo_root


def _probe_class():
    import lightning as L

    class CurveProbe(L.Callback):
        """At the chosen steps (rank 0), measure both weight sets; time spent here is not training time."""

        def __init__(self, at, measure, points, path, seconds_before: float):
            self.at, self.measure, self.points, self.path = sorted(at), measure, points, Path(path)
            self.seconds_before, self.eval_seconds, self.t0 = float(seconds_before), 0.0, None

        def on_train_start(self, trainer, module):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, module, *_):
            step = trainer.global_step
            if step not in self.at or trainer.global_rank != 0 or any(p["step"] == step for p in self.points):
                return
            trained = self.seconds_before + time.perf_counter() - self.t0 - self.eval_seconds
            t = time.perf_counter()
            module.eval()
            point = {"step": int(step), "train_seconds": round(trained, 1),
                     **self.measure(module, "ema"), **self.measure(module, "online")}
            module.train()
            self.eval_seconds += time.perf_counter() - t
            point["eval_seconds"] = round(time.perf_counter() - t, 1)
            self.points.append(point)
            from phenoface.config import write_json

            write_json(self.path, {"points": self.points})
            print(json.dumps(point), flush=True)

    return CurveProbe


def plot(points: list, out: dict, path: Path) -> Path:
    """Top-1 ratio of both weight sets against training seconds, beside the autoencoder's ceiling and the goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from phenoface.config import atomic_path

    pts = sorted(points, key=lambda pt: pt["step"])
    x = [pt["train_seconds"] / 60 for pt in pts]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for which, style in (("online", "o-"), ("ema", "s--")):
        ax.plot(x, [pt[f"{which}_top1_ratio"] for pt in pts], style, label=f"{which} weights")
    if out.get("autoencoder_top1_ratio") is not None:
        ax.axhline(out["autoencoder_top1_ratio"], color="grey", ls=":", label="autoencoder alone (ceiling)")
    ax.axhline(0.9, color="tab:red", ls="-.", lw=1, label="goal")
    latent = f"; latent {Path(out['autoencoder']).name}" if out.get("autoencoder") else ""
    ax.set(xlabel="UNet training time, minutes (2 CPU cores)", ylabel="generated top-1 / real top-1", ylim=(0, 1),
           title=f"validation, {out['per_disease']} faces per disease, {out['gen_steps']} steps, "
                 f"guidance {out['guidance']:g}{latent}")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def other_shape(autoencoder: Path | None, unet: str | None, shipped):
    """(frozen vae, its config, UNet config) for a latent other than the shipped one: a studies.autoencoder
    variant's autoencoder and/or a UNet shape ``widths/blocks``."""
    from phenoface import modelio
    from phenoface.model.components import build_autoencoder, size_config, unet_config
    from phenoface.model.patch import is_patch
    from phenoface.model.variants import unet_shape

    cfg = size_config("quick")
    vae, vae_cfg = shipped.vae, shipped.configs["autoencoder"]
    if autoencoder:
        tensors, card = modelio.load_model(Path(autoencoder) / "autoencoder.safetensors", kind="phenoface_bench/autoencoder",
                                           rebuild="run python -m studies.autoencoder for that variant")
        vae_cfg = card["config"]
        vae = build_autoencoder(vae_cfg)
        vae.load_state_dict(tensors)
        vae.eval()
    # the size config of that latent: the patching's own entry, or the KL autoencoder's shape
    cfg["autoencoder"] = dict(vae_cfg) if is_patch(vae_cfg) else {
        "block_out_channels": vae_cfg["block_out_channels"], "latent_channels": vae_cfg["latent_channels"],
        "norm_num_groups": vae_cfg["norm_num_groups"], "layers_per_block": vae_cfg["layers_per_block"]}
    if unet:
        try:
            cfg = unet_shape(cfg, unet)
        except ValueError as exc:
            raise SystemExit(f"--unet: {exc}") from None
    return vae, vae_cfg, unet_config(cfg, shipped.image_size)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=repo_root() / "data" / "processed" / "quick")
    ap.add_argument("--work", type=Path, default=Path("/tmp/phenoface_curve"))
    ap.add_argument("--steps", type=int, default=None, help="UNet steps (default: the model card's UNET_STEPS)")
    ap.add_argument("--at", default="250,500,1000,1500,2000,2500")
    ap.add_argument("--per-disease", type=int, default=6)
    ap.add_argument("--gen-steps", type=int, default=10)
    ap.add_argument("--guidance", type=float, default=7.5, help="the quick profile's GUIDANCE")
    ap.add_argument("--autoencoder", type=Path, default=None,
                    help="a studies.autoencoder variant folder: train in its autoencoder's latent, not the shipped one's")
    ap.add_argument("--unet", default=None, help="UNet widths/blocks, e.g. 32,64,128,128/D,A,A,D (D: DownBlock2D, A: "
                                                 "CrossAttnDownBlock2D); default: the shipped UNet's")
    ap.add_argument("--control", action="store_true", help="also measure term control (each term alone, 0 -> 1, "
                                                             "same noise) with the online weights at every point, and "
                                                             "its ceiling through the autoencoder once")
    ap.add_argument("--out", type=Path, default=results_path("studies", "training_curve"))
    a = ap.parse_args(argv)

    from phenoface.cohort import load_split
    from phenoface.evaluation.generator_figures import draw_and_measure, saved_recogniser, term_control
    from phenoface.model import load_model
    from phenoface.model.pipeline import fit_unet, training_set
    from phenoface.model.store import ConditionedModel

    rec, extractor = saved_recogniser(a.data_dir)
    shipped = load_model(a.data_dir / "model")
    card = shipped.card
    p = card.get("params", {})
    steps = int(a.steps or p.get("UNET_STEPS", 2500))
    at = sorted({int(s) for s in a.at.split(",") if int(s) <= steps} | {steps})
    zero_shot = tuple(card.get("zero_shot", ()))
    vae, vae_cfg, unet_cfg, scale = shipped.vae, shipped.configs["autoencoder"], shipped.configs["unet"], shipped.latent_scale
    if a.autoencoder or a.unet:
        vae, vae_cfg, unet_cfg = other_shape(a.autoencoder, a.unet, shipped)
        scale = None  # 1 / std of this latent
    ts = training_set(a.data_dir, tags=card.get("tags", "measured"), zero_shot=zero_shot)
    val = load_split(a.data_dir, "validation")
    real_top1 = float(rec.evaluate(val.images, val.table["disease_id"], k=1)["top1"])

    def measure(module, which: str) -> dict:
        parts = module.ema.module if which == "ema" else {"unet": module.unet, "encoder": module.encoder}
        model = ConditionedModel(module.vae, parts["unet"], parts["encoder"], ts.diseases, float(module.hparams.latent_scale),
                                 shipped.image_size, dict(module.noise_scheduler.config))
        figures = draw_and_measure(model, val, rec, extractor, a.per_disease, zero_shot, a.gen_steps, a.guidance, data_dir=a.data_dir)
        out = {f"{which}_top1": figures["top1"], f"{which}_top1_ratio": figures["top1"] / real_top1,
               f"{which}_fd": figures["fd"], f"{which}_age_mae": figures["age_mae"],
               f"{which}_age_mae_shuffled": figures["age_mae_shuffled"]}
        if a.control and which == "online":
            tc = term_control(model, a.data_dir, a.gen_steps, a.guidance)
            out.update({f"online_{k}": v for k, v in tc.items() if k != "term_spearman"})
        return out

    ceiling = None
    if a.control:  # once: the same term series rendered and passed through this latent's autoencoder
        ceiling = term_control(None, a.data_dir, vae=vae.eval())
        print(f"term control through the autoencoder (ceiling): {ceiling['terms_at_goal']} of {len(ceiling['term_spearman'])} "
              f"terms at Spearman >= 0.8, median {ceiling['term_spearman_median']:.2f}", flush=True)
    curve_path = a.work / "curve.json"
    points = json.loads(curve_path.read_text())["points"] if curve_path.is_file() else []
    before = max((pt["train_seconds"] for pt in points), default=0.0)
    probe = _probe_class()(at, measure, points, curve_path, before)
    batch, lr = int(p.get("GEN_BATCH", 32)), float(p.get("GEN_LR", 1e-3))
    config = {"part": "unet-curve", "faces": len(ts), "batch_size": batch, "lr": lr, "seed": 0,
              "data_dir": str(a.data_dir.resolve()), "autoencoder_of": str(a.autoencoder or card.get("commit")), "tags": ts.tags,
              "unet": unet_cfg}
    print(f"UNet from scratch, {steps} steps, batch {batch}, lr {lr}, {len(ts)} faces; autoencoder frozen "
          f"({a.autoencoder or 'the shipped one'}: f = {shipped.image_size // unet_cfg['sample_size']}, "
          f"{vae_cfg['latent_channels']} channels); real validation top-1 {real_top1:.3f}", flush=True)
    fit_unet(vae, vae_cfg, unet_cfg, ts.images, ts.cond, ts.diseases,
             a.work / "unet", config, steps, batch_size=batch, lr=lr, seed=0, scale=scale,
             trainer_kw={"progress": False, "every": 250}, callbacks=[probe])
    out = {"data_dir": str(a.data_dir), "steps": steps, "batch": batch, "lr": lr, "per_disease": a.per_disease,
           "gen_steps": a.gen_steps, "guidance": a.guidance, "split": "validation", "recogniser_top1_real_validation": real_top1,
           "autoencoder_seconds": card.get("autoencoder", {}).get("seconds"),
           "autoencoder_top1_ratio": card.get("figures", {}).get("autoencoder_top1_ratio")}
    if a.autoencoder:  # that variant's own figures (studies.autoencoder's results, validation)
        variant = json.loads((a.autoencoder.parent / "results.json").read_text()).get(a.autoencoder.name, {})
        out.update(autoencoder=str(a.autoencoder), autoencoder_seconds=variant.get("train_seconds"),
                   autoencoder_top1_ratio=variant.get("top1_ratio"))
    if a.unet:
        out["unet"] = a.unet
    if ceiling:
        out.update({f"autoencoder_{k}": v for k, v in ceiling.items()})
    for pt in points:
        for k, v in pt.items():
            if k != "step":
                out[f"step{pt['step']}_{k}"] = v
    write_results(out, a.out)
    print(f"figure: {plot(points, out, a.out.with_suffix('.png'))}")
    best = max(points, key=lambda pt: max(pt["ema_top1_ratio"], pt["online_top1_ratio"]))
    print(f"best: step {best['step']} ({best['train_seconds']:.0f} s): top-1 ratio EMA {best['ema_top1_ratio']:.2f}, "
          f"online {best['online_top1_ratio']:.2f} (goal 0.9)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
