"""The full-scale generator: Stable Diffusion 1.5 / 2.x from a local diffusers folder (``SD_MODEL_PATH``),
LoRA on the UNet's attention (peft), and the project's condition tokens (disease, profile, terms, age, sex,
severity) projected to the UNet's cross-attention width and **appended to the prompt's CLIP states**.

The prompt is one fixed sentence (:data:`PROMPT`): everything that tells one face from another comes through
the condition tokens, so classifier-free and compositional guidance (:mod:`phenoface.sampling`) work exactly
as for the small model: the null condition is the prompt plus the null tokens. The model it writes loads
through :func:`phenoface.model.load_model` like the small one, so notebooks 06 and 07 need no other code.

Nothing is downloaded: ``from_pretrained`` reads the folder with ``local_files_only`` and ``use_safetensors``
(pickled ``.bin`` weights are refused). The tests build a tiny folder with :func:`tiny_sd_folder`.

    >>> card = train_sd(ts, data_dir / "model", data_dir / "model_training_sd", "../data/raw/stable-diffusion-v1-5",
    ...                 steps=2000, batch_size=8, lr=1e-4, rank=8)
    >>> generate(load_model(data_dir / "model"), disease="OMIM:190685", n=4)
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from torch import nn

from .. import modelio
from ..conditioning import CONCEPTS, ConditionEncoder, term_text_embeddings
from ..config import git_commit
from .components import n_params
from .data import FaceDataModule
from .diffusion import DiffusionModule
from .store import KIND, ConditionedModel, fingerprint, load_conditioning, save_conditioning, write_card
from .train import fit, hardware, read_log, thin_log

PROMPT = "a close-up photo of a person's face"
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the UNet's attention projections, as diffusers' LoRA scripts
PARTS = ("unet", "vae", "text_encoder")
EXPECTED = ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
            "scheduler/scheduler_config.json", "tokenizer/")
BASE = "stable-diffusion"


class SDFolderError(FileNotFoundError):
    """SD_MODEL_PATH is empty, missing, or not a Stable Diffusion folder in diffusers layout."""


def check_sd_folder(path, param: str = "SD_MODEL_PATH") -> Path:
    """``path`` as a Path when it is a diffusers Stable Diffusion folder with safetensors weights, else an
    :class:`SDFolderError` that names ``param`` and the files expected."""
    expected = ", ".join(EXPECTED) + " and safetensors weights in unet/, vae/, text_encoder/"
    how = ("(on a machine with internet: huggingface-cli download stable-diffusion-v1-5/stable-diffusion-v1-5 "
           "--local-dir <folder>; or leave SD_MODEL_PATH empty for the small model)")
    if path in (None, ""):
        raise SDFolderError(f"{param} is empty: give a local Stable Diffusion folder in diffusers layout ({expected}) {how}")
    folder = Path(path)
    if not folder.is_dir():
        raise SDFolderError(f"{param} = {str(path)!r}: no such folder. Expected a diffusers Stable Diffusion folder "
                            f"({expected}) {how}")
    missing = [f for f in EXPECTED if not (folder / f).exists()]
    missing += [f"{p}/*.safetensors" for p in PARTS if (folder / p).is_dir() and not any((folder / p).glob("*.safetensors"))]
    if missing:
        raise SDFolderError(f"{param} = {str(path)!r} is not a diffusers Stable Diffusion folder with safetensors "
                            f"weights: missing {', '.join(missing)} (expected {expected}; pickled .bin / .ckpt weights "
                            f"are never loaded) {how}")
    return folder


def load_sd(path, param: str = "SD_MODEL_PATH") -> dict:
    """The pretrained parts of the folder: vae, unet, text_encoder, tokenizer and the scheduler's config."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = check_sd_folder(path, param)
    kw = dict(local_files_only=True, use_safetensors=True)
    return {"vae": AutoencoderKL.from_pretrained(folder, subfolder="vae", **kw),
            "unet": UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **kw),
            "text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **kw),
            "tokenizer": CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True),
            "scheduler": dict(DDPMScheduler.load_config(folder, subfolder="scheduler", local_files_only=True))}


@torch.no_grad()
def prompt_states(text_encoder, tokenizer, prompt: str = PROMPT) -> torch.Tensor:
    """The CLIP text encoder's last hidden states of ``prompt`` (1, L, D), as SD's pipelines condition on."""
    ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return text_encoder.eval()(ids)[0]


class PromptedEncoder(nn.Module):
    """The condition tokens appended to a fixed prompt's CLIP states: (B, L + G, D)."""

    def __init__(self, encoder: ConditionEncoder, prompt: torch.Tensor):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("prompt", prompt.detach().clone())

    @property
    def version(self) -> int:
        return self.encoder.version

    def forward(self, cond) -> torch.Tensor:
        tokens = self.encoder(cond)
        return torch.cat([self.prompt.to(tokens.dtype).expand(len(tokens), -1, -1), tokens], dim=1)


def add_lora(unet, rank: int, alpha: float | None = None):
    """Freeze ``unet`` and add a peft LoRA adapter of ``rank`` to its attention projections."""
    from peft import LoraConfig

    if int(rank) < 1:
        raise ValueError(f"LORA_RANK = {rank!r}: must be at least 1")
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=int(rank), lora_alpha=float(alpha or rank), init_lora_weights="gaussian",
                                target_modules=list(LORA_TARGETS)))
    return unet


def _vae_factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


def check_image_size(image_size: int, vae, unet) -> int:
    """The latent size for ``image_size`` px, or a ValueError when the UNet cannot take it."""
    f = _vae_factor(vae)
    down = 2 ** (len(unet.config.block_out_channels) - 1)
    if image_size % (f * down):
        raise ValueError(f"image size {image_size} px does not fit this Stable Diffusion model: it must be a multiple of "
                         f"{f * down} (autoencoder factor {f} x UNet downsampling {down}); set IMAGE_SIZE accordingly")
    return image_size // f


class SDLoraModule(DiffusionModule):
    """:class:`DiffusionModule`'s loss, condition dropout, NaN stop and optimiser, over a pretrained Stable
    Diffusion: only the LoRA weights and the condition encoder train. No EMA: an average of SD's UNet would
    double its memory, and LoRA fine-tuning is usually run without one. Checkpoints hold the trained weights only."""

    def __init__(self, sd_path: str, kg_dim: int, term_text, rank: int = 4, prompt: str = PROMPT, lr: float = 1e-4,
                 p_group: float = 0.15, p_all: float = 0.1, total_steps: int = 1000, warmup: int = 100):
        L.LightningModule.__init__(self)  # DiffusionModule.__init__ builds a model from configs: not this one's
        # named explicitly: Lightning finds __init__ arguments through super(), which this __init__ skips
        self.save_hyperparameters(dict(sd_path=sd_path, kg_dim=kg_dim, rank=rank, prompt=prompt, lr=lr, p_group=p_group,
                                       p_all=p_all, total_steps=total_steps, warmup=warmup))
        from diffusers import DDPMScheduler

        parts = load_sd(sd_path)
        self.vae = parts["vae"].requires_grad_(False).eval()
        self.unet = add_lora(parts["unet"], rank)
        encoder = ConditionEncoder(self.unet.config.cross_attention_dim, kg_dim, term_text)
        self.encoder = PromptedEncoder(encoder, prompt_states(parts["text_encoder"], parts["tokenizer"], prompt))
        self.noise_scheduler = DDPMScheduler.from_config(parts["scheduler"])
        self.hparams.latent_scale = float(self.vae.config.scaling_factor)
        self.hparams.prediction_type = self.noise_scheduler.config.prediction_type
        self.strict_loading = False  # resume checkpoints hold the trained weights only
        self.register_buffer("concept_counts", torch.zeros(len(CONCEPTS), dtype=torch.long))

    def on_train_batch_end(self, *_):
        pass  # no EMA (see the class docstring)

    def on_save_checkpoint(self, checkpoint):
        trained = {n for n, p in self.named_parameters() if p.requires_grad} | {"encoder.prompt"}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trained}


def save_sd_model(folder, module: SDLoraModule, diseases, card: dict, image_size: int) -> Path:
    """The LoRA weights, the condition encoder and the disease table, and a card naming the base folder."""
    from peft.utils import get_peft_model_state_dict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hp = module.hparams
    lora = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(module.unet).items()}
    modelio.save_model(folder / "lora.safetensors", lora, {"rank": int(hp.rank), "alpha": float(hp.rank),
                                                           "targets": list(LORA_TARGETS)}, kind=KIND + "/lora")
    save_conditioning(folder, module.encoder.encoder, diseases)
    card = {**card, "base": BASE, "sd_model_path": str(Path(hp.sd_path).resolve()), "prompt": hp.prompt}
    write_card(folder, card, module.noise_scheduler, image_size, hp.latent_scale)
    return folder


def load_sd_model(folder, card: dict, dtype=torch.float32) -> ConditionedModel:
    """A model folder :func:`save_sd_model` wrote: its base Stable Diffusion (the card's ``sd_model_path``)
    with the LoRA weights and the condition tokens."""
    from peft.utils import set_peft_model_state_dict

    folder = Path(folder)
    parts = load_sd(card.get("sd_model_path"), param=f"sd_model_path in {folder / 'card.json'} (SD_MODEL_PATH when "
                                                      "notebook 05 trained it)")
    lora, cfg = modelio.load_model(folder / "lora.safetensors", kind=f"{KIND}/lora")
    unet = add_lora(parts["unet"], cfg["rank"], cfg["alpha"])
    result = set_peft_model_state_dict(unet, lora)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise modelio.ModelFileError(f"{folder / 'lora.safetensors'} does not fit {card['sd_model_path']}: "
                                     f"{len(unexpected)} LoRA weights have no place in its UNet (e.g. {unexpected[0]})")
    vae = parts["vae"]
    image_size = int(card["image_size"])
    unet.register_to_config(sample_size=check_image_size(image_size, vae, unet))  # what generate() draws at
    encoder, diseases = load_conditioning(folder, unet.config.cross_attention_dim, dtype)
    prompted = PromptedEncoder(encoder, prompt_states(parts["text_encoder"], parts["tokenizer"], card.get("prompt", PROMPT)))
    for m in (vae, unet, prompted):
        m.to(dtype).eval().requires_grad_(False)
    return ConditionedModel(vae, unet, prompted, diseases, float(card["latent_scale"]), image_size,
                            dict(card["scheduler"]), card)


def train_sd(ts, out, work, sd_path, steps: int, batch_size: int = 8, lr: float = 1e-4, rank: int = 4, seed: int = 0,
             prompt: str = PROMPT, devices="auto", num_nodes: int = 1, strategy: str = "auto", precision: str = "auto",
             progress: bool = True, every: int = 250, params: dict | None = None) -> dict:
    """Fine-tune LoRA + the condition encoder on the training set ``ts`` (a :class:`~phenoface.model.pipeline.
    TrainingSet`) at its image size, resumable from ``work`` (another configuration is refused, nothing
    overwritten); write the model folder ``out``. Returns its card."""
    folder = check_sd_folder(sd_path)
    image_size = int(ts.images.shape[1])
    module = SDLoraModule(str(folder), ts.diseases.kg_dim, term_text_embeddings(), rank=rank, prompt=prompt, lr=lr,
                          total_steps=steps, warmup=min(100, max(1, steps // 10)))
    check_image_size(image_size, module.vae, module.unet)
    config = {"part": "sd-lora", "base": str(folder.resolve()), "rank": int(rank), "lr": lr, "batch_size": int(batch_size),
              "seed": int(seed), "faces": len(ts), "image_size": image_size, "prompt": prompt, "tags": ts.tags,
              "held_out": list(ts.held_out)}
    t0 = time.perf_counter()
    data = FaceDataModule(ts.images, ts.cond, key="image", batch_size=batch_size, seed=seed)
    report = fit(module, data, Path(work) / "lora", config, steps, devices=devices, num_nodes=num_nodes,
                 strategy=strategy, precision=precision, progress=progress, every=every)
    card = {"source": "trained", "fingerprint": fingerprint(), "commit": git_commit(), "params": params or {},
            "seed": seed, "tags": ts.tags, "zero_shot": list(ts.held_out), "faces": len(ts),
            "parameters": {"lora": sum(p.numel() for p in module.unet.parameters() if p.requires_grad),
                           "unet": n_params(module.unet), "conditioning": n_params(module.encoder.encoder)},
            "autoencoder": {"steps": 0, "source": "pretrained (Stable Diffusion's VAE)"}, "unet": report,
            "seconds": round(time.perf_counter() - t0, 1), "hardware": hardware(),
            "log": {"autoencoder": {}, "unet": thin_log(read_log(Path(work) / "lora"))}, "figures": {}}
    if report["rank"] == 0:
        save_sd_model(out, module, ts.diseases, card, image_size)
    return card


def tiny_sd_folder(path, seed: int = 0, image_size: int = 64) -> Path:
    """A tiny Stable Diffusion folder in diffusers layout, built from config with a fixed seed (random weights),
    with a local byte-level CLIP tokenizer: what the tests and a dry run of the full path use. Nothing downloaded."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    import math

    if image_size < 32 or image_size & (image_size - 1):
        raise ValueError(f"tiny_sd_folder: image_size must be a power of two >= 32, got {image_size}")
    blocks = int(math.log2(image_size // 16)) + 1  # a 16 x 16 latent at any size: small UNet work in tests
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64, 64, 64)[:blocks],
                        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
                        norm_num_groups=8, sample_size=image_size)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                        vocab_size=len(_byte_vocab()), max_position_embeddings=16, projection_dim=32,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    tokenizer = CLIPTokenizer(vocab=_byte_vocab(), merges=[], model_max_length=16)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, clip_sample=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return Path(path)


def _byte_vocab() -> dict[str, int]:
    """CLIP's byte-level alphabet (each byte a printable character, as GPT-2's BPE maps them), each also as a
    word end: a tokenizer without merges, enough to encode any prompt one character at a time."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(256 - len(printable))]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in chars:
            vocab.setdefault(c + suffix, len(vocab))
    return vocab
