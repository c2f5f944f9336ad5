"""Naming the dimensions and subdimensions (paper Alg. 1 line 8: V <- GPT-4(SC)).

An LLM gets the words of one cluster (most central first) and answers one JSON object `{"name", "definition"}`; the
prompt is few-shot, with the paper's own dimensions and subdimensions (params/taxonomies/valuelex_paper.yaml) as the
worked examples. Dimensions are named first; each subdimension's prompt then carries its dimension's name and its
sibling clusters' words, so that sibling names contrast.

The LLM is injected as `call(messages) -> str` (a callable with an optional `.batch(list_of_messages) -> list[str]`),
so the namer is testable with a fake; `litellm_caller(model, store)` is the real one: the shared LLM layer
(`roles.RoleCaller` over `llm.BatchRunner`), so answers are written to the run's store and a rerun costs nothing.

Without a model (`call=None`), or for any cluster whose answer cannot be parsed into a usable name, the deterministic
fallback is used: the cluster's medoid word, capitalised, with a one-line definition listing its central words. Every
node records how it was named (`method`: "llm" or "medoid"), and names are made unique across the whole system (a
value system needs unique column names): a clash gets the medoid in brackets, or the next most central word.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from ..errors import UserError
from ..llm.roles import RoleCaller as LiteLLMCaller  # the shared LLM layer, under the name this module always exported

__all__ = [
    "ClusterSpec",
    "NodeName",
    "Naming",
    "SYSTEM_PROMPT",
    "fallback_name",
    "parse_name",
    "clean_name",
    "few_shot_examples",
    "build_messages",
    "name_clusters",
    "LiteLLMCaller",
    "litellm_caller",
    "namer_from_params",
]

Messages = list[dict[str, str]]
Caller = Callable[[Messages], str]

#: Names a value system cannot use (they clash with score-CSV columns, see systems.RESERVED).
RESERVED_NAMES = {"id", "stem", "stem_id", "completion", "source", "judge"}
MAX_NAME_CHARS = 40
MAX_NAME_WORDS = 4

SYSTEM_PROMPT = (
    "You are an expert in psychology and value theory. Large language models were asked to describe their own "
    "values, and the words they used were grouped into clusters. You name one cluster at a time. Answer with one "
    "JSON object and nothing else: {\"name\": \"...\", \"definition\": \"...\"}. The name is one or two words in "
    "Title Case (a hyphenated compound is fine) for the value the words share, not one of the words unless it is "
    "the best summary; the definition is one sentence."
)


# --------------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class ClusterSpec:
    """One factor to name: its words most central first, and its subclusters' words (empty: not split)."""

    factor: int
    words: list[str]
    subclusters: list[list[str]] = field(default_factory=list)


@dataclass
class NodeName:
    level: str  # "dimension" or "subdimension"
    factor: int
    subcluster: int | None
    name: str
    definition: str
    method: str  # "llm" or "medoid"
    medoid: str
    words: list[str]
    model: str | None = None
    raw: str | None = None  # the LLM's answer, when one was asked
    note: str = ""


@dataclass
class Naming:
    nodes: list[NodeName]
    model: str | None = None

    @property
    def method(self) -> str:
        """"llm", "medoid", or "llm+medoid" (some clusters fell back)."""
        kinds = {n.method for n in self.nodes}
        if kinds == {"llm"}:
            return "llm"
        if kinds <= {"medoid"}:
            return "medoid"
        return "llm+medoid"

    def get(self, factor: int, subcluster: int | None = None) -> NodeName:
        for n in self.nodes:
            if n.factor == factor and n.subcluster == subcluster:
                return n
        raise KeyError((factor, subcluster))

    def table(self) -> pd.DataFrame:
        """One row per named node: level, factor, subcluster, name, definition, method, model, medoid, words, note,
        raw (the LLM answer, shortened)."""
        rows = [{"level": n.level, "factor": n.factor, "subcluster": n.subcluster, "name": n.name,
                 "definition": n.definition, "method": n.method, "model": n.model, "medoid": n.medoid,
                 "n_words": len(n.words), "words": ", ".join(n.words[:12]) + (" ..." if len(n.words) > 12 else ""),
                 "note": n.note, "raw": (n.raw or "")[:200] or None} for n in self.nodes]
        df = pd.DataFrame(rows)
        if not df.empty:
            df["subcluster"] = df["subcluster"].astype("Int64")
        return df


# --------------------------------------------------------------------------------------------------------------------
# Fallback and parsing
# --------------------------------------------------------------------------------------------------------------------
def _cap(word: str) -> str:
    word = str(word).strip()
    return word[:1].upper() + word[1:]


def fallback_name(words: Sequence[str], max_listed: int = 5) -> tuple[str, str]:
    """(name, definition) without a model: the medoid (the first of `words`, which are most central first),
    capitalised, and a definition naming the central words."""
    if not words:
        raise UserError("cannot name an empty cluster")
    shown = ", ".join(words[:max_listed]) + (", ..." if len(words) > max_listed else "")
    return _cap(words[0]), f"Value words centred on '{words[0]}': {shown}."


def clean_name(name: Any) -> str | None:
    """A usable name or None: stripped of quotes, markup and a final period; 1-4 words, at most 40 characters,
    one line, with a letter in it; first letter capitalised."""
    if not isinstance(name, (str, int, float)):
        return None
    s = str(name).strip(" \t\r\n\"'`*_#")
    s = re.sub(r"\s+", " ", s).rstrip(".:;,").strip(" \"'`*_#")
    if not s or "\n" in str(name).strip() or len(s) > MAX_NAME_CHARS or len(s.split()) > MAX_NAME_WORDS:
        return None
    if not re.search(r"[A-Za-z]", s) or "," in s or "{" in s or "}" in s:
        return None
    return _cap(s)


def _clean_definition(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    s = re.sub(r"\s+", " ", text).strip().strip("\"'`").strip()
    if len(s) < 8 or not re.search(r"[A-Za-z]", s):
        return None
    if len(s) > 300:
        s = s[:297].rsplit(" ", 1)[0] + "..."
    return s


def _objects(text: str):
    """Every JSON (or Python-literal) object that starts at a '{' in the text, outermost first."""
    dec = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        start = m.start()
        try:
            obj, _ = dec.raw_decode(text, start)
            yield obj
            continue
        except json.JSONDecodeError:
            pass
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    try:
                        yield ast.literal_eval(text[start:end + 1])
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        pass
                    break


def parse_name(text: str | None) -> dict[str, str] | None:
    """{"name", "definition"} from an LLM answer, or None when no usable name is in it.

    Accepts bare JSON, JSON in code fences or after chatter, single-quoted Python dicts, keys in any case (`Name`,
    `title`, `label`; `definition`, `description`), a JSON object cut off by max_tokens (the name is kept, an
    unfinished definition is not), and `Name: ...` / `Definition: ...` lines. The definition may be missing (then it
    is None in the result).
    """
    if not text or not isinstance(text, str):
        return None
    t = re.sub(r"```[a-zA-Z]*", "", text)
    for obj in _objects(t):
        if isinstance(obj, list) and obj and isinstance(obj[0], dict):
            obj = obj[0]
        if not isinstance(obj, dict):
            continue
        low = {str(k).strip().lower(): v for k, v in obj.items()}
        name = clean_name(low.get("name", low.get("title", low.get("label"))))
        if name:
            return {"name": name, "definition": _clean_definition(low.get("definition", low.get("description")))}
    # a JSON object cut off by max_tokens (small models loop inside the definition): the name is still there
    m = re.search(r"[\"'](?:name|title|label)[\"']\s*:\s*[\"']([^\"'\n]{1,80})[\"']", t, re.IGNORECASE)
    if m and clean_name(m.group(1)):
        d = re.search(r"[\"'](?:definition|description)[\"']\s*:\s*\"([^\"\n]+)\"", t, re.IGNORECASE)
        return {"name": clean_name(m.group(1)), "definition": _clean_definition(d.group(1)) if d else None}
    m = re.search(r"(?im)^[\W_]*(?:name|title|label)[\W_]*[:=]\s*(.+)$", t)
    if m:
        name = clean_name(re.sub(r"[\"',]+$", "", m.group(1)).strip())
        if name:
            d = re.search(r"(?im)^[\W_]*(?:definition|description)[\W_]*[:=]\s*(.+)$", t)
            return {"name": name, "definition": _clean_definition(d.group(1).rstrip(",")) if d else None}
    return None


# --------------------------------------------------------------------------------------------------------------------
# Prompt
# --------------------------------------------------------------------------------------------------------------------
def _user_message(level: str, words: Sequence[str], parent: str | None = None,
                  siblings: Sequence[Sequence[str]] = (), max_words: int = 25) -> str:
    lines = []
    if level == "dimension":
        lines.append("Level: dimension (a top-level value dimension)")
    else:
        lines.append(f"Level: subdimension of the dimension \"{parent}\"")
    lines.append("Words (most representative first): " + ", ".join(list(words)[:max_words]))
    for sib in siblings:
        lines.append("Words of a sibling subdimension, for contrast: " + ", ".join(list(sib)[:10]))
    return "\n".join(lines)


def few_shot_examples(system: Any = "valuelex") -> list[dict[str, str]]:
    """Worked examples from a value system (the paper's by default): one dimension and two subdimensions, as
    alternating user/assistant messages."""
    from ..systems import load_system

    sys_ = load_system(system)
    dims = sys_.dimensions()
    msgs: list[dict[str, str]] = []
    if not dims:
        return msgs

    def answer(col: str) -> str:
        return json.dumps({"name": col, "definition": sys_.definition(col)}, ensure_ascii=False)

    msgs += [{"role": "user", "content": _user_message("dimension", sys_.markers(dims[0]))},
             {"role": "assistant", "content": answer(dims[0])}]
    for d in dims[1:3]:
        kids = sys_.children(d)
        if not kids:
            continue
        target, others = kids[0], kids[1:]
        msgs += [{"role": "user", "content": _user_message("subdimension", sys_.markers(target), parent=d,
                                                           siblings=[sys_.markers(o) for o in others])},
                 {"role": "assistant", "content": answer(target)}]
    return msgs


def build_messages(level: str, words: Sequence[str], parent: str | None = None,
                   siblings: Sequence[Sequence[str]] = (), examples: list[dict[str, str]] | None = None,
                   max_words: int = 25) -> Messages:
    """System prompt, few-shot examples, then the cluster to name."""
    ex = few_shot_examples() if examples is None else examples
    return ([{"role": "system", "content": SYSTEM_PROMPT}] + list(ex)
            + [{"role": "user", "content": _user_message(level, words, parent, siblings, max_words)}])


# --------------------------------------------------------------------------------------------------------------------
# Naming
# --------------------------------------------------------------------------------------------------------------------
def _ask(call: Any, batch: list[Messages]) -> list[tuple[str | None, str]]:
    """Answers (text or None, note) for a batch of prompts, through `call.batch` when it has one."""
    if not batch:
        return []
    many = getattr(call, "batch", None)
    if callable(many):
        try:
            texts = list(many(batch))
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded per node, then the fallback names it
            return [(None, f"llm call failed: {type(err).__name__}: {err}"[:300])] * len(batch)
        if len(texts) != len(batch):
            raise UserError(f"namer returned {len(texts)} answers for {len(batch)} prompts")
        return [(t, "" if t else "llm gave no answer") for t in texts]
    out = []
    for msgs in batch:
        try:
            t = call(msgs)
            out.append((t, "" if t else "llm gave no answer"))
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001
            out.append((None, f"llm call failed: {type(err).__name__}: {err}"[:300]))
    return out


class _Names:
    """Unique names across the system (case-insensitive), reserved CSV column names excluded."""

    def __init__(self) -> None:
        self.used = set(RESERVED_NAMES)

    def free(self, name: str) -> bool:
        return name.lower() not in self.used

    def take(self, name: str) -> str:
        self.used.add(name.lower())
        return name

    def fallback(self, words: Sequence[str]) -> tuple[str, str, str]:
        """(name, definition, note) from the most central word whose name is free."""
        name, definition = fallback_name(words)
        if self.free(name):
            return self.take(name), definition, ""
        for w in words[1:]:
            cand = _cap(w)
            if self.free(cand):
                return self.take(cand), definition, f"medoid '{words[0]}' already names another cluster"
        i = 2
        while not self.free(f"{name} {i}"):
            i += 1
        return self.take(f"{name} {i}"), definition, "every word of the cluster already names another cluster"

    def llm(self, name: str, medoid: str) -> tuple[str, str]:
        if self.free(name):
            return self.take(name), ""
        cand = f"{name} ({medoid})"
        if self.free(cand) and len(cand) <= 2 * MAX_NAME_CHARS:
            return self.take(cand), f"LLM name '{name}' already used"
        i = 2
        while not self.free(f"{name} {i}"):
            i += 1
        return self.take(f"{name} {i}"), f"LLM name '{name}' already used"


def _resolve(names: _Names, level: str, factor: int, sub: int | None, words: list[str], answer: str | None,
             note: str, model: str | None, asked: bool) -> NodeName:
    parsed = parse_name(answer) if asked else None
    if parsed:
        name, clash = names.llm(parsed["name"], words[0])
        definition = parsed["definition"]
        notes = [n for n in (clash, "" if definition else "no definition in the answer: fallback definition") if n]
        if not definition:
            definition = fallback_name(words)[1]
        return NodeName(level, factor, sub, name, definition, "llm", words[0], list(words), model, answer,
                        "; ".join(notes))
    name, definition, clash = names.fallback(words)
    why = note or ("unparseable answer" if asked else "")
    return NodeName(level, factor, sub, name, definition, "medoid", words[0], list(words), model if asked else None,
                    answer, "; ".join(n for n in (why, clash) if n))


def name_clusters(specs: Sequence[ClusterSpec], call: Caller | Any | None = None, *, model: str | None = None,
                  examples: list[dict[str, str]] | None = None, max_words: int = 25) -> Naming:
    """Name every dimension and subdimension.

    `specs` come from `Clustering.specs()` (words most central first). With `call=None` every node gets the medoid
    fallback; otherwise dimensions are asked first (one batch), then subdimensions with their dimension's final name
    (a second batch). `model` is recorded (defaults to `call.model` when the caller has one).
    """
    specs = [s for s in specs if s.words]
    if not specs:
        raise UserError("nothing to name: no cluster has words")
    model = model or getattr(call, "model", None)
    names = _Names()
    asked = call is not None
    ex = (few_shot_examples() if examples is None else examples) if asked else []
    dim_answers = (_ask(call, [build_messages("dimension", s.words, examples=ex, max_words=max_words) for s in specs])
                   if asked else [(None, "")] * len(specs))
    dims = [_resolve(names, "dimension", s.factor, None, s.words, a, n, model, asked)
            for s, (a, n) in zip(specs, dim_answers)]
    sub_jobs = [(s, j, d) for s, d in zip(specs, dims) if len(s.subclusters) > 1 for j in range(len(s.subclusters))]
    sub_msgs = [build_messages("subdimension", s.subclusters[j], parent=d.name,
                               siblings=[w for i, w in enumerate(s.subclusters) if i != j], examples=ex,
                               max_words=max_words) for s, j, d in sub_jobs]
    sub_answers = _ask(call, sub_msgs) if asked else [(None, "")] * len(sub_jobs)
    subs = [_resolve(names, "subdimension", s.factor, j, s.subclusters[j], a, n, model, asked)
            for (s, j, _), (a, n) in zip(sub_jobs, sub_answers)]
    ordered: list[NodeName] = []
    for d in dims:
        ordered.append(d)
        ordered += [x for x in subs if x.factor == d.factor]
    return Naming(nodes=ordered, model=model if asked else None)


# --------------------------------------------------------------------------------------------------------------------
# The real caller: the shared LLM layer (`roles.RoleCaller`) through the run's store
# --------------------------------------------------------------------------------------------------------------------
NAMING_DECODING = {"temperature": 0.0, "max_tokens": 120, "seed": 0}


def litellm_caller(model: str, store: Any, *, params: dict[str, Any] | None = None,
                   deployment: dict[str, Any] | None = None, concurrency: int = 4, timeout: float = 120.0,
                   retries: int = 2, progress: bool = False, router: Any | None = None,
                   tally_dir: str | Path | None = None) -> LiteLLMCaller:
    """The namer's LLM: any LiteLLM id (`local/...`, `openai/...`, `ollama/...`) through `roles.RoleCaller`, answers
    cached in `store` (a `ResponseStore` or a path, e.g. `<run>/responses.jsonl`). `params`: decoding (default
    temperature 0, max_tokens 120, seed 0). A failed call (after retries) answers "" (the namer then falls back and
    notes it); a hard failure (unknown model, bad key) raises `UserError` with one line. From a params file, use
    `namer_from_params`."""
    from ..llm.roles import CallSettings

    if not model or not isinstance(model, str):
        raise UserError("taxonomy.namer: expected a LiteLLM model id such as openai/gpt-4o-mini")
    return LiteLLMCaller(model, store, role="namer", step="04_taxonomy",
                         params={**NAMING_DECODING, **(params or {})}, deployment=deployment, router=router,
                         settings=CallSettings(concurrency=concurrency, retries=retries, timeout=timeout),
                         tally_dir=tally_dir, progress=progress)


def namer_from_params(params: Any, run_dir: str | Path, progress: bool = False) -> LiteLLMCaller | None:
    """The caller for `params.taxonomy.namer`, or None (medoid names) when no namer is configured.

    Answers go to the run's store (`<run_dir>/responses.jsonl`; naming prompts never collide with elicitation keys),
    each batch's calls to its `calls.jsonl` under step 04. Endpoint settings come from the namer's respondent entry
    when it is also a respondent, else from `endpoints` (api_base, api_key_env; several endpoints through LiteLLM's
    Router). Decoding: temperature 0, max_tokens 120, seed = params.seed.
    """
    from ..llm.roles import role_caller

    model = getattr(getattr(params, "taxonomy", None), "namer", None)
    if not model:
        return None
    return role_caller(params, model, run_dir, role="namer", step="04_taxonomy",
                       decoding={**NAMING_DECODING, "seed": int(params.seed)}, progress=progress)
