"""A real-size dry run of a GPU profile on CPU, before any GPU hour is spent.

    ser pipeline --dry-run --profile configs/gpu_iemocap.yaml        (make dryrun)

Every notebook of the profile runs, in order, with the profile's own parameters, except what needs a download:

* the hub models become **random-init stand-ins with the real architectures**, built locally from the configs
  recorded in `configs/hub_configs/<id>/config.json` (facebook/wav2vec2-base, 95 M parameters, with its
  layerdrop and SpecAugment settings; openai-whisper `small` dimensions; the two RoBERTa sentiment models with
  their real `id2label`, so notebook 06 maps the same labels to negative/neutral/positive as with the real ones);
* the data becomes a small generated corpus in the raw IEMOCAP and CASIA layouts (notebook 00, size `dryrun`),
  with one clip per IEMOCAP split lengthened past 15 s so `max_duration_sec: 15` crops for real;
* training takes a few optimisation steps (`max_steps`); the corpus is small (33 utterances: the fewest with every
  label in IEMOCAP's train sessions) and stage 06 takes 6 rows per split (`max_samples`), each a Whisper-small 30 s
  window; a random-init Whisper decodes at most `SER_WHISPER_SAMPLE_LEN` tokens per window (24 here; a random
  decoder otherwise loops to its 224-token limit).

The overrides are listed, with their reasons, in `{run_dir}/dryrun_stages.md`. Then it checks what breaks at
real size: every profile parameter reaches (and is used by) its notebook, clips over 15 s are cropped,
`fp16`/`cuda` without CUDA is a clear warning rather than a crash, the selection ran on val, the report was
written, and the sentiment labels map as they will with the real models. Per stage it prints the wall time, the
peak memory (RSS of the kernel process and its children) and a linear estimate of the same stage on the real
corpus (IEMOCAP 5531 utterances + CASIA 800) from the measured per-utterance cost; the table is kept as
`{run_dir}/dryrun_stages.json` and `.md`.

The notebooks teach each stage (03 the base model, 06 the ASR and text models, 09 the selection); this module
only rearranges their inputs. `bench/gpu_check.sh` runs the same dry run on a GPU.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

from . import repo_root
from .common import SERError, atomic_dir, write_json_atomic, write_text_atomic
from .hub import HUB_CONFIGS, HUB_ID, MODEL_PARAMS, _is_whisper_name, model_refs, recorded_config, count_parameters, _whisper_cached, model_unavailable, preflight_models  # noqa: F401 (dryrun.*)
from .layout import RunLayout

WHISPER_SAMPLE_LEN_ENV = "SER_WHISPER_SAMPLE_LEN"

#: the real corpus (../shared/REFERENCE_RESULTS.md): IEMOCAP 4-class S1-3/S4/S5, CASIA 4-class 2/1/1 speakers
REAL_ROWS = {"iemocap": {"train": 3259, "val": 1031, "test": 1241}, "casia": {"train": 400, "val": 200, "test": 200}}
#: mean IEMOCAP utterance length with clips cut at 15 s (6.99 h / 5531, the 78 clips over 15 s cut): seconds
REAL_MEAN_SEC_CAPPED = 4.49

#: dry-run settings (keyword arguments of run_dry_run)
DEFAULTS = {"max_steps": 2, "max_samples": 6, "whisper_sample_len": 24, "corpus_size": "dryrun",
            "long_clip_sec": 16.5}


# ----------------------------------------------------------------------------- stand-in builders
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
    if mtype == "openai-whisper":
        from .asr import make_tiny_whisper_checkpoint
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
        info = {"path": str(path), "parameters": n, "kind": "whisper", "dims": d}
    elif mtype == "wav2vec2":
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
        info = {"path": str(dest), "parameters": n, "kind": "wav2vec2"}
    elif mtype in ("roberta", "bert"):
        import tempfile

        from transformers import AutoConfig, AutoModelForSequenceClassification
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
        info = {"path": str(dest), "parameters": n, "kind": "text",
                "id2label": {str(k): v for k, v in model.config.id2label.items()}}
    else:
        raise SERError(f"{model_id}: no stand-in builder for model_type {mtype!r}")
    info["stamp"] = stamp
    write_json_atomic(info_path, info)
    return info


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


# ----------------------------------------------------------------------------- memory monitor
class PeakRSS:
    """Polls this process's descendants (the notebook kernel and its workers) in a thread: the peak of their summed
    RSS, and their CPU seconds (user + system; on a shared machine a better measure of the work than wall time)."""

    def __init__(self, interval: float = 0.25):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_sec(self) -> float:
        return float(sum(self._cpu.values()))

    def _sample(self) -> int:
        import psutil
        total = 0
        for child in psutil.Process().children(recursive=True):
            try:
                total += child.memory_info().rss
                t = child.cpu_times()
                self._cpu[child.pid] = t.user + t.system + t.children_user + t.children_system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------- the derived profile
def dry_run_plan(profile, standins: dict, settings: dict) -> tuple[list[dict], list[dict]]:
    """(stages, overrides): the profile's stages with the dry-run overrides applied, a corpus stage first when the
    profile has none; overrides = [{stage, param, real, dry_run, why}]."""
    stages, overrides = [], []

    def override(stage, params, key, value, why):
        overrides.append({"stage": stage.name, "param": key, "real": params.get(key, "(notebook default)"),
                          "dry_run": value, "why": why})
        params[key] = value

    if not any(s.notebook.startswith("00") for s in profile.stages):
        stages.append({"notebook": "00_make_demo_corpus", "name": "corpus",
                       "parameters": {"corpus_size": settings["corpus_size"], "seed": 0}})
        overrides.append({"stage": "corpus", "param": "(stage added)", "real": "(none: real data)",
                          "dry_run": f"corpus_size={settings['corpus_size']}",
                          "why": "generated corpus in the raw IEMOCAP and CASIA layouts instead of the real data"})
    for stage in profile.stages:
        params = dict(stage.parameters)
        nb = stage.notebook
        for key in ("raw_dir", "casia_dir"):
            if params.get(key):
                override(stage, params, key, "", "the generated corpus ({run_dir}/corpus) instead of " + str(params[key]))
        for ref in model_refs(type(profile)(profile.run_name, {}, [stage])):
            override(stage, params, ref["param"], standins[ref["id"]]["path"],
                     f"random-init stand-in with the architecture of {ref['id']} (configs/hub_configs)")
        if nb.startswith("03"):
            override(stage, params, "max_steps", settings["max_steps"],
                     "a few optimisation steps (each one batch_size x gradient_accumulation clips)")
        if nb.startswith("06"):
            if settings["max_samples"]:  # each row costs a Whisper-small 30 s window
                override(stage, params, "max_samples", settings["max_samples"],
                         "rows per split (18 Whisper-small 30 s windows instead of 33; with seed 42 every split "
                         "keeps all four labels)")
            overrides.append({"stage": stage.name, "param": f"(env) {WHISPER_SAMPLE_LEN_ENV}", "real": "(unset: 224)",
                              "dry_run": settings["whisper_sample_len"],
                              "why": "Whisper tokens per 30 s window: a random-init decoder never stops early"})
            override(stage, params, "audio_model_kind", "wav2vec2",
                     "the real run's pretrained wav2vec2 wins `auto` on val; a 2-step random-init one would not")
        stages.append({"notebook": nb, "name": stage.name, "parameters": params})
    return stages, overrides


def lengthen_clips(corpus_dir: Path, seconds: float) -> list[str]:
    """Tile the first 4-class IEMOCAP clip of Sessions 1, 4 and 5 (train, val, test) to `seconds` (idempotent)."""
    import numpy as np
    import soundfile as sf

    from .synth import read_corpus_table
    labelled = any((corpus_dir / "iemocap_raw").glob("Session*/dialog/EmoEvaluation/*.txt"))
    table = read_corpus_table(corpus_dir) if labelled else None
    kept = table[(table["language"] == "en") & table["label4"].notna()] if table is not None else None
    done = []
    for session in ("Session1", "Session4", "Session5"):
        wavs = sorted(kept[kept["group"] == session]["path"]) if kept is not None else []
        if not wavs:  # a corpus without EmoEvaluation labels: any clip of the session
            wavs = sorted((corpus_dir / "iemocap_raw" / session / "sentences" / "wav").glob("*/*.wav"))
        if not wavs:
            raise SERError(f"{corpus_dir}: no IEMOCAP-layout clips in {session}")
        path = Path(wavs[0])
        wave, sr = sf.read(path, dtype="float32")
        if len(wave) < seconds * sr:
            gap = np.zeros(int(0.3 * sr), dtype=np.float32)
            reps = int(np.ceil(seconds * sr / (len(wave) + len(gap))))
            long = np.concatenate([np.concatenate([wave, gap])] * reps)[: int(seconds * sr)]
            tmp = path.with_suffix(".tmp.wav")
            sf.write(tmp, long, sr)
            os.replace(tmp, path)
        done.append(str(path.relative_to(corpus_dir)))
    return done


# ----------------------------------------------------------------------------- checks
def _injected(nb_path: Path) -> dict:
    import nbformat
    nb = nbformat.read(str(nb_path), as_version=4)
    out = {}
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def _code_outside_parameters(nb_path: Path) -> str:
    import nbformat
    nb = nbformat.read(str(nb_path), as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code"
                     and not {"parameters", "injected-parameters"} & set(c.metadata.get("tags", [])))


def _config_fields_read_from_globals(code: str) -> set[str]:
    """Parameters a notebook hands to a stage config in one call (`TrainConfig.from_params(globals())`,
    `FeaturesConfig.from_params(globals(), ...)`, `FusionConfig.params_in(globals())`): every field of that config
    counts as used."""
    import dataclasses
    from .acoustic import TrainConfig
    from .baseline import BaselineConfig
    from .evaluate import EvaluateConfig
    from .features import FeaturesConfig
    from .fusion import FusionConfig
    configs = {c.__name__: c for c in (TrainConfig, EvaluateConfig, BaselineConfig, FeaturesConfig, FusionConfig)}
    used: set[str] = set()
    for name in re.findall(r"\b(\w+)\.(?:from_params|params_in)\(\s*globals\(\)", code):
        if name in configs:
            used |= {f.name for f in dataclasses.fields(configs[name])}
    return used


def _outputs_text(nb_path: Path) -> str:
    import nbformat
    nb = nbformat.read(str(nb_path), as_version=4)
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts.append(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"]))
            if o.get("output_type") == "error":
                parts.append(f"[cell error] {o.get('ename')}: {o.get('evalue')}")
    return "\n".join(parts)


def run_checks(run_dir: Path, profile, stages: list[dict], executed: dict, standins: dict, refs: list[dict]) -> list[dict]:
    import pandas as pd
    checks = []

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    # 1. every profile parameter reaches its notebook with its value, and the notebook's code uses it
    missing, unused = [], []
    for st in stages:
        nb = executed.get(st["name"])
        got = _injected(nb) if nb else {}
        code = _code_outside_parameters(nb) if nb else ""
        via_config = _config_fields_read_from_globals(code)
        for key, value in st["parameters"].items():
            if got.get(key, object()) != value:
                missing.append(f"{st['name']}.{key}")
            if key not in via_config and not re.search(rf"\b{re.escape(key)}\b", code):
                unused.append(f"{st['name']}.{key}")
    n_params = sum(len(s.parameters) for s in profile.stages)
    check("every profile parameter reaches its notebook", not missing and not unused,
          f"{n_params} profile parameters in {len(profile.stages)} stages injected with their values and used by "
          f"the notebook code" if not (missing or unused) else f"not injected: {missing}; never used: {unused}")

    # 2. clips over max_duration_sec in every split, and training/evaluation cropped them
    run = RunLayout(run_dir)
    man = run.manifest("multilingual_4class")
    longs = {s: int((pd.read_csv(man / f"{s}.csv")["duration_sec"] > 15.0).sum()) for s in ("train", "val", "test")}
    train_rep = run.audio_model("multilingual") / "train_report.json"
    rep = json.loads(train_rep.read_text()) if train_rep.exists() else {}
    cfg = rep.get("config", {})
    check("clips over 15 s are cropped at max_duration_sec 15", all(longs.values()) and
          float(cfg.get("max_duration_sec", 0)) == 15.0 and rep.get("test_metrics") is not None,
          f"clips > 15 s per split {longs}; train max_duration_sec={cfg.get('max_duration_sec')}, "
          f"global_step={rep.get('global_step')}, test scored: {rep.get('test_metrics') is not None}")

    # 3. fp16 / cuda requested without CUDA: a warning, not a crash
    import torch
    txt03 = _outputs_text(executed["train_audio"]) if "train_audio" in executed else ""
    if torch.cuda.is_available():
        check("fp16 on the GPU", cfg.get("fp16") is True, f"train_report fp16={cfg.get('fp16')}")
    else:
        ok = "requested on a CPU: ignored" in txt03 and "CUDA is not available" in txt03 and "[cell error]" not in txt03
        check("fp16/cuda without CUDA gives a clear message, not a crash", ok,
              "notebook 03 warned: " + "; ".join(line.strip() for line in txt03.splitlines()
                                                  if "CUDA" in line or "fp16" in line)[:400])

    # 4. the selection ran on val
    sel = run.fusion_models / "model_selection_exp01.json"
    sel_on = json.loads(sel.read_text()).get("select_on") if sel.exists() else None
    want = next((s["parameters"].get("select_on") for s in stages if s["notebook"].startswith("09")), None)
    check("the selection ran on val", sel_on == want == "val", f"{sel.name}: select_on={sel_on!r} (profile: {want!r})")

    # 5. the report
    report = run.report
    check("the report is written", report.exists() and report.stat().st_size > 500,
          f"{report} ({report.stat().st_size if report.exists() else 0} bytes)")

    # 6. stand-ins: same architecture as recorded; sentiment labels map as with the real models
    from .text import TextClassifier
    bad = []
    for ref in refs:
        want_arch, got_arch = architecture_summary(ref["id"]), loaded_architecture(standins[ref["id"]])
        diff = {k: (v, got_arch.get(k)) for k, v in want_arch.items() if got_arch.get(k) != v}
        if diff:
            bad.append(f"{ref['id']}: {diff}")
    check("every hub id has a stand-in with its recorded architecture", not bad,
          "; ".join(bad) or ", ".join(f"{r['id']} ({standins[r['id']]['parameters'] / 1e6:.1f} M)" for r in refs))
    maps = {}
    for ref in refs:
        if ref["kind"] == "text":
            clf = TextClassifier.load(standins[ref["id"]]["path"], device="cpu")
            maps[ref["id"]] = dict(zip(clf.raw_labels, clf.sentiment_map))
    feats = run.features_csv("val")
    cols = list(pd.read_csv(feats, nrows=1).columns) if feats.exists() else []
    ok = all(m and None not in m.values() and {"negative", "positive"} <= set(m.values()) for m in maps.values()) \
        and {"text_negative", "text_neutral", "text_positive"} <= set(cols)
    check("the real sentiment labels map to negative/neutral/positive", ok, json.dumps(maps, ensure_ascii=False))
    return checks


# ----------------------------------------------------------------------------- cost model
def _rows(run_dir: Path, name: str) -> dict:
    import pandas as pd
    d = RunLayout(run_dir).manifest(name)
    out = {}
    for s in ("train", "val", "test"):
        p = d / f"{s}.csv"
        if p.exists():
            df = pd.read_csv(p)
            out[s] = (len(df), float(df["duration_sec"].clip(upper=15.0).mean()) if len(df) else 0.0)
    return out


def _feature_rows(summary: Path) -> int:
    rows = json.loads(summary.read_text()).get("rows", {}) if summary.exists() else {}
    return int(sum(sum(v.values()) if isinstance(v, dict) else v for v in rows.values()))


def stage_work(run_dir: Path, stage: dict) -> tuple[float, float, str] | None:
    """(dry-run work, real-corpus work, unit) of a stage, or None when it does not scale with the corpus.
    Audio work is in audio-seconds (cut at 15 s) of forward passes; a training pass counts 3 (forward+backward)."""
    nb, p = stage["notebook"][:2], stage["parameters"]
    run = RunLayout(run_dir)
    real = {s: REAL_ROWS["iemocap"][s] + REAL_ROWS["casia"][s] for s in ("train", "val", "test")}
    real_all = sum(real.values())
    if nb == "01":
        r = _rows(run_dir, "iemocap_4class")
        return sum(n for n, _ in r.values()), sum(REAL_ROWS["iemocap"].values()), "utterances"
    if nb == "02":
        r = _rows(run_dir, "multilingual_4class")
        return sum(n for n, _ in r.values()), real_all, "utterances"
    r = _rows(run_dir, "multilingual_4class")
    if not r:
        return None
    mean = {s: d for s, (_, d) in r.items()}
    if nb == "03":
        rep = json.loads((run.audio_model("multilingual") / "train_report.json").read_text())
        per_step = int(p.get("batch_size", 8)) * int(p.get("gradient_accumulation", 1))
        n_eval = max(1, len(rep.get("history", [])))
        dry = 3 * rep["global_step"] * per_step * mean["train"] + n_eval * r["val"][0] * mean["val"] \
            + r["test"][0] * mean["test"]
        epochs = float(p.get("epochs", 8))
        real_w = (3 * epochs * real["train"] + epochs * real["val"] + real["test"]) * REAL_MEAN_SEC_CAPPED
        return dry, real_w, f"audio-s passes (train x3; {epochs:g} epochs, no early stop)"
    if nb == "04":
        return sum(n * d for n, d in r.values()), real_all * REAL_MEAN_SEC_CAPPED, "audio-s (eval + baseline)"
    if nb == "06":
        f = run.features / "summary.json"
        n = _feature_rows(f)
        return (n or None), real_all, "utterances (Whisper 30 s window + audio + 2 text models each)"
    if nb in ("07", "08"):  # small networks on feature rows: mostly fixed cost, so the linear estimate is high
        f = run.features / "summary.json"
        n = _feature_rows(f)
        return (n or None), real_all, "feature rows"
    return None  # 00 (not in a real run), 05 and 10 (a fixed number of clips), 09 (ranks a few candidates)


def estimate(wall: float, overhead: float, work: tuple | None) -> tuple[float | None, float | None]:
    """(ratio, estimated seconds): overhead + (wall - overhead) * real/dry; fixed-size stages keep their wall."""
    if work is None:
        return None, wall
    dry, real, _ = work
    if not dry:
        return None, None
    ratio = real / dry
    return ratio, overhead + max(0.0, wall - overhead) * ratio


def kernel_overhead() -> float:
    """CPU seconds to start a Python with the libraries every notebook imports (a stage's fixed cost)."""
    import resource
    import subprocess
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import ser_helpers, torch, transformers, pandas, sklearn"],
                   check=True, cwd=repo_root(), capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _fmt_sec(s) -> str:
    if s is None:
        return "n/a"
    s = float(s)
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def stage_table_md(payload: dict) -> str:
    lines = [f"# Dry run of `{payload['profile']}` ({payload['device']})", "",
             f"{payload['when']}, {payload['host_cpus']} CPU(s), load average {payload.get('load_average')} at "
             f"the end; total wall {_fmt_sec(payload['total_sec'])}, kernels' CPU time "
             f"{_fmt_sec(sum(r.get('cpu_sec') or 0 for r in payload['stages']))} (on a shared machine the wall "
             "time is inflated; on a quiet 2-core one a stage takes between CPU/2 and CPU). "
             "Estimate at full size: the stage's CPU time extrapolated linearly from its measured per-utterance "
             f"cost on THIS machine (kernel start-up {payload['overhead_sec']:.1f} CPU s counted once), so an upper "
             "bound of a quiet 2-core run, to IEMOCAP 5531 + CASIA 800 "
             f"utterances (mean {REAL_MEAN_SEC_CAPPED} s at the 15 s cut); training as if no early stop. "
             "Stages 05, 09 and 10 handle a fixed number of clips or candidates; 07 and 08 are mostly fixed cost "
             "(their linear estimates are upper bounds).", "",
             "| stage | notebook | wall | CPU | peak RSS (MiB) | dry-run work | real work | unit | estimate at full size (CPU) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in payload["stages"]:
        lines.append(f"| {r['stage']} | {r['notebook']} | {_fmt_sec(r['wall_sec'])} | {_fmt_sec(r.get('cpu_sec'))} | "
                     f"{r['peak_rss_mib']:.0f} | "
                     f"{r['work_dry'] if r['work_dry'] is not None else '-'} | "
                     f"{r['work_real'] if r['work_real'] is not None else '-'} | {r['unit']} | "
                     f"{_fmt_sec(r['estimate_sec'])} |")
    lines += ["", f"Estimated full-size total on this machine: {_fmt_sec(payload['estimate_total_sec'])}.", "",
              "## Checks", ""]
    lines += [f"- {'PASS' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}" for c in payload["checks"]]
    lines += ["", "## What the dry run changed (everything else is the profile's)", "",
              "| stage | parameter | real run | dry run | why |", "|---|---|---|---|---|"]
    lines += [f"| {o['stage']} | {o['param']} | `{o['real']}` | `{o['dry_run']}` | {o['why']} |"
              for o in payload["overrides"]]
    lines += ["", "## Stand-ins", ""]
    lines += [f"- `{k}`: {v['parameters'] / 1e6:.1f} M parameters, {v['path']}" for k, v in payload["standins"].items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the run
def run_dry_run(profile: str | os.PathLike, run_dir: str | os.PathLike | None = None, quiet: bool = False,
                resume: bool = False, **settings) -> dict:
    """Run the dry run of `profile`; returns the stage-table payload (also written to run_dir). Raises SERError
    naming the failed checks, after writing the table, when a check fails. `resume`: keep the stages an
    interrupted dry run in the same run_dir finished (development; their timings are kept as measured)."""
    import torch
    import yaml

    from .pipeline import load_profile, run_pipeline
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise SERError(f"unknown dry-run settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    settings = {**DEFAULTS, **settings}
    prof = load_profile(profile)
    root = repo_root()
    run_dir = Path(run_dir) if run_dir else Path("outputs") / f"{prof.run_name}_dryrun"
    run_abs = run_dir if run_dir.is_absolute() else root / run_dir
    run_abs.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ[WHISPER_SAMPLE_LEN_ENV] = str(int(settings["whisper_sample_len"]))
    t_all = time.perf_counter()

    refs = model_refs(prof)
    stages_probe, _ = dry_run_plan(prof, {r["id"]: {"path": "?"} for r in refs}, settings)
    # 1) the corpus first (its transcripts train the stand-in tokenizers), then the stand-ins
    table, executed = [], {}
    overhead = kernel_overhead()
    derived = run_abs / "dryrun_profile.yaml"

    def write_profile(stages):
        write_text_atomic(derived, "# written by ser_helpers.dryrun from " + str(prof.path) + "\n"
                          + yaml.safe_dump({"run_name": f"{prof.run_name}_dryrun", "shared": prof.shared,
                                            "stages": stages}, sort_keys=False, allow_unicode=True))

    partial = run_abs / "dryrun_stages.partial.json"
    done = {}
    if resume and partial.exists():  # stages finished by an interrupted dry run of the same plan are kept
        done = {r["stage"]: r for r in json.loads(partial.read_text())}

    def run_stage(st):
        nb_done = RunLayout(run_abs).notebooks / f"{st['notebook'][:2]}_{st['name']}.ipynb"
        if st["name"] in done and nb_done.exists():
            table.append(done[st["name"]])
            executed[st["name"]] = nb_done
            say(f"[dry run] {st['name']}: kept from the interrupted run ({done[st['name']]['wall_sec']} s)")
            return
        say(f"[dry run] {st['name']} ({st['notebook']}) ...")
        with PeakRSS() as mon:
            t0 = time.perf_counter()
            res = run_pipeline(derived, only=[st["name"]], run_dir=run_dir, quiet=True)
            wall = time.perf_counter() - t0
        executed[st["name"]] = res.executed[0]
        table.append({"stage": st["name"], "notebook": st["notebook"], "wall_sec": round(wall, 1),
                      "cpu_sec": round(mon.cpu_sec, 1), "peak_rss_mib": round(mon.peak / 2**20, 1)})
        write_json_atomic(partial, table)
        say(f"[dry run] {st['name']}: {wall:.1f} s wall, {mon.cpu_sec:.0f} CPU s, peak RSS {mon.peak / 2**20:.0f} MiB")

    corpus_stages = [s for s in stages_probe if s["notebook"].startswith("00")]
    write_profile(stages_probe)
    for st in corpus_stages:
        run_stage(st)
    corpus = RunLayout(run_abs).corpus
    longs = lengthen_clips(corpus, settings["long_clip_sec"])
    from .synth import read_corpus_table
    texts = [str(t) for t in read_corpus_table(corpus)["text"].tolist()]
    t0 = time.perf_counter()
    standins = {}
    for ref in refs:
        if ref["id"] not in standins:
            say(f"[dry run] stand-in for {ref['id']} ...")
            standins[ref["id"]] = build_standin(ref["id"], run_abs / "standins" / ref["id"].replace("/", "__"),
                                                texts=texts)
    standin_sec = time.perf_counter() - t0
    say(f"[dry run] stand-ins ready in {standin_sec:.0f} s")
    stages, overrides = dry_run_plan(prof, standins, settings)
    write_profile(stages)
    for st in stages:
        if st["notebook"].startswith("00"):
            continue
        run_stage(st)

    checks = run_checks(run_abs, prof, stages, executed, standins, refs)
    by_name = {s["name"]: s for s in stages}
    for row in table:
        work = stage_work(run_abs, by_name[row["stage"]]) if not row["notebook"].startswith("00") else None
        # CPU seconds, not wall: on a shared machine the wall time measures the neighbours too
        ratio, est = estimate(row.get("cpu_sec") or row["wall_sec"], overhead, work)
        row.update({"work_dry": round(work[0], 1) if work and work[0] else None,
                    "work_real": round(work[1], 1) if work else None,
                    "unit": work[2] if work else ("not in a real run" if row["notebook"].startswith("00")
                                                   else "fixed size"),
                    "estimate_sec": None if row["notebook"].startswith("00") else (round(est, 1) if est else None)})
    total = max(time.perf_counter() - t_all, sum(r["wall_sec"] for r in table) + standin_sec)  # resumed: the stages
    payload = {"profile": str(prof.path), "run_dir": str(run_dir),
               "device": (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"),
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host_cpus": os.cpu_count(),
               "load_average": [round(x, 1) for x in os.getloadavg()],
               "settings": settings, "overhead_sec": round(overhead, 2), "standin_build_sec": round(standin_sec, 1),
               "total_sec": round(total, 1), "stages": table,
               "estimate_total_sec": round(sum(r["estimate_sec"] or 0 for r in table), 1),
               "checks": checks, "overrides": overrides, "lengthened_clips": longs,
               "standins": {k: {kk: vv for kk, vv in v.items() if kk != "stamp"} for k, v in standins.items()}}
    write_json_atomic(run_abs / "dryrun_stages.json", payload)
    md = stage_table_md(payload)
    write_text_atomic(run_abs / "dryrun_stages.md", md)
    if not quiet:
        print(md)
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise SERError("dry run: failed check(s): " + " | ".join(f"{c['check']}: {c['detail']}" for c in failed)
                       + f" (table: {run_abs / 'dryrun_stages.md'})")
    return payload


# ----------------------------------------------------------------------------- hub verification (online only)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ser_helpers.dryrun", description=__doc__.split("\n")[0])
    p.add_argument("--profile", default="configs/gpu_iemocap.yaml")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--verify-hub", action="store_true", help="compare configs/hub_configs with the hub (online)")
    p.add_argument("--resume", action="store_true", help="keep the stages an interrupted dry run finished")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = p.parse_args(argv)
    if args.verify_hub:
        diffs = verify_hub()
        print("\n".join(diffs) or "recorded configs match the hub")
        return 1 if diffs else 0
    run_dry_run(args.profile, run_dir=args.run_dir, resume=args.resume, **{k: getattr(args, k) for k in DEFAULTS})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
