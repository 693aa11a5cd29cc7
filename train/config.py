"""Typed, documented defaults of the trainer and the evaluation.

Every field's default below is the documented default; `--set train.KEY=VALUE` overrides any of
them. Model sizes live in `train/model.py` presets (`tiny`, `vit-b-32`, `vit-l-14`); the fields
here only choose among them or override a few of their values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    # --- model ---
    model: str = "tiny"                 # preset: tiny (CPU tests, demo), vit-b-32, vit-l-14 (Wukong paper)
    head: str = "global"                # similarity head: global (CLIP), tokenwise (FILIP), reduced (Wukong)
    conv_stem: bool | None = None       # small convolutional stem before the ViT; None = the preset's choice
    embed_dim: int = 0                  # joint embedding size; 0 = preset default (token heads: 256 as in Wukong)
    reduced_tokens: int = 0             # K of the reduced-token layer; 0 = preset default (12 B/32, 24 L/14)
    reduced_groups: int = 8             # groups of the reduced-token layer's grouped 1x1 convolutions
    context_length: int = 32            # text tokens incl. [CLS] and [SEP] (Wukong: 32)
    vocab_size: int = 21128             # text embedding rows (BERT-Chinese size); the tokenizer must fit
    init_temperature: float = 0.07      # initial softmax temperature (CLIP)
    max_logit_scale: float = 100.0      # clamp of the learned inverse temperature (CLIP)
    tokenwise_chunk: int = 256          # texts per block when scoring token-wise (bounds memory)
    # --- tokenizer ---
    tokenizer: str = ""                 # "" = train a WordPiece vocabulary on the train captions (offline);
                                        # a tokenizer.json path, or a hub name such as bert-base-chinese
    tokenizer_max_captions: int = 200_000  # captions read to build the offline vocabulary
    tokenizer_min_frequency: int = 1    # a character must appear this often to enter the vocabulary
    # --- locked-image tuning (LiT) ---
    lock_image: str = ""                # image tower to load and freeze: a checkpoint file, or (online)
                                        # an open_clip "MODEL:PRETRAINED" tag such as ViT-B-32:openai
    lock_image_unlocked_groups: int = 0  # last N groups of the locked tower that still train
    # --- schedule ---
    steps: int = 0                      # optimizer steps; 0 = from epochs or the time budget
    epochs: int = 0                     # passes over the train shards (exact count from the index)
    time_budget_s: float = 0.0          # stop after this many seconds of training; 0 = no limit
    default_epochs: int = 1             # length when none of steps, epochs, time_budget_s is given
    batch_size: int = 64                # samples per process per optimizer step (before accumulation)
    accum_steps: int = 1                # gradient accumulation: micro-batches per optimizer step
    lr: float = 5e-4                    # peak learning rate (AdamW)
    min_lr: float = 0.0                 # floor of the cosine decay
    warmup_steps: int = 50              # linear warmup; with only a time budget, warmup_fraction applies
    warmup_fraction: float = 0.05       # warmup share of the time budget when the step count is unknown
    weight_decay: float = 0.2           # AdamW decay (not on gains, biases, embeddings, temperature)
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    grad_clip: float = 0.0              # max gradient norm; 0 = off
    max_nonfinite_steps: int = 20       # consecutive skipped (NaN/inf gradient) steps before giving up
    seed: int = 0                       # seeds weights, shard order and the shuffle buffer
    precision: str = "auto"             # auto (bf16 autocast on GPU, fp32 on CPU), fp32, bf16
    grad_checkpointing: bool = False    # recompute activations in backward (saves memory on GPU)
    # --- data ---
    workers: int = 2                    # data-loader processes per trainer process (0 = in-process)
    shuffle_buffer: int = 1000          # samples in the shuffle buffer of each loader stream
    resample: bool = False              # draw shards with replacement instead of epoch passes
    prefetch_factor: int = 4            # batches each loader process keeps ready
    loader_timeout_s: float = 300.0     # a loader silent this long is an error, never a hang
    # --- checkpoints and logs ---
    checkpoint_every: int = 200         # steps between atomic checkpoints (and one at the end)
    keep_checkpoints: int = 2           # step_*.pt files kept beside latest.pt
    log_every: int = 10                 # steps between TensorBoard / progress-bar updates
    val_max_samples: int = 5000         # held-out pairs scored for retrieval at the end of training
    # --- distributed (Ray Train) ---
    num_workers: int = 1                # trainer processes; 1 runs in this process without Ray
    use_gpu: bool = False               # one GPU per trainer process, NCCL; else gloo on CPU
    cpus_per_worker: int = 1            # CPUs reserved for each trainer process in Ray
    torch_threads: int = 0              # intra-op threads per trainer process; 0 = torch's default


@dataclass
class EvalConfig:
    batch_size: int = 256               # images or texts embedded at once
    block_size: int = 1024              # queries per similarity block in retrieval (1024 x 100k floats = 400 MB)
    max_block_elements: int = 50_000_000  # token-wise heads: floats in one (queries x texts x tokens^2) block
    recall_at: tuple[int, ...] = (1, 5, 10)  # R@K reported in both directions
    templates: str = ""                 # Chinese prompt templates ("{}" = class name); "" = bundled list
    max_samples: int = 0                # retrieval pairs read from the shards; 0 = all
    workers: int = 2                    # data-loader processes while embedding
