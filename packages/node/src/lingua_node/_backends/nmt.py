"""Text translation with a seq2seq model loaded from a local folder: transformers M2M100, NLLB
or Marian, or a CTranslate2 conversion of one of those.

A model folder holds the model, its tokenizer and a `lingua_model.json` saying which pairs it
serves, e.g. `{"kind": "nmt", "engine": "transformers", "arch": "m2m100",
"languages": ["en", "zh"]}` (every pair between them) or `"pairs": [["en", "zh"]]`.
"""

from __future__ import annotations

import json
import threading
from itertools import permutations
from pathlib import Path
from typing import Any

MANIFEST = "lingua_model.json"
NLLB_CODES = {
    "en": "eng_Latn",
    "zh": "zho_Hans",
    "de": "deu_Latn",
    "fr": "fra_Latn",
    "es": "spa_Latn",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "ru": "rus_Cyrl",
}


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


class TextTranslator:
    """One NMT model. `translate()` is called from worker threads."""

    def __init__(self, folder: Path, *, device: str = "cpu", max_new_tokens: int = 256) -> None:
        from transformers import AutoConfig, AutoTokenizer

        self.folder = folder
        meta = read_manifest(folder)
        self.model_id = str(meta.get("model_id", folder.name))
        self.engine = str(meta.get("engine", "transformers"))
        self.max_new_tokens = max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.arch = str(meta.get("arch") or AutoConfig.from_pretrained(str(folder)).model_type)
        if "pairs" in meta:
            self.pairs = [(str(s), str(t)) for s, t in meta["pairs"]]
        else:
            self.pairs = list(permutations([str(x) for x in meta.get("languages", [])], 2))
        self._lock = threading.Lock()
        if self.engine == "ctranslate2":
            import ctranslate2

            self.ct2 = ctranslate2.Translator(str(folder), device=device, compute_type="int8")
            self.model = None
        else:
            from transformers import AutoModelForSeq2SeqLM

            self.model = AutoModelForSeq2SeqLM.from_pretrained(str(folder), local_files_only=True)
            self.model.eval()
            if device == "cuda":
                self.model.to("cuda")

    def _lang_token(self, lang: str) -> str:
        if self.arch == "m2m_100":
            return f"__{lang}__"
        return NLLB_CODES.get(lang, lang)

    def translate(self, text: str, src: str, tgt: str) -> str:
        if not text.strip():
            return ""
        if self.engine == "ctranslate2":
            return self._translate_ct2(text, src, tgt)
        import torch

        assert self.model is not None
        with self._lock:  # tokenizers' src_lang is state; set it and encode atomically
            if self.arch in ("m2m_100", "nllb"):
                self.tokenizer.src_lang = src if self.arch == "m2m_100" else NLLB_CODES[src]
            batch = self.tokenizer([text], return_tensors="pt", truncation=True)
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "num_beams": 1}
        if self.arch in ("m2m_100", "nllb"):
            kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(
                self._lang_token(tgt)
            )
        batch = {k: v.to(self.model.device) for k, v in batch.items()}
        with torch.inference_mode():
            out = self.model.generate(**batch, **kwargs)
        return str(self.tokenizer.decode(out[0], skip_special_tokens=True)).strip()

    def _translate_ct2(self, text: str, src: str, tgt: str) -> str:
        with self._lock:
            if self.arch in ("m2m_100", "nllb"):
                self.tokenizer.src_lang = src if self.arch == "m2m_100" else NLLB_CODES[src]
            ids = self.tokenizer(text, truncation=True)["input_ids"]
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        prefix = [[self._lang_token(tgt)]] if self.arch in ("m2m_100", "nllb") else None
        result = self.ct2.translate_batch(
            [tokens], target_prefix=prefix, max_decoding_length=self.max_new_tokens, beam_size=1
        )
        out = result[0].hypotheses[0]
        if prefix:
            out = out[1:]
        return str(
            self.tokenizer.decode(
                self.tokenizer.convert_tokens_to_ids(out), skip_special_tokens=True
            )
        ).strip()
