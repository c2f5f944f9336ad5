"""Run parameters: one YAML file describes a whole study (respondents, sampling, every step's options).

Validated on load so that a typo costs a second, not an afternoon of API calls: an unknown or mistyped key, a wrong
type or an empty respondent list is one clear line naming the field (`UserError`, exit code 2).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import UserError

Training = Literal["pretrained", "instruction-tuned", "aligned"]
DEFAULT_JUDGE = "openai/gpt-4o-mini"  # the LLM judge when `scoring.scorer: llm` names none


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class DecodingConfig(_Strict):
    """One decoding configuration θ: a (model, config) pair is one respondent (paper Sec. 3.2)."""

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)

    def label(self) -> str:
        return f"T{self.temperature:g}-p{self.top_p:g}"


class Respondent(_Strict):
    """A model and the decoding configs it answers under."""

    model: str = Field(min_length=1)
    name: str | None = None
    family: str = "unknown"
    size: float | None = Field(None, gt=0, description="billions of parameters, or null when unknown")
    training: Training
    api_base: str | list[str] | None = None
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    rpm: float | None = Field(None, gt=0, description="requests a minute this endpoint allows; calls are paced "
                              "client-side to stay under it (valuelex_utils.ratelimit)")
    tpm: float | None = Field(None, gt=0, description="tokens a minute (prompt + completion) this endpoint allows")
    configs: list[DecodingConfig] = Field(default_factory=lambda: [DecodingConfig()], min_length=1)

    @field_validator("model")
    @classmethod
    def _model_has_provider(cls, v: str) -> str:
        if "/" not in v:
            raise ValueError(f"model id {v!r} needs a provider prefix such as local/, openai/, ollama/")
        return v

    @property
    def label(self) -> str:
        return self.name or self.model.split("/", 1)[1]

    @property
    def is_chat(self) -> bool:
        return self.training != "pretrained"

    @property
    def api_bases(self) -> list[str]:
        if self.api_base is None:
            return []
        return [self.api_base] if isinstance(self.api_base, str) else list(self.api_base)


class ElicitationParams(_Strict):
    prompts: Literal["all"] | list[int] = "all"
    samples: int = Field(3, ge=1)
    max_tokens: int = Field(96, ge=1)
    base_frame: str = Field(
        "auto",
        description="completion frame for pretrained respondents: 'auto' = the per-prompt first-person frames shipped "
        "in valuelex_utils/data/elicitation_frames.yaml, or a template in which {prompt} is the elicitation prompt",
    )


class ExtractionParams(_Strict):
    llm_judge: str | None = Field(None, description="LiteLLM id that keeps only words naming a value; null = rules only")


class LexiconParams(_Strict):
    min_frequency: int = Field(3, ge=1)
    min_respondents: int = Field(2, ge=1)
    unit: Literal["respondent", "answer"] = Field(
        "respondent", description="rows of matrix.csv: one per respondent (the paper, for studies with hundreds of "
        "respondents) or one per answer (co-occurrence within an answer; for small studies)")


class FactorParams(_Strict):
    k_rule: Literal["parallel", "kaiser"] = "parallel"
    n_factors: int | None = Field(None, ge=1)
    method: Literal["minres", "ml"] = "minres"
    rotation: Literal["oblimin", "promax", "varimax", "none"] = "oblimin"
    corr: Literal["pearson", "tetrachoric"] = "pearson"
    threshold: float = Field(0.30, gt=0, lt=1)
    n_iter: int = Field(100, ge=5)

    def fit_kwargs(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of `factors.fit_factors` for these options."""
        return {"n_factors": self.n_factors, "method": self.method, "rotation": self.rotation, "k_rule": self.k_rule,
                "corr": self.corr, "threshold": self.threshold, "seed": seed, "pa_iter": self.n_iter}


class TaxonomyParams(_Strict):
    namer: str | None = Field(None, description="LiteLLM id that names clusters; null = medoid-word fallback")
    k_min: int = Field(2, ge=2)
    k_max: int = Field(4, ge=2)
    bootstrap: int = Field(20, ge=0)


class ProjectiveParams(_Strict):
    stems: Literal["all"] | list[int] = "all"
    samples: int = Field(2, ge=1)
    max_tokens: int = Field(40, ge=1)
    chat_frame: str = "Complete the sentence: {stem}"


#: `scoring.systems` entries besides paths: the run's own taxonomy from step 04, and the shipped systems.
RUN_SYSTEM = "run"
NAMED_SYSTEMS = (RUN_SYSTEM, "valuelex", "schwartz", "mft")


class ScoringParams(_Strict):
    """`systems`: the value systems steps 06 and 07 score on, the first one leading the report. `run` is the system
    this run reconstructed in step 04 (`<run>/taxonomy.yaml`), `valuelex` the paper's published one, `schwartz` and
    `mft` the human systems, or a path to a taxonomy YAML. The default scores on the run's own system and, beside it,
    the paper's. The older single key `system: NAME` still loads, as `systems: [NAME]`."""

    scorer: Literal["embedding", "llm"] = "embedding"
    judge: str | None = None
    systems: list[str] = Field(default_factory=lambda: [RUN_SYSTEM, "valuelex"], min_length=1)
    n_bootstrap: int = Field(1000, ge=0)
    judge_max_tokens: int = Field(700, ge=16, description="completion tokens of one verdict (reasoning + JSON)")
    judge_reliability_items: int = Field(
        30, ge=0, description="annotated items the LLM judge also scores, to measure its agreement with human labels")


    @model_validator(mode="before")
    @classmethod
    def _single_system(cls, data: Any) -> Any:
        if isinstance(data, dict) and "system" in data:
            if "systems" in data:
                raise ValueError("give either 'system' (one) or 'systems' (a list), not both")
            data = dict(data)
            one = data.pop("system")
            data["systems"] = [one] if isinstance(one, str) else one
        return data

    @field_validator("systems")
    @classmethod
    def _known_systems(cls, v: list[str]) -> list[str]:
        for s in v:
            if not s.strip():
                raise ValueError("a value system name is empty")
            looks_like_path = s.lower().endswith((".yaml", ".yml")) or "/" in s or "\\" in s
            if s not in NAMED_SYSTEMS and not looks_like_path:
                raise ValueError(f"unknown value system {s!r}: use {', '.join(NAMED_SYSTEMS)} or a path to a "
                                 "taxonomy YAML file")
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"value system(s) listed twice: {', '.join(dup)}")
        return v

    @property
    def system(self) -> str:
        """The leading system (what the single `system` key used to be)."""
        return self.systems[0]


class Endpoint(_Strict):
    """Where a model that is not a respondent (a judge, the namer) is served: the same fields as a respondent's."""

    api_base: str | list[str] | None = None
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    rpm: float | None = Field(None, gt=0, description="requests a minute this endpoint allows; calls are paced "
                              "client-side to stay under it (valuelex_utils.ratelimit)")
    tpm: float | None = Field(None, gt=0, description="tokens a minute (prompt + completion) this endpoint allows")

    @property
    def api_bases(self) -> list[str]:
        if self.api_base is None:
            return []
        return [self.api_base] if isinstance(self.api_base, str) else list(self.api_base)


class Params(_Strict):
    """A whole study. Seeds everywhere derive from `seed`."""

    run_name: str = "run"
    seed: int = 0
    concurrency: int = Field(4, ge=1)
    timeout: float = Field(120.0, gt=0)
    retries: int = Field(4, ge=0)
    processes: int = Field(0, ge=0)  # worker processes for remote calls; 0: automatic (see valuelex_utils.shards)
    respondents: list[Respondent] = Field(min_length=1)
    elicitation: ElicitationParams = ElicitationParams()
    extraction: ExtractionParams = ExtractionParams()
    lexicon: LexiconParams = LexiconParams()
    factors: FactorParams = FactorParams()
    taxonomy: TaxonomyParams = TaxonomyParams()
    projective: ProjectiveParams = ProjectiveParams()
    scoring: ScoringParams = ScoringParams()
    endpoints: dict[str, Endpoint] = Field(
        default_factory=dict, description="model id -> api_base / api_key_env, for role models (extraction.llm_judge, "
        "taxonomy.namer, scoring.judge) that are not respondents; a respondent's own settings are used for it")

    @field_validator("endpoints")
    @classmethod
    def _endpoint_ids(cls, v: dict[str, Endpoint]) -> dict[str, Endpoint]:
        for model in v:
            if "/" not in model:
                raise ValueError(f"model id {model!r} needs a provider prefix such as openai/, hosted_vllm/")
        return v

    def role_models(self) -> dict[str, str]:
        """The models in a role other than respondent, by role: extraction judgment, namer, judge."""
        roles = {"extraction.llm_judge": self.extraction.llm_judge, "taxonomy.namer": self.taxonomy.namer,
                 "scoring.judge": (self.scoring.judge or DEFAULT_JUDGE) if self.scoring.scorer == "llm" else None}
        return {role: model for role, model in roles.items() if model}

    @model_validator(mode="after")
    def _unique_labels(self) -> "Params":
        labels = [r.label for r in self.respondents]
        dup = {x for x in labels if labels.count(x) > 1}
        if dup:
            raise ValueError(f"respondent names must be unique; repeated: {sorted(dup)} (set 'name')")
        return self

    def fingerprint(self) -> str:
        """A hash of the study's content, to tell whether a run dir belongs to these params."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{where}' (check the spelling against params/default.yaml)"
    if kind == "missing":
        return f"{source}: missing required key '{where}'"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{source}: bad value for '{where}': {msg}"


def parse_params(data: Any, source: str = "params") -> Params:
    """Validate already-loaded YAML data."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_error(err, source)) from None


def read_yaml_text(path: str | Path, what: str = "file") -> tuple[Any, str]:
    """(data, text) of a UTF-8 YAML file, or a one-line `UserError` naming the file, line and problem."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a YAML file")
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path}: YAML syntax error{where}: {problem}") from None


def load_params(path: str | Path) -> Params:
    """Load and validate a params YAML file; every failure is one `UserError` line naming the file."""
    data, _ = read_yaml_text(path, "params file")
    return parse_params(data, str(path))
