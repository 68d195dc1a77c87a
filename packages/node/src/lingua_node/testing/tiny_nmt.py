"""A tiny randomly initialised M2M100 and a SentencePiece tokenizer trained on the fly, saved
like a real model folder. Its translations are noise; what it tests is the loading and calling
code, which is the same as for a real M2M100 checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "hello world",
    "good morning to you",
    "the weather is nice today",
    "where is the station",
    "thank you very much",
    "see you tomorrow",
    "ni hao shi jie",
    "zao shang hao",
    "jin tian tian qi hen hao",
    "che zhan zai na li",
    "xie xie ni",
    "ming tian jian",
] * 20


def build_tiny_m2m100(folder: Path) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CORPUS))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "spm"),
        vocab_size=48,
        character_coverage=1.0,
        model_type="unigram",
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        pad_id=-1,
        minloglevel=2,
    )
    corpus.unlink()
    sp = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    vocab_file, spm_file = str(folder / "vocab.json"), str(folder / "spm.model")
    langs = list(M2M100Tokenizer(vocab_file, spm_file, language_codes="m2m100").lang_token_to_id)
    # like the real checkpoint: language tokens listed as special, then 8 made-up words
    tokenizer = M2M100Tokenizer(
        vocab_file, spm_file, language_codes="m2m100", additional_special_tokens=langs
    )
    torch.manual_seed(0)
    config = M2M100Config(
        vocab_size=max(tokenizer.lang_token_to_id.values()) + 1 + 8,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "lingua_model.json").write_text(
        json.dumps(
            {
                "model_id": "tiny-m2m100",
                "kind": "nmt",
                "engine": "transformers",
                "arch": "m2m_100",
                "languages": ["en", "zh"],
            }
        )
    )
    return folder
