"""The one audio loader: formats that must load, and every bad-input case with a clear error."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from ser_helpers.audio import AudioError, check_audio_files, decode_audio, load_audio, prepare_array


def tone(sr, seconds=1.0, freq=440.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "FLOAT"])
def test_wav_bit_depths_load_as_float32_16k(tmp_path, subtype):
    path = tmp_path / f"x_{subtype}.wav"
    sf.write(path, tone(22050), 22050, subtype=subtype)
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 16000) <= 2
    assert 0.4 < np.max(np.abs(out)) < 0.6  # amplitude preserved (8-bit unsigned centred)


def test_48k_stereo_downmixed_and_resampled(tmp_path):
    left, right = tone(48000, 2.0, 300), tone(48000, 2.0, 300) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype="PCM_16")
    out = load_audio(path)
    assert abs(len(out) - 32000) <= 2
    assert 0.3 < np.max(np.abs(out)) < 0.45  # mean of the channels: 0.375


@pytest.mark.parametrize("fmt,ext", [("FLAC", "flac"), ("OGG", "ogg")])
def test_flac_and_ogg(tmp_path, fmt, ext):
    path = tmp_path / f"x.{ext}"
    sf.write(path, tone(16000), 16000, format=fmt)
    assert abs(len(load_audio(path)) - 16000) <= 2


def test_unknown_riff_chunks_are_skipped(tmp_path):
    path = tmp_path / "plain.wav"
    sf.write(path, tone(16000), 16000, subtype="PCM_16")
    raw = path.read_bytes()
    # insert a LIST chunk and a custom chunk between 'fmt ' and 'data' (as RAVDESS/recorders do)
    idx = raw.index(b"data")
    info = b"INFO" + b"ICMT" + struct.pack("<I", 4) + b"test"
    extra = b"LIST" + struct.pack("<I", len(info)) + info + b"junk" + struct.pack("<I", 4) + b"\x00" * 4
    body = raw[12:idx] + extra + raw[idx:]
    patched = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
    out_path = tmp_path / "chunks.wav"
    out_path.write_bytes(patched)
    np.testing.assert_allclose(load_audio(out_path), load_audio(path), atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found") as exc:
        load_audio(tmp_path / "nope.wav")
    assert "nope.wav" in str(exc.value)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 3)
    with pytest.raises(AudioError, match="cannot decode") as exc:
        load_audio(path)
    assert "corrupt.wav" in str(exc.value)


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is text, not audio")
    with pytest.raises(AudioError, match="cannot decode"):
        load_audio(path)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(path)


def test_silent_audio(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="silent") as exc:
        load_audio(path)
    assert "silent.wav" in str(exc.value)
    assert len(load_audio(path, allow_silent=True)) == 16000


def test_check_audio_files_decodes_and_lists_every_bad_row(tmp_path):
    """The manifest check of training and evaluation decodes: a silent clip (its header is fine) is refused
    before any model loads, with every bad row in one error; good clips give their decoded durations."""
    sf.write(tmp_path / "ok.wav", tone(8000, 0.5), 8000)
    sf.write(tmp_path / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    assert check_audio_files([str(tmp_path / "ok.wav")], "m.csv") == [pytest.approx(0.5)]
    paths = [str(tmp_path / "ok.wav"), str(tmp_path / "silent.wav"), "", str(tmp_path / "gone.wav")]
    with pytest.raises(AudioError) as exc:
        check_audio_files(paths, "m.csv")
    msg = str(exc.value)
    assert msg.startswith("3 bad audio file(s) in m.csv")
    assert "m.csv row 3: " in msg and "silent.wav: audio is silent" in msg
    assert "m.csv row 4: empty 'path'" in msg and "m.csv row 5: " in msg and "gone.wav: file not found" in msg


def test_nan_audio(tmp_path):
    path = tmp_path / "nan.wav"
    data = tone(16000)
    data[100] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path)


def test_too_long_audio(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(8000, 5.0), 8000)
    with pytest.raises(AudioError, match="over the limit"):
        load_audio(path, max_duration_sec=3.0)
    assert len(load_audio(path, max_duration_sec=10.0)) == 80000


def test_decode_bytes_matches_file(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(44100, 1.5), 44100, subtype="PCM_16")
    np.testing.assert_allclose(decode_audio(path.read_bytes(), "a.wav"), load_audio(path), atol=1e-7)
    with pytest.raises(AudioError, match="upload.bin: cannot decode"):
        decode_audio(b"\x00\x01garbage" * 10, "upload.bin")
    with pytest.raises(AudioError, match="empty"):
        decode_audio(b"", "x.wav")


def test_prepare_array_microphone_int16_stereo():
    # Gradio's microphone: (sample_rate, int16 array of shape (frames, 2)) at 48 kHz
    stereo = (np.stack([tone(48000), tone(48000)], axis=1) * 32767).astype(np.int16)
    out = prepare_array(stereo, 48000, "mic")
    assert out.dtype == np.float32 and abs(len(out) - 16000) <= 2
    assert 0.45 < np.max(np.abs(out)) < 0.55
    with pytest.raises(AudioError, match="silent"):
        prepare_array(np.zeros((48000, 2), np.int16), 48000, "mic")
