"""A tiny randomly initialised PIXIE-shaped SPLADE model (ModernBERT masked-LM + max pooling).

PIXIE-Splade-v1.5 is a ModernBertForMaskedLM with SpladePooling, a byte-level BPE vocabulary
covering Korean and English, and a 5,632-token maximum length. This builds the same architecture
at toy size, with a byte-level BPE tokenizer trained on a few bilingual sentences, and saves it as
a SparseEncoder folder, so tests run exactly the loading code a user of the real model runs.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "텔레픽스는 위성 데이터를 분석하여 해양, 농업 등 다양한 분야에 솔루션을 제공합니다.",
    "고해상도 광학 위성 영상은 국방 및 정찰 목적으로 중요하게 활용됩니다.",
    "TelePIX provides advanced solutions by analyzing satellite data for ocean and agriculture.",
    "High-resolution optical satellite imagery is critical for defense and reconnaissance.",
    "Space economy creates new value through the utilization of space-based data.",
]
MAX_LENGTH = 5632


def build_tiny_pixie(path: Path, max_length: int = MAX_LENGTH) -> Path:
    """Write a tiny PIXIE-shaped SparseEncoder folder to ``path`` and return it."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(CORPUS * 3, trainer)
    from tokenizers.processors import TemplateProcessing

    bpe.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", bpe.token_to_id("[CLS]")), ("[SEP]", bpe.token_to_id("[SEP]"))],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        global_attn_every_n_layers=2,
        local_attention=16,
    )
    hf_dir = path / "hf"
    ModernBertForMaskedLM(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    mlm = MLMTransformer(str(hf_dir), max_seq_length=max_length)
    model = SparseEncoder(modules=[mlm, SpladePooling(pooling_strategy="max")], device="cpu")
    out = path / "tiny-pixie-splade"
    model.save(str(out))
    return out
