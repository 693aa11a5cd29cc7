"""Zero-shot classification and image-text retrieval, for every head.

Zero-shot: class names in Chinese put into the project's Chinese prompt templates; the global head
averages the templates' text embeddings per class, token-wise heads average the softmaxed scores
over templates (as the Wukong paper did). Retrieval: R@K in both directions and their mean, with
the similarity computed in blocks (memory bounded by `block_size` and `max_block_elements`).
Ties count against the model (rank = number of candidates scoring >= the true pair, minus itself).
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from train.data import StreamSpec, decode_image, make_loader, normalize_images
from train.heads import tokenwise_similarity
from train.shardspec import resolve_shards

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
TEMPLATES_RESOURCE = "zh_templates.txt"


class EvalInputError(ValueError):
    """An image folder, class-name file or template list that cannot be used."""


# --- inputs ---
def load_templates(spec: str = "") -> list[str]:
    """Templates from a text file (one per line, "{}" = class name) or, by default, the bundled list."""
    if spec:
        p = Path(spec)
        if not p.is_file():
            raise EvalInputError(f"template file not found: {p}")
        text = p.read_text(encoding="utf-8")
    else:
        text = resources.files("train").joinpath("data", TEMPLATES_RESOURCE).read_text(encoding="utf-8")
    out = [t.strip() for t in text.splitlines() if t.strip() and not t.lstrip().startswith("#")]
    bad = [t for t in out if "{}" not in t]
    if bad or not out:
        raise EvalInputError(f"templates must each contain '{{}}': {bad[:1] or 'none given'}")
    return out


def load_classes(image_dir: str | Path, classnames_file: str | Path) -> list[tuple[str, Path]]:
    """[(Chinese class name, folder)]. Lines are "folder<TAB>name", or names in sorted-folder order."""
    root = Path(image_dir)
    if not root.is_dir():
        raise EvalInputError(f"image folder not found: {root}")
    f = Path(classnames_file)
    if not f.is_file():
        raise EvalInputError(f"class-name file not found: {f}")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    lines = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise EvalInputError(f"no class names in {f}")
    if all("\t" in ln for ln in lines):
        out = []
        for ln in lines:
            folder, name = (s.strip() for s in ln.split("\t", 1))
            if not (root / folder).is_dir():
                raise EvalInputError(f"class folder {folder!r} named in {f} not found in {root}")
            out.append((name, root / folder))
        return out
    if len(lines) != len(folders):
        raise EvalInputError(f"{len(lines)} class names in {f} but {len(folders)} class folders in {root}")
    return list(zip(lines, folders))


# --- embedding ---
@torch.no_grad()
def embed_texts(model, tok, texts: list[str], batch_size: int, device) -> dict:
    outs = []
    for i in range(0, len(texts), batch_size):
        ids = torch.from_numpy(tok(texts[i:i + batch_size])).to(device)
        outs.append({k: v.float().cpu() if v.is_floating_point() else v.cpu()
                     for k, v in model.encode_text(ids).items()})
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


@torch.no_grad()
def embed_images(model, images_u8: torch.Tensor, device) -> dict:
    out = model.encode_image(normalize_images(images_u8, device))
    return {k: v.float().cpu() for k, v in out.items()}


def _compact(feats: dict) -> dict:
    """Token features in fp16 to halve the memory of a large retrieval set; pooled ones stay fp32."""
    return {k: v.half() if k.endswith("_tokens") else v for k, v in feats.items()}


def _cat(parts: list[dict]) -> dict:
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


# --- zero-shot ---
def _image_batches(paths: list[Path], size: int, batch_size: int, errors: Counter):
    batch, idx = [], []
    for i, p in enumerate(paths):
        try:
            batch.append(decode_image(p.read_bytes(), size))
            idx.append(i)
        except Exception:  # unreadable image: counted, not fatal
            errors["bad_image"] += 1
        if len(batch) == batch_size:
            yield torch.from_numpy(np.stack(batch)), idx
            batch, idx = [], []
    if batch:
        yield torch.from_numpy(np.stack(batch)), idx


@torch.no_grad()
def zero_shot(model, tok, image_dir, classnames_file, cfg, device="cpu") -> dict:
    classes = load_classes(image_dir, classnames_file)
    templates = load_templates(cfg.templates)
    model.eval()
    size = model.arch.vision_cfg["image_size"]
    paths, labels = [], []
    for label, (_, folder) in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise EvalInputError(f"no images under {image_dir}")
    names = [n for n, _ in classes]
    token_head = model.token_head
    scale = float(model.logit_scale)
    # Class prompts: (templates x classes) texts, embedded once.
    prompts = [t.format(n) for t in templates for n in names]
    txt = embed_texts(model, tok, prompts, cfg.batch_size, device)
    n_t, n_c = len(templates), len(names)
    if not token_head:
        cls = torch.nn.functional.normalize(txt["text"].view(n_t, n_c, -1).mean(0), dim=-1)
    errors: Counter = Counter()
    scores, kept = [], []
    for images, idx in _image_batches(paths, size, cfg.batch_size, errors):
        img = embed_images(model, images, device)
        if token_head:
            d = txt["text_tokens"].shape[-1]
            toks = txt["text_tokens"].view(n_t, n_c, -1, d)
            mask = txt["text_mask"].view(n_t, n_c, -1)
            probs = torch.zeros(images.shape[0], n_c)
            for t in range(n_t):
                i2t, _ = tokenwise_similarity(img["image_tokens"], toks[t], mask[t], model.arch.tokenwise_chunk)
                probs += (scale * i2t).softmax(dim=1)
            scores.append(probs / n_t)
        else:
            scores.append(img["image"] @ cls.t())
        kept += idx
    if not scores:
        raise EvalInputError(f"no readable image under {image_dir} ({dict(errors)})")
    s = torch.cat(scores)
    y = torch.tensor([labels[i] for i in kept])
    top = s.topk(min(5, n_c), dim=1).indices
    top1 = (top[:, 0] == y).float()
    per_class = {names[c]: float(top1[y == c].mean()) if (y == c).any() else None for c in range(n_c)}
    out = {"task": "zeroshot", "images": int(len(y)), "classes": n_c, "templates": n_t,
           "top1": float(top1.mean()), "chance": 1.0 / n_c, "per_class_top1": per_class,
           "errors": dict(errors), "head": model.arch.head}
    if n_c > 5:
        out["top5"] = float((top == y[:, None]).any(dim=1).float().mean())
    return out


# --- retrieval ---
def _rows_for(model, cfg, n_cols: int, tokens_per_row: int) -> int:
    if not model.token_head:
        return max(1, cfg.block_size)
    per_row = max(1, min(n_cols, model.arch.tokenwise_chunk) * tokens_per_row)
    return max(1, min(cfg.block_size, cfg.max_block_elements // per_row))


def _scores(model, img: dict, txt: dict, direction: str) -> torch.Tensor:
    """(images x texts) similarity used to rank texts for images (i2t) or images for texts (t2i)."""
    if not model.token_head:
        return img["image"] @ txt["text"].t()
    # Token features are stored in half precision (100k pairs x 50 tokens); blocks score in fp32.
    i2t, t2i = tokenwise_similarity(img["image_tokens"].float(), txt["text_tokens"].float(), txt["text_mask"],
                                    model.arch.tokenwise_chunk)
    return i2t if direction == "i2t" else t2i


def _ranks(model, img: dict, txt: dict, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank of the true partner for every image (among texts) and every text (among images)."""
    n = next(iter(img.values())).shape[0]
    pq = 1
    if model.token_head:
        pq = img["image_tokens"].shape[1] * txt["text_tokens"].shape[1]
    rows = _rows_for(model, cfg, n, pq)
    i2t_rank = torch.empty(n, dtype=torch.long)
    t2i_rank = torch.empty(n, dtype=torch.long)
    for a in range(0, n, rows):
        b = min(n, a + rows)
        s = _scores(model, {k: v[a:b] for k, v in img.items()}, txt, "i2t")      # (rows, n)
        gt = s[torch.arange(b - a), torch.arange(a, b)]
        i2t_rank[a:b] = (s >= gt[:, None]).sum(dim=1) - 1
        # Texts a..b against all images, in image blocks.
        cols = torch.cat([_scores(model, {k: v[c:c + rows] for k, v in img.items()},
                                  {k: v[a:b] for k, v in txt.items()}, "t2i")
                          for c in range(0, n, rows)])                          # (n, rows)
        gt = cols[torch.arange(a, b), torch.arange(b - a)]
        t2i_rank[a:b] = (cols >= gt[None, :]).sum(dim=0) - 1
    return i2t_rank, t2i_rank


def recall_summary(i2t_rank: torch.Tensor, t2i_rank: torch.Tensor, ks) -> dict:
    out = {}
    for k in ks:
        out[f"i2t_R@{k}"] = float((i2t_rank < k).float().mean())
        out[f"t2i_R@{k}"] = float((t2i_rank < k).float().mean())
    out["mean_recall"] = float(np.mean([v for v in out.values()]))
    out["chance_mean_recall"] = float(np.mean([min(1.0, k / len(i2t_rank)) for k in ks]))
    return out


@torch.no_grad()
def embed_pairs(model, tok, shards: list[str], cfg, device="cpu") -> tuple[dict, dict, dict]:
    model.eval()
    spec = StreamSpec(shards=shards, batch_size=cfg.batch_size, image_size=model.arch.vision_cfg["image_size"],
                      tokenizer_json=tok.to_json(), context_length=tok.context_length)
    errors: Counter = Counter()
    imgs, txts, n = [], [], 0
    workers = min(cfg.workers, len(shards))
    for batch in make_loader(spec, workers, timeout_s=600.0 if workers else 0.0):
        errors.update(batch["errors"])
        if batch["images"] is None:
            continue
        take = batch["images"].shape[0]
        if cfg.max_samples:
            take = min(take, cfg.max_samples - n)
        if take <= 0:
            break
        imgs.append(_compact(embed_images(model, batch["images"][:take], device)))
        txts.append(_compact({k: v.float().cpu() if v.is_floating_point() else v.cpu()
                              for k, v in model.encode_text(batch["text"][:take].to(device)).items()}))
        n += take
    if not imgs:
        raise EvalInputError(f"no valid image-text pair in {len(shards)} shard(s) ({dict(errors)})")
    return _cat(imgs), _cat(txts), dict(errors)


def retrieval(model, tok, shards_spec: str | list[str], cfg, device="cpu") -> dict:
    shards = resolve_shards(shards_spec) if isinstance(shards_spec, str) else list(shards_spec)
    img, txt, errors = embed_pairs(model, tok, shards, cfg, device)
    i2t, t2i = _ranks(model, img, txt, cfg)
    out = {"task": "retrieval", "pairs": int(len(i2t)), "head": model.arch.head, "errors": errors}
    out.update(recall_summary(i2t, t2i, cfg.recall_at))
    return out

