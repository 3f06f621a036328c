"""FeaturesConfig: every setting of `build_fusion_features` and its default, written once (flags, notebook, library).

Taught in notebook 06 (06_build_fusion_features.ipynb).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..common import MAX_DURATION_SEC, SAMPLE_RATE, SCORING_BATCH_SIZE, SERError, StageConfig
from .columns import normalize_language

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class FeaturesConfig(StageConfig):
    """Settings of one `build_fusion_features` run, each default written once, here: the `ser build-fusion-features`
    flags are generated from these fields (`common.add_dataclass_flags`), and notebook 06
    (06_build_fusion_features.ipynb) builds one with `FeaturesConfig.from_params(globals(), ...)`. The manifests and
    the output dir are arguments of the call, not settings."""
    audio_model_en: str = ""
    audio_model_zh: str = ""
    text_model_en: str = ""
    text_model_zh: str = ""
    sample_rate: int = SAMPLE_RATE
    audio_device: str = field(default="auto", metadata={"choices": DEVICES})
    text_device: str = field(default="auto", metadata={"choices": DEVICES})
    default_language: str = field(default="en", metadata={"choices": ("en", "zh")})
    skip_asr: bool = False
    whisper_model: str = field(default="small", metadata={
        "help": "tiny.en (the bundled weights), a model size, a CTranslate2 dir (faster-whisper) or a .pt checkpoint "
                "file (openai-whisper)"})
    whisper_device: str = field(default="cpu", metadata={"choices": ("cpu", "cuda")})
    whisper_compute_type: str = field(default="", metadata={
        "help": "faster-whisper's: int8 | float32 | float16 | int8_float16 ...; default int8 on cpu, float16 on CUDA "
                "(openai-whisper: float16 = fp16 on CUDA, int8 runs as float32)"})
    whisper_cpu_threads: int = 8
    whisper_num_workers: int = field(default=1, metadata={
        "help": "faster-whisper's num_workers: windows of packed clips decoded at once, each worker with "
                "--whisper-cpu-threads threads (2 cores: 2 workers x 1 thread decode 2x faster than 1 x 2)"})
    asr_cache_json: str = field(default="", metadata={"help": "default: <output-dir>/asr_cache.json"})
    retry_empty_cache: bool = False
    max_samples: int = field(default=0, metadata={"help": "rows per split (0 = all)"})
    asr_backend: str = field(default="whisper", metadata={
        "choices": ("whisper", "reference"),
        "help": "reference = the manifest's transcript column (ORACLE transcripts)"})
    text4_head: str = field(default="tfidf", metadata={"help": "tfidf | none | a 4-class text-emotion model dir"})
    seed: int = 42
    batch_size: int = SCORING_BATCH_SIZE
    max_duration_sec: float = MAX_DURATION_SEC
    # folds of the text4 head's out-of-fold scores on train rows
    oof_folds: int = field(default=5, metadata={"cli": False})
    allow_split_overlap: bool = field(default=False, metadata={"cli": False})  # common.add_split_overlap_flag

    @property
    def transcript_source(self) -> str:
        """Where the transcripts come from: "none" with skip_asr, else asr_backend (whisper | reference)."""
        return "none" if self.skip_asr else self.asr_backend

    def normalized(self) -> "FeaturesConfig":
        """A copy in canonical form (default_language 'en'/'zh', asr_backend lower-case, text4_head stripped, empty
        ones their defaults); a clear SERError for a setting out of range."""
        if int(self.sample_rate) != SAMPLE_RATE:
            raise SERError(f"--sample-rate {self.sample_rate}: the audio models and Whisper take {SAMPLE_RATE} Hz "
                           "audio")
        return replace(self, default_language=normalize_language(self.default_language, "en", "--default-language: "),
                       asr_backend=(self.asr_backend or "whisper").lower(),
                       text4_head=(self.text4_head or "tfidf").strip())
