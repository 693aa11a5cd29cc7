"""Chinese text tokenizer: one token per CJK character, BERT-Chinese style, `[CLS] ... [SEP]`.

Offline (the default) a WordPiece vocabulary is trained with the `tokenizers` library on the
training captions, seeded with every CJK Unified Ideograph so that a character never seen in
training still has its own id (as BERT-Chinese does); the result is saved inside each checkpoint.
Online users can instead name a hub tokenizer (e.g. `bert-base-chinese`) or a `tokenizer.json`.
Truncation keeps `[SEP]`: the text tower pools at the `[SEP]` position.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]
# CJK Unified Ideographs: the BERT-Chinese character set, one id each.
CJK_RANGE = (0x4E00, 0x9FFF)


class TokenizerError(ValueError):
    """A tokenizer that cannot serve the model (missing specials, vocabulary too large)."""


def cjk_alphabet() -> list[str]:
    return [chr(c) for c in range(CJK_RANGE[0], CJK_RANGE[1] + 1)]


def train_wordpiece(captions: Iterable[str], vocab_size: int, min_frequency: int = 1) -> Tokenizer:
    """A BERT-Chinese-like WordPiece tokenizer trained on `captions`, without any download."""
    tok = Tokenizer(models.WordPiece(unk_token=UNK))
    # BertNormalizer puts spaces around CJK characters, so each becomes its own word.
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=False, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=SPECIAL_TOKENS, initial_alphabet=cjk_alphabet(),
                                        show_progress=False)
    tok.train_from_iterator(captions, trainer=trainer)
    return tok


def load_named(name: str) -> Tokenizer:
    """A `tokenizer.json` file, or a hub tokenizer name (needs the network)."""
    p = Path(name)
    if p.is_file():
        return Tokenizer.from_file(str(p))
    return Tokenizer.from_pretrained(name)


class ChineseTokenizer:
    """Turns captions into fixed-length id arrays: `[CLS] chars [SEP] [PAD]...`."""

    def __init__(self, tokenizer: Tokenizer, context_length: int):
        if context_length < 3:
            raise TokenizerError(f"context_length {context_length} leaves no room for text")
        self.tokenizer = tokenizer
        self.context_length = context_length
        ids = {t: tokenizer.token_to_id(t) for t in (PAD, CLS, SEP, UNK)}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise TokenizerError(f"tokenizer lacks special tokens {missing}")
        self.pad_id, self.cls_id, self.sep_id, self.unk_id = ids[PAD], ids[CLS], ids[SEP], ids[UNK]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A {SEP}", special_tokens=[(CLS, self.cls_id), (SEP, self.sep_id)])
        # Truncation counts the template's specials, so [SEP] always survives.
        tokenizer.enable_truncation(max_length=context_length)
        tokenizer.enable_padding(length=context_length, pad_id=self.pad_id, pad_token=PAD)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def __call__(self, texts: str | list[str]) -> np.ndarray:
        """int64 array (n, context_length)."""
        if isinstance(texts, str):
            texts = [texts]
        encs = self.tokenizer.encode_batch(list(texts))
        return np.asarray([e.ids for e in encs], dtype=np.int64).reshape(len(encs), self.context_length)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str, context_length: int) -> "ChineseTokenizer":
        return cls(Tokenizer.from_str(text), context_length)

    def check_fits(self, model_vocab_size: int) -> None:
        if self.vocab_size > model_vocab_size:
            raise TokenizerError(f"tokenizer has {self.vocab_size} entries but the model embeds only "
                                 f"{model_vocab_size}: raise train.vocab_size")


def build_tokenizer(spec: str, captions: Iterable[str] | None, context_length: int, vocab_size: int,
                    min_frequency: int = 1) -> ChineseTokenizer:
    """`spec` empty: train on `captions` (offline); else a tokenizer.json path or hub name."""
    if spec:
        tok = load_named(spec)
    else:
        if captions is None:
            raise TokenizerError("no captions to train the offline vocabulary on")
        tok = train_wordpiece(captions, vocab_size, min_frequency)
    out = ChineseTokenizer(tok, context_length)
    out.check_fits(vocab_size)
    return out
