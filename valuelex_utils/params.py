"""Run parameters: one YAML file describes a whole study (respondents, sampling, every step's options).

Validated on load so that a typo costs a second, not an afternoon of API calls: an unknown or mistyped key, a wrong
type or an empty respondent list is one clear line naming the field (`UserError`, exit code 2). Types are strict (a
seed of `true` or a count of 2.5 is refused, not coerced), numbers finite and bounded (the bounds say what a study can
use, far above any real one), model ids, URLs and format strings are checked here, and duplicate YAML keys are
refused (see `inputs.py`, the one input boundary).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import inputs
from .errors import UserError
from .systems import available_systems

Training = Literal["pretrained", "instruction-tuned", "aligned"]
DEFAULT_JUDGE = "openai/gpt-4o-mini"  # the LLM judge when `scoring.scorer: llm` names none


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, strict=True, allow_inf_nan=False)


#: Upper bounds, as data: beyond these a value is a typo (10**30 samples), not a study.
MAX_TOKENS = 32768
MAX_SAMPLES = 1000
MAX_FACTORS = 100
MAX_SUBCLUSTERS = 20
MAX_SEED = 2**32 - 1  # numpy's RandomState (scikit-learn, UMAP) takes seeds below 2**32
#: Fields that change how a run goes, not what it computes: a run dir may be resumed with other values of these.
OPERATIONAL_FIELDS = ("concurrency", "timeout", "retries", "processes", "step_timeout")


def _checked(fn: Any, *args: Any) -> Any:
    """Call an `inputs` check inside a pydantic validator (which reports ValueError with the field's location)."""
    try:
        return fn(*args)
    except UserError as err:
        raise ValueError(str(err)) from None


def _model_id(v: str | None) -> str | None:
    return v if v is None else _checked(inputs.check_model_id, v, "model id")


def _api_bases(v: str | list[str] | None) -> str | list[str] | None:
    if v is None:
        return v
    urls = [v] if isinstance(v, str) else v
    if not urls:
        raise ValueError("an empty list; give one URL or several, or leave api_base out")
    for url in urls:
        _checked(inputs.check_url, url, "api_base")
    if len(set(urls)) != len(urls):
        raise ValueError("a URL is listed twice")
    return v


def _env_name(v: str | None) -> str | None:
    return v if v is None else _checked(inputs.check_env_name, v, "api_key_env")


def _ids(v: Any, what: str) -> Any:
    """'all' or a list of distinct integer ids (that each exists is checked in preflight against the shipped list)."""
    if v == "all" and isinstance(v, str):
        return v
    if not isinstance(v, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in v):
        raise ValueError(f"expected 'all' or a list of {what} ids (integers), got {v!r}"[:200])
    dup = sorted({i for i in v if v.count(i) > 1})
    if dup:
        raise ValueError(f"{what} id(s) listed twice: {', '.join(map(str, dup))}")
    return v


class DecodingConfig(_Strict):
    """One decoding configuration θ: a (model, config) pair is one respondent (paper Sec. 3.2)."""

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)

    def label(self) -> str:
        return f"T{self.temperature:g}-p{self.top_p:g}"


class _Served(_Strict):
    """What a respondent and an endpoint share: the checks of `api_base` / `api_key_env` and the endpoint list. The
    fields themselves are declared by each subclass, so that each keeps its own field order (the run dir's params
    copy is written in that order)."""

    _api_base = field_validator("api_base", check_fields=False)(classmethod(lambda cls, v: _api_bases(v)))
    _api_key_env = field_validator("api_key_env", check_fields=False)(classmethod(lambda cls, v: _env_name(v)))

    @property
    def api_bases(self) -> list[str]:
        """The endpoints; a URL whose credentials the run dir's params copy masks is the real one again in a step's
        kernel (`scrub.unmask_url`)."""
        from .scrub import unmask_url

        if self.api_base is None:
            return []
        return [unmask_url(b) for b in ([self.api_base] if isinstance(self.api_base, str) else self.api_base)]


class Respondent(_Served):
    """A model and the decoding configs it answers under."""

    model: str = Field(min_length=1)
    name: str | None = None
    family: str = "unknown"
    size: float | None = Field(None, gt=0, description="billions of parameters, or null when unknown")
    training: Training
    api_base: str | list[str] | None = None
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    rpm: float | None = Field(None, gt=0, description="requests a minute this endpoint allows; calls are paced "
                              "client-side to stay under it (valuelex_utils.llm.ratelimit)")
    tpm: float | None = Field(None, gt=0, description="tokens a minute (prompt + completion) this endpoint allows")
    configs: list[DecodingConfig] = Field(default_factory=lambda: [DecodingConfig()], min_length=1, max_length=100)

    @field_validator("model")
    @classmethod
    def _model_has_provider(cls, v: str) -> str:
        return _checked(inputs.check_model_id, v, "model id")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or len(v) > 100 or any(ord(c) < 32 for c in v)):
            raise ValueError("a respondent name is 1-100 printable characters")
        return v


    @field_validator("configs")
    @classmethod
    def _distinct_configs(cls, v: list[DecodingConfig]) -> list[DecodingConfig]:
        labels = [c.label() for c in v]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"decoding config(s) listed twice: {', '.join(dup)} (each would be the same respondent)")
        return v

    @property
    def label(self) -> str:
        return self.name or self.model.split("/", 1)[1]

    @property
    def is_chat(self) -> bool:
        return self.training != "pretrained"


class ElicitationParams(_Strict):
    prompts: Literal["all"] | list[int] = "all"
    samples: int = Field(3, ge=1, le=MAX_SAMPLES)
    max_tokens: int = Field(96, ge=1, le=MAX_TOKENS)
    base_frame: str = Field(
        "auto",
        description="completion frame for pretrained respondents: 'auto' = the per-prompt first-person frames shipped "
        "in valuelex_utils/data/elicitation_frames.yaml, or a template in which {prompt} is the elicitation prompt",
    )

    _prompts = field_validator("prompts", mode="before")(classmethod(lambda cls, v: _ids(v, "prompt")))

    @field_validator("base_frame")
    @classmethod
    def _frame(cls, v: str) -> str:
        return v if v == "auto" else _checked(inputs.check_template, v, ["prompt"], "")


class ExtractionParams(_Strict):
    llm_judge: str | None = Field(None, description="LiteLLM id that keeps only words naming a value; null = rules only")

    _judge = field_validator("llm_judge")(classmethod(lambda cls, v: _model_id(v)))


class LexiconParams(_Strict):
    min_frequency: int = Field(3, ge=1)
    min_respondents: int = Field(2, ge=1)
    unit: Literal["respondent", "answer"] = Field(
        "respondent", description="rows of matrix.csv: one per respondent (the paper, for studies with hundreds of "
        "respondents) or one per answer (co-occurrence within an answer; for small studies)")


class FactorParams(_Strict):
    """Options of step 03: the keyword arguments of `factors.fit_factors`, under the same names (`n_iter` is still
    read as `pa_iter`, its name before issue 17)."""

    k_rule: Literal["parallel", "deflated", "kaiser"] = "parallel"
    n_factors: int | None = Field(None, ge=1, le=MAX_FACTORS)
    method: Literal["minres", "ml", "principal"] = "minres"
    rotation: Literal["oblimin", "promax", "varimax", "none"] = "oblimin"
    corr: Literal["pearson", "tetrachoric"] = "pearson"
    transform: Literal["log1p", "none"] = "log1p"
    threshold: float = Field(0.30, gt=0, lt=1)
    min_words: int = Field(3, ge=1)
    pa_iter: int = Field(100, ge=5, le=100_000, validation_alias=AliasChoices("pa_iter", "n_iter"))
    percentile: float = Field(95, gt=0, lt=100)
    n_boot: int = Field(0, ge=0, le=100_000, description="bootstrap resamples for 95% intervals of the loadings; 0 = none")
    max_k: int | None = Field(None, ge=0, le=MAX_FACTORS, description="largest K in the table of fit per candidate K; 0 = no table")
    parallel_when_fixed: bool = Field(True, description="run parallel analysis also when n_factors fixes K (its curve "
                                      "on the scree plot); false saves its permutations")

    def fit_kwargs(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of `factors.fit_factors` for these options."""
        return {"n_factors": self.n_factors, "method": self.method, "rotation": self.rotation, "k_rule": self.k_rule,
                "corr": self.corr, "transform": self.transform, "threshold": self.threshold,
                "min_words": self.min_words, "seed": seed, "pa_iter": self.pa_iter, "percentile": self.percentile,
                "n_boot": self.n_boot, "max_k": self.max_k, "parallel_when_fixed": self.parallel_when_fixed}


class TaxonomyParams(_Strict):
    namer: str | None = Field(None, description="LiteLLM id that names clusters; null = medoid-word fallback")
    k_min: int = Field(2, ge=2, le=MAX_SUBCLUSTERS)
    k_max: int = Field(4, ge=2, le=MAX_SUBCLUSTERS)
    bootstrap: int = Field(20, ge=0, le=100_000)

    _namer = field_validator("namer")(classmethod(lambda cls, v: _model_id(v)))

    @model_validator(mode="after")
    def _k_range(self) -> "TaxonomyParams":
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) is larger than k_max ({self.k_max})")
        return self


class ProjectiveParams(_Strict):
    stems: Literal["all"] | list[int] = "all"
    samples: int = Field(2, ge=1, le=MAX_SAMPLES)
    max_tokens: int = Field(40, ge=1, le=MAX_TOKENS)
    chat_frame: str = "Complete the sentence: {stem}"

    _stems = field_validator("stems", mode="before")(classmethod(lambda cls, v: _ids(v, "stem")))
    _frame = field_validator("chat_frame")(classmethod(
        lambda cls, v: _checked(inputs.check_template, v, ["stem"], "")))


#: `scoring.systems` entries besides paths: the run's own taxonomy from step 04, and the shipped systems (the YAML
#: files of valuelex_utils/systems/).
RUN_SYSTEM = "run"
NAMED_SYSTEMS = (RUN_SYSTEM, *available_systems())


class ScoringParams(_Strict):
    """`systems`: the value systems steps 06 and 07 score on, the first one leading the report. `run` is the system
    this run reconstructed in step 04 (`<run>/taxonomy.yaml`), `valuelex` the paper's published one, `schwartz` and
    `mft` the human systems, or a path to a taxonomy YAML. The default scores on the run's own system and, beside it,
    the paper's. The older single key `system: NAME` still loads, as `systems: [NAME]`."""

    scorer: Literal["embedding", "llm"] = "embedding"
    judge: str | None = None
    systems: list[str] = Field(default_factory=lambda: [RUN_SYSTEM, "valuelex"], min_length=1)
    n_bootstrap: int = Field(1000, ge=0, le=1_000_000)
    judge_max_tokens: int = Field(700, ge=16, le=MAX_TOKENS,
                                  description="completion tokens of one verdict (reasoning + JSON)")
    judge_reliability_items: int = Field(
        30, ge=0, le=100_000,
        description="annotated items the LLM judge also scores, to measure its agreement with human labels")

    _judge = field_validator("judge")(classmethod(lambda cls, v: _model_id(v)))


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
            if "\x00" in s:
                raise ValueError("a value system path cannot contain a NUL byte")
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


class Endpoint(_Served):
    """Where a model that is not a respondent (a judge, the namer) is served: the same fields as a respondent's."""

    api_base: str | list[str] | None = None
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    rpm: float | None = Field(None, gt=0, description="requests a minute this endpoint allows; calls are paced "
                              "client-side to stay under it (valuelex_utils.llm.ratelimit)")
    tpm: float | None = Field(None, gt=0, description="tokens a minute (prompt + completion) this endpoint allows")


class Params(_Strict):
    """A whole study. Seeds everywhere derive from `seed`."""

    run_name: str = "run"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    concurrency: int = Field(4, ge=1, le=4096)
    timeout: float = Field(120.0, gt=0, le=86_400, description="seconds per call")
    retries: int = Field(4, ge=0, le=100)
    processes: int = Field(0, ge=0, le=1024)  # worker processes for remote calls; 0: automatic (see valuelex_utils.llm.shards)
    step_timeout: float = Field(3600.0, gt=0, le=7 * 24 * 3600, description="seconds one step's notebook may run "
                                "before `valuelex run` stops it and its kernel (exit code 2)")
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
            _checked(inputs.check_model_id, model, "model id")
        return v

    @field_validator("run_name")
    @classmethod
    def _plain_run_name(cls, v: str) -> str:
        """The default run dir is outputs/<run_name>: one plain folder name, never a path out of outputs/."""
        if (not v.strip() or v in (".", "..") or len(v) > 100 or any(c in v for c in "/\\") or v.startswith("~")
                or any(ord(c) < 32 or ord(c) == 127 for c in v)):
            raise ValueError(f"{v!r:.60}: a run name is one folder name of 1-100 printable characters, without / or \\"
                             " and not starting with ~")
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

    def n_respondents(self) -> int:
        """Respondents as the lexicon counts them: one per (model, decoding config)."""
        return sum(len(r.configs) for r in self.respondents)

    def matrix_rows(self) -> int:
        """The most rows step 02's matrix can have: one per respondent, or one per answer (`lexicon.unit`)."""
        if self.lexicon.unit == "respondent":
            return self.n_respondents()
        from .prompts import elicitation_prompts

        n_prompts = len(elicitation_prompts(self.elicitation.prompts))
        return self.n_respondents() * n_prompts * self.elicitation.samples

    def check_between_steps(self, steps: list[str], source: str = "params") -> None:
        """Constraints that tie one step's options to what an earlier step can produce, checked before step 01
        spends anything (a study that cannot pass step 03 is refused now, not after an hour of calls)."""
        n_resp, rows = self.n_respondents(), self.matrix_rows()
        if "02" in steps and self.lexicon.min_respondents > n_resp:
            raise UserError(f"{source}: lexicon.min_respondents is {self.lexicon.min_respondents} but the study has {n_resp} "
                            "respondent(s) (model x decoding config): no word could enter the matrix")
        if "03" in steps and rows < 3:
            raise UserError(f"{source}: lexicon.unit: {self.lexicon.unit} gives a matrix of at most {rows} row(s); factor "
                            "analysis (step 03) needs at least 3: add respondents or configs, or use unit: answer")
        if "03" in steps and self.factors.n_factors is not None and self.factors.n_factors >= rows:
            raise UserError(f"{source}: factors.n_factors is {self.factors.n_factors} but the matrix has at most {rows} rows "
                            f"(lexicon.unit: {self.lexicon.unit}); use at most {rows - 1}")

    def fingerprint(self) -> str:
        """A hash of the study's content, to tell whether a run dir belongs to these params. The operational fields
        (`OPERATIONAL_FIELDS`: concurrency, timeouts, retries, processes) are left out: they change how fast a run
        goes, not what it computes, so a run dir resumes under other values of them. Credentials in URLs are masked
        (`scrub`) as in the run dir's params copy, which never holds a secret, so the copy still matches its file."""
        from .scrub import scrub_obj

        blob = json.dumps(scrub_obj(self.model_dump(mode="json", exclude=set(OPERATIONAL_FIELDS))), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: Location parts pydantic adds for the member of a union that was tried; they name a type, not a key.
_UNION_PART = re.compile(r"(literal\[.*\]|list\[.*\]|dict\[.*\]|str|int|float|bool|none|function-.*)")


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and _UNION_PART.fullmatch(p))]
    where = ".".join(str(p) for p in loc) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{where}' (check the spelling against params/default.yaml)"
    if kind == "missing":
        return f"{source}: missing required key '{where}'"
    msg = first["msg"].removeprefix("Value error, ")
    if kind in ("int_type", "float_type", "string_type", "bool_type", "list_type", "dict_type", "model_type",
                "finite_number", "literal_error", "greater_than", "greater_than_equal", "less_than",
                "less_than_equal") or kind.endswith("_parsing"):
        msg += f" (got {first.get('input')!r:.60})"
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
    """(data, text) of a UTF-8 YAML file, or a one-line `UserError` naming the file, line and problem: size and
    nesting limits, duplicate keys refused (`inputs.read_yaml_file`)."""
    return inputs.read_yaml_file(path, what)


def load_params(path: str | Path) -> Params:
    """Load and validate a params YAML file; every failure is one `UserError` line naming the file."""
    data, _ = read_yaml_text(path, "params file")
    return parse_params(data, str(path))
