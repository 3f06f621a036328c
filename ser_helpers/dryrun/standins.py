"""Random-init stand-ins of the hub models of a GPU profile, with their real architectures, built offline.

Serves the dry run of `configs/gpu_iemocap.yaml` (notebooks 00-10): notebook 03 loads the wav2vec2-base stand-in
as its base model, notebook 06 the Whisper-small and the two RoBERTa sentiment stand-ins. Each is built from the
config recorded in `configs/hub_configs/<id>/config.json` (`ser_helpers.hub`), so the dry run exercises the real
shapes, memory and code paths; `verify_hub` compares those recorded configs with the hub (online only). The
notebooks teach what the real models do (03 the base model, 06 the ASR and text models).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..common import SERError, atomic_dir, write_json_atomic, write_text_atomic
from ..hub import HUB_CONFIGS, count_parameters, recorded_config


# ----------------------------------------------------------------------------- tokenizers for the text stand-ins
def _roberta_tokenizer(texts, tmp: Path):
    """A byte-level BPE tokenizer (RoBERTa's kind) trained on the corpus transcripts, with RoBERTa's special
    token ids (<s>=0, <pad>=1, </s>=2, <unk>=3). Ids differ from the real vocabulary; the embedding matrix keeps
    the real vocab_size."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([t for t in texts if t.strip()] or ["empty"], vocab_size=2000, min_frequency=1,
                            show_progress=False, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(tmp))
    return RobertaTokenizerFast(vocab=str(tmp / "vocab.json"), merges=str(tmp / "merges.txt"),
                                model_max_length=512)


def _chinese_bert_tokenizer(texts, vocab_size: int, tmp: Path):
    """bert-base-chinese's layout ([PAD]=0, [unused1-99], [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, then
    characters), filled with the corpus characters and padded with [unused] entries to the real vocab_size."""
    from transformers import BertTokenizerFast
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for t in texts for c in str(t).lower() if not c.isspace()}
                   | set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'"))
    vocab += [c for c in chars if c not in vocab]
    vocab += [f"[unused{i}]" for i in range(100, 100 + max(0, vocab_size - len(vocab)))]
    (tmp / "vocab.txt").write_text("\n".join(vocab[:vocab_size]) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(tmp / "vocab.txt"), do_lower_case=True, tokenize_chinese_chars=True)


def _readme(model_id: str, n_params: int, extra: str = "") -> str:
    return (f"# Random-init stand-in for `{model_id}`\n\nBuilt by `ser_helpers.dryrun` from the recorded "
            f"architecture in `configs/hub_configs/{model_id}/` ({n_params / 1e6:.1f} M parameters, random weights). "
            "It knows nothing: it exists so the dry run exercises the real shapes, memory and code paths offline. "
            f"{extra}\n")


# ----------------------------------------------------------------------------- one builder per model type
def _whisper_standin(model_id: str, config: dict, dest: Path, texts, seed: int) -> dict:
    """An openai-whisper checkpoint file `dest.pt` with the recorded dims (notebook 06's ASR model)."""
    import torch

    from ..asr import make_tiny_whisper_checkpoint
    d = config["dims"]
    if d["n_audio_head"] != d["n_text_head"] or d["n_audio_layer"] != d["n_text_layer"] \
            or d["n_audio_state"] != d["n_text_state"] or d["n_vocab"] != 51865 or d["n_mels"] != 80:
        raise SERError(f"{model_id}: dims {d} are not the symmetric multilingual layout this builder writes")
    path = dest.with_suffix(".pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    make_tiny_whisper_checkpoint(path, seed=seed, n_state=d["n_audio_state"], n_layer=d["n_audio_layer"],
                                 n_head=d["n_audio_head"], n_text_ctx=d["n_text_ctx"])
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt["dims"] != d:
        raise SERError(f"{path}: written dims {ckpt['dims']} differ from the recorded {d}")
    n = int(sum(v.numel() for k, v in ckpt["model_state_dict"].items() if k != "alignment_heads"))
    return {"path": str(path), "parameters": n, "kind": "whisper", "dims": d}


def _wav2vec2_standin(model_id: str, config: dict, dest: Path, texts, seed: int) -> dict:
    """A Hugging Face wav2vec2 pretraining dir with the recorded feature extractor (notebook 03's base model)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForPreTraining
    cfg = Wav2Vec2Config.from_dict({k: v for k, v in config.items() if k != "transformers_version"})
    model = Wav2Vec2ForPreTraining(cfg)
    pre = json.loads((HUB_CONFIGS / model_id / "preprocessor_config.json").read_text(encoding="utf-8"))
    fe = Wav2Vec2FeatureExtractor(**{k: v for k, v in pre.items() if k != "feature_extractor_type"})
    n = count_parameters(model.wav2vec2)
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp)
        fe.save_pretrained(tmp)
        write_text_atomic(tmp / "README.md", _readme(model_id, n, "Notebook 03 adds the 4-class head."))
    return {"path": str(dest), "parameters": n, "kind": "wav2vec2"}


def _text_standin(model_id: str, config: dict, dest: Path, texts, seed: int) -> dict:
    """A Hugging Face sequence classifier with the real `id2label` and a tokenizer trained on `texts` (notebook
    06's sentiment models, RoBERTa or BERT)."""
    import tempfile

    from transformers import AutoConfig, AutoModelForSequenceClassification
    mtype = config.get("model_type")
    cfg = AutoConfig.for_model(**{k: v for k, v in config.items() if k not in ("transformers_version",)})
    model = AutoModelForSequenceClassification.from_config(cfg)
    with tempfile.TemporaryDirectory() as td:
        tok = (_roberta_tokenizer(texts, Path(td)) if mtype == "roberta"
               else _chinese_bert_tokenizer(texts, int(config["vocab_size"]), Path(td)))
    if mtype == "roberta" and tok.pad_token_id != config.get("pad_token_id"):
        raise SERError(f"{model_id}: stand-in tokenizer pad id {tok.pad_token_id} != config {config.get('pad_token_id')}")
    n = count_parameters(model)
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_text_atomic(tmp / "README.md", _readme(
            model_id, n, "The tokenizer is trained on the corpus transcripts (same kind and special ids as "
                         "the real one, other token ids); the embedding matrix has the real vocab_size."))
    return {"path": str(dest), "parameters": n, "kind": "text",
            "id2label": {str(k): v for k, v in model.config.id2label.items()}}


_BUILDERS = {"openai-whisper": _whisper_standin, "wav2vec2": _wav2vec2_standin, "roberta": _text_standin,
             "bert": _text_standin}


def build_standin(model_id: str, dest: str | os.PathLike, texts=(), seed: int = 0) -> dict:
    """Build (or reuse) the random-init stand-in of `model_id` under `dest`; returns {path, parameters, ...}.
    wav2vec2 and text models are Hugging Face dirs; Whisper is an openai-whisper checkpoint file."""
    import torch
    dest = Path(dest)
    config = recorded_config(model_id)
    stamp = {"id": model_id, "config": config, "seed": seed}
    info_path = (dest.with_suffix(".json") if config.get("model_type") == "openai-whisper"
                 else dest / "standin.json")
    if info_path.exists():
        old = json.loads(info_path.read_text(encoding="utf-8"))
        if old.get("stamp") == stamp and Path(old["path"]).exists():
            return old
    torch.manual_seed(seed)
    mtype = config.get("model_type")
    if mtype not in _BUILDERS:
        raise SERError(f"{model_id}: no stand-in builder for model_type {mtype!r}")
    info = _BUILDERS[mtype](model_id, config, dest, texts, seed)
    info["stamp"] = stamp
    write_json_atomic(info_path, info)
    return info


# ----------------------------------------------------------------------------- architecture, recorded and built
def architecture_summary(model_id: str) -> dict:
    """The architecture facts a stand-in must share with the real model (from the recorded config)."""
    c = recorded_config(model_id)
    if c.get("model_type") == "openai-whisper":
        return dict(c["dims"])
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "vocab_size", "max_position_embeddings", "conv_dim", "conv_kernel", "conv_stride", "feat_extract_norm",
            "do_stable_layer_norm", "id2label")
    return {k: c[k] for k in keys if k in c}


def loaded_architecture(info: dict) -> dict:
    """The same facts read back from a built stand-in (what the notebooks will load)."""
    import torch
    if info["kind"] == "whisper":
        return dict(torch.load(info["path"], map_location="cpu", weights_only=True)["dims"])
    from transformers import AutoConfig
    c = AutoConfig.from_pretrained(info["path"], local_files_only=True).to_dict()
    c["id2label"] = {str(k): v for k, v in c.get("id2label", {}).items()}
    for k in ("conv_dim", "conv_kernel", "conv_stride"):
        if k in c:
            c[k] = list(c[k])
    return c


def verify_hub(ids=None) -> list[str]:
    """Compare the recorded configs with the hub (needs network); returns the differences."""
    from huggingface_hub import hf_hub_download
    diffs = []
    for cfg in sorted(HUB_CONFIGS.glob("*/*/config.json")):
        model_id = str(cfg.parent.relative_to(HUB_CONFIGS))
        if model_id.startswith("openai-whisper/") or (ids and model_id not in ids):
            continue
        hub = json.loads(Path(hf_hub_download(model_id, "config.json")).read_text(encoding="utf-8"))
        mine = json.loads(cfg.read_text(encoding="utf-8"))
        for k in sorted(set(hub) | set(mine)):
            if k not in ("_name_or_path",) and hub.get(k) != mine.get(k):
                diffs.append(f"{model_id}: {k}: recorded {mine.get(k)!r}, hub {hub.get(k)!r}")
    return diffs
