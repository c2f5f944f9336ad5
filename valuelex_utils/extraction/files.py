"""The CLI contract: `valuelex extract IN.jsonl -o OUT.jsonl` (JSONL `{"id", "text"}` in, `{"id", "descriptors"}`
out)."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from valuelex_utils.errors import UserError
from valuelex_utils.llm.roles import cache_caller, default_cache_dir
from valuelex_utils.rundir import atomic_path

from .descriptors import extract_descriptors
from .judge import Messages, filter_decoding, llm_filter


def read_answers(in_path: str | os.PathLike[str]) -> list[tuple[str | int, str]]:
    """Read and validate `{"id", "text"}` lines; any bad line raises UserError naming the file and line number."""
    path = Path(in_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    return [answer for number, raw in enumerate(data.split(b"\n"), start=1)
            if (answer := _parse_answer_line(path, number, raw)) is not None]


def _parse_answer_line(path: Path, number: int, raw: bytes) -> tuple[str | int, str] | None:
    """One input line -> (id, text); None for a blank line."""
    where = f"{path}:{number}"
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UserError(f"{where}: not valid UTF-8") from None
    if not line:
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object with \"id\" and \"text\"")
    answer_id, text = record.get("id"), record.get("text")
    if isinstance(answer_id, bool) or not isinstance(answer_id, (str, int)):
        raise UserError(f"{where}: missing or invalid \"id\" (a string or an integer is required)")
    if not isinstance(text, str):
        raise UserError(f"{where}: missing or invalid \"text\" (a string is required)")
    return answer_id, text


def _write_jsonl_atomically(out_path: Path, records: Iterable[dict[str, object]]) -> None:
    """Write all lines to a temporary file beside the target, then rename (`rundir.atomic_path`, the one atomic
    writer): no half-written output, ever."""
    with atomic_path(out_path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def extract_file(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    model: str | None = None,
    call: Callable[[Messages], str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    deployment: dict[str, object] | None = None,
) -> int:
    """`valuelex extract`: JSONL `{"id", "text"}` in, JSONL `{"id", "descriptors"}` out; returns the line count.

    The whole input is validated before anything is written, and the output appears atomically, so bad input
    (UserError) never creates or clobbers the output. With `model`, the words of all answers are judged once by
    `llm_filter` (one batched prompt per 50 distinct words, not one per answer) through the shared LLM layer, its
    answers cached in `cache` (default `valuelex-cache/` beside the output: a rerun makes no call); `deployment`
    (api_base, api_key_env) says where the judge is served.
    """
    source, target = Path(in_path), Path(out_path)
    if target.is_dir():
        raise UserError(f"{target}: is a directory, expected an output file path")
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UserError(f"{target}: output would overwrite the input file")
    answers = read_answers(source)
    extracted = [(answer_id, extract_descriptors(text)) for answer_id, text in answers]
    if model is not None:
        caller = call or _cli_judge(model, target, cache, deployment)
        kept = set(llm_filter([w for _, words in extracted for w in words], model, caller))
        extracted = [(answer_id, [w for w in words if w in kept]) for answer_id, words in extracted]
        if call is None:
            print(caller.summary(), file=sys.stderr)  # type: ignore[attr-defined]
    try:
        _write_jsonl_atomically(target, ({"id": answer_id, "descriptors": words} for answer_id, words in extracted))
    except OSError as error:
        raise UserError(f"{target}: cannot write ({error.strerror or error})") from None
    return len(extracted)


def _cli_judge(model: str, target: Path, cache: str | os.PathLike[str] | None,
               deployment: dict[str, object] | None) -> Callable[[Messages], str]:
    """The judge of `valuelex extract --judge`: the shared LLM layer with a cache folder (see `roles.cache_caller`)."""
    return cache_caller(model, cache if cache is not None else default_cache_dir(target), role="extraction judge",
                        step="extract", decoding=filter_decoding(), deployment=deployment)
