"""Bench: the bundled Whisper tiny.en (faster-whisper) clip by clip vs PACKED (several clips per 30 s window),
seconds per clip and WER against the manifest's reference transcripts, side by side; optionally openai-whisper
on a converted checkpoint (`--openai-checkpoint file.pt`).

    .venv/bin/python bench/bench_asr_packed.py --manifest outputs/cpu/manifests/multilingual_4class/test.csv \
        [--n 60] [--compute-type int8] [--beam-size 5] [--threads 2] [--modes per_clip,packed]

English rows only (tiny.en is English-only). Prints one row per mode and the packed/per-clip ratios.
Timings on a shared machine are noisy: say so when you quote them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def hf_to_openai_checkpoint(hf_dir: str, out_pt: str) -> str:
    """A Hugging Face WhisperForConditionalGeneration dir (e.g. weights.bundled_hf_whisper_dir(), converted from the
    bundled CTranslate2 weights) -> an openai-whisper checkpoint file (the reverse of transformers'
    convert_openai_to_hf key map)."""
    import torch
    from safetensors.torch import load_file
    cfg = json.loads((Path(hf_dir) / "config.json").read_text())
    state = load_file(str(Path(hf_dir) / "model.safetensors"))
    subs = [("model.", ""), ("layers", "blocks"), ("fc1", "mlp.0"), ("fc2", "mlp.2"),
            ("final_layer_norm", "mlp_ln"), ("self_attn_layer_norm", "attn_ln"),
            ("encoder_attn_layer_norm", "cross_attn_ln"), (".self_attn.q_proj", ".attn.query"),
            (".self_attn.k_proj", ".attn.key"), (".self_attn.v_proj", ".attn.value"),
            (".self_attn.out_proj", ".attn.out"), (".encoder_attn.q_proj", ".cross_attn.query"),
            (".encoder_attn.k_proj", ".cross_attn.key"), (".encoder_attn.v_proj", ".cross_attn.value"),
            (".encoder_attn.out_proj", ".cross_attn.out"), ("encoder.layer_norm", "encoder.ln_post"),
            ("decoder.layer_norm", "decoder.ln"), ("embed_positions.weight", "positional_embedding"),
            ("embed_tokens", "token_embedding")]
    out = {}
    for k, v in state.items():
        if k.startswith("proj_out"):
            continue
        for a, b in subs:
            k = k.replace(a, b)
        out[k] = v.float()
    dims = {"n_mels": cfg["num_mel_bins"], "n_vocab": cfg["vocab_size"], "n_audio_ctx": cfg["max_source_positions"],
            "n_audio_state": cfg["d_model"], "n_audio_head": cfg["encoder_attention_heads"],
            "n_audio_layer": cfg["encoder_layers"], "n_text_ctx": cfg["max_target_positions"],
            "n_text_state": cfg["d_model"], "n_text_head": cfg["decoder_attention_heads"],
            "n_text_layer": cfg["decoder_layers"]}
    torch.save({"dims": dims, "model_state_dict": out}, out_pt)
    return out_pt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--n", type=int, default=60, help="English rows (first n; 0 = all)")
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="per_clip,packed")
    ap.add_argument("--openai-checkpoint", default="", help="openai-whisper .pt converted from the same weights")
    ap.add_argument("--openai-from-hf", default="", help="a HF Whisper dir converted from the bundled weights "
                    "(weights.bundled_hf_whisper_dir()): converted here to an openai-whisper .pt")
    ap.add_argument("--json", default="", help="write the rows here too")
    args = ap.parse_args(argv)

    from ser_helpers.asr import FasterWhisperTranscriber, WhisperTranscriber, wer
    from ser_helpers.audio import load_audio
    from ser_helpers.common import read_manifest

    df = read_manifest(args.manifest)
    df = df[df["language"].fillna("en") == "en"]
    if args.n > 0:
        df = df.head(args.n)
    audios = [load_audio(p, sample_rate=16000) for p in df["path"]]
    refs = df["transcript"].fillna("").astype(str).tolist()
    langs = ["en"] * len(audios)
    total_audio = sum(a.size for a in audios) / 16000
    print(f"{len(audios)} English clips, {total_audio:.1f} s of audio (mean {total_audio / len(audios):.2f} s)")
    rows = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        tr = FasterWhisperTranscriber("tiny.en", compute_type=args.compute_type, cpu_threads=args.threads,
                                      beam_size=args.beam_size, pack=(mode == "packed"))
        _ = tr.model
        tr.transcribe(audios[0][:16000], "en")  # warm-up
        t = time.perf_counter()
        hyps = tr.transcribe_batch(audios, langs)
        dt = time.perf_counter() - t
        w = wer(refs, hyps)
        w_keep = wer(refs, hyps, numbers="keep")
        rows.append({"engine": "faster-whisper", "mode": mode, "compute_type": tr.compute_type,
                     "beam_size": args.beam_size, "n": len(audios), "sec": round(dt, 2),
                     "sec_per_clip": round(dt / len(audios), 3), "wer": round(w["wer"], 4),
                     "wer_numbers_kept": round(w_keep["wer"], 4), "exact": w["exact"],
                     "retried": tr.stats.get("retried", 0)})
        print(json.dumps(rows[-1]), flush=True)
    if args.openai_from_hf and not args.openai_checkpoint:
        import tempfile
        args.openai_checkpoint = hf_to_openai_checkpoint(args.openai_from_hf,
                                                         str(Path(tempfile.mkdtemp()) / "tiny_en_openai.pt"))
    if args.openai_checkpoint:
        tr = WhisperTranscriber(args.openai_checkpoint, cpu_threads=args.threads)
        _ = tr.model
        tr.transcribe(audios[0][:16000], "en")
        t = time.perf_counter()
        hyps = [tr.transcribe(a, "en") for a in audios]
        dt = time.perf_counter() - t
        w = wer(refs, hyps)
        rows.append({"engine": "openai-whisper", "mode": "per_clip", "compute_type": "float32", "beam_size": 1,
                     "n": len(audios), "sec": round(dt, 2), "sec_per_clip": round(dt / len(audios), 3),
                     "wer": round(w["wer"], 4), "exact": w["exact"]})
        print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["mode"] == "per_clip" and r["engine"] == "faster-whisper"), None)
    for r in rows:
        if base and r is not base:
            print(f"{r['engine']} {r['mode']}: {base['sec'] / r['sec']:.2f}x faster than faster-whisper per_clip, "
                  f"WER {r['wer']:.3f} vs {base['wer']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
