"""The one input boundary: every file, path and id a user hands to ValueLex is checked here, before any call or write.

A failure is one `UserError` line naming the file (and line or field) and what is expected; the CLI prints it and
exits with code 2. The limits below are data, stated in the messages, so a user who meets one knows what to change.
Why limits at all: a 20 MB JSONL line, a 50 MB params file or JSON nested 100,000 deep is never a real input, and
without a bound it costs gigabytes of memory or a RecursionError instead of a sentence.
"""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import string
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

from .errors import UserError

#: Limits on what a user may hand in (bytes, nesting levels, characters). Real inputs are far below every one.
LIMITS: dict[str, int] = {
    "params_bytes": 1 << 20,        # a params or value-system YAML file (a whole study is a few KB)
    "yaml_depth": 32,               # nesting of mappings and lists in a YAML file (params nest 4 deep)
    "jsonl_line_bytes": 1 << 20,    # one JSONL line of `valuelex extract` (an answer is a few KB)
    "json_depth": 32,               # nesting of one JSON line
    "id_chars": 256,                # an answer or completion id, as text
    "csv_bytes": 256 << 20,         # a CSV given to `valuelex score` or `valuelex factors`
    "json_product_bytes": 64 << 20,  # a JSON product of a run dir read by `valuelex report`
}

#: Model ids: `provider/name`; the provider as LiteLLM spells its providers, the name without spaces or controls.
_MODEL_ID = re.compile(r"(?P<provider>[A-Za-z0-9][A-Za-z0-9_.-]*)/(?P<name>[^\s/][^\s]*)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- paths ---------------------------------------------------------------------------------------------------------


def _os_reason(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "a symbolic link loop"
    return (err.strerror or str(err)).lower()


def check_path_text(path: str | os.PathLike[str], what: str) -> Path:
    """A path the OS can take: no NUL byte (Python raises ValueError deep inside otherwise)."""
    text = os.fspath(path)
    if "\x00" in str(text):
        raise UserError(f"{what} {str(text)!r}: a path cannot contain a NUL byte")
    return Path(text)


def input_file(path: str | os.PathLike[str], what: str, max_bytes: int | None = None) -> Path:
    """An existing regular file that can be opened, at most `max_bytes` long; else one line naming the problem."""
    p = check_path_text(path, what)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise UserError(f"{what} not found: {p}") from None
    except NotADirectoryError:
        raise UserError(f"{what} not found: {p} (a part of the path is a file, not a folder)") from None
    except OSError as err:
        raise UserError(f"{what} {p}: cannot be read ({_os_reason(err)})") from None
    import stat as _stat

    if _stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {p} is a folder, not a file")
    if not _stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {p} is not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UserError(f"{what} {p} is {st.st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
    if not os.access(p, os.R_OK):
        raise UserError(f"{what} {p}: permission denied")
    return p


def read_input_bytes(path: str | os.PathLike[str], what: str, max_bytes: int) -> bytes:
    """The bytes of an input file, read with a bound (a file that grows while read cannot exceed it)."""
    p = input_file(path, what, max_bytes)
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        raise UserError(f"{what} {p}: cannot be read ({_os_reason(err)})") from None
    if len(data) > max_bytes:
        raise UserError(f"{what} {p} is larger than the limit of {max_bytes / 1e6:.1f} MB")
    return data


def _first_existing(p: Path) -> Path:
    for anc in (p, *p.parents):
        try:
            if os.path.lexists(anc):
                return anc
        except ValueError:  # pragma: no cover - NUL already refused
            break
    return Path(p.anchor or ".")


def writable_folder(path: str | os.PathLike[str], what: str, shown: str | os.PathLike[str] | None = None) -> Path:
    """A folder that exists or can be created: no part of it a file, no NUL byte, no symlink loop. `shown` is the
    path named in the message (the output file, when `path` is its folder)."""
    p = check_path_text(path, what)
    name = shown if shown is not None else p
    try:
        resolved = p.expanduser().resolve()
    except (OSError, RuntimeError) as err:
        reason = _os_reason(err) if isinstance(err, OSError) else "a symbolic link loop"
        raise UserError(f"{what} {name}: cannot be used ({reason})") from None
    anc = _first_existing(resolved)
    if not anc.is_dir():
        if anc == resolved and shown is None:
            raise UserError(f"{what} {name} is a file, not a directory")
        raise UserError(f"{what} {name}: {anc} is a file, not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"{what} {name}: {anc} is not writable")
    return resolved


def output_file(path: str | os.PathLike[str], what: str = "output") -> Path:
    """An output file path: not a folder, its folder usable (see `writable_folder`)."""
    p = check_path_text(path, what)
    if str(path).endswith(("/", os.sep)) or p.is_dir():
        raise UserError(f"{what} {p} is a directory; give a file path")
    writable_folder(p.parent, what, shown=p)
    return p


# -- run dirs ------------------------------------------------------------------------------------------------------

#: A run dir is a folder holding the params copy and at least one of these (what `valuelex run` writes); a folder
#: with only params.yaml and notebooks/ may well be a user's project, so those two alone do not make a run dir.
RUN_DIR_MARKS = ("manifest.json", "responses.jsonl", "calls.jsonl")


def enclosing_run_dir(path: str | os.PathLike[str]) -> Path | None:
    """The run dir `path` is (or lies inside), or None."""
    p = Path(path).expanduser().resolve()
    for anc in (p, *p.parents):
        if (anc / "params.yaml").is_file() and any((anc / m).exists() for m in RUN_DIR_MARKS):
            return anc
    return None


def refuse_run_dir_output(path: str | os.PathLike[str], flag: str = "-o", force: bool = False) -> None:
    """Run dirs are owned by runs: a CLI verb writing its output into one would overwrite or mix with the run's own
    products (factors.json, reliability.json, ...). Refused unless the user says `--force`."""
    if force:
        return
    run = enclosing_run_dir(path)
    if run is not None:
        raise UserError(f"{flag} {path} is inside the run dir {run}, whose products it could overwrite; choose "
                        "another output or pass --force")


def run_dir_target(path: str | os.PathLike[str]) -> Path:
    """Where `valuelex run` may claim a run dir: a folder (or a path whose first existing part is a folder) whose
    params.yaml, if present, is a regular file."""
    p = writable_folder(path, "run dir")
    copy = p / "params.yaml"
    if os.path.lexists(copy) and not copy.is_file():
        raise UserError(f"run dir {p}: its params.yaml is not a regular file (a folder or a broken link); "
                        "not a ValueLex run dir")
    return p


# -- YAML ----------------------------------------------------------------------------------------------------------


def _yaml_loader(source: str):
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that refuses duplicate keys (PyYAML keeps the last silently) and nesting past the limit."""

        depth = 0

        def compose_node(self, parent, index):  # type: ignore[override]
            self.depth += 1
            if self.depth > LIMITS["yaml_depth"]:
                mark = self.peek_event().start_mark
                raise UserError(f"{source}: line {mark.line + 1}: nested deeper than {LIMITS['yaml_depth']} levels")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node, deep=False):  # type: ignore[override]
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise UserError(f"{source}: line {key_node.start_mark.line + 1}: a mapping key must be a "
                                    "plain value") from None
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise UserError(f"{source}: line {line}: duplicate key {key!r} (first at line {seen[key]}); "
                                    "keep one")
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return Loader


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> data, refusing duplicate keys and deep nesting; a syntax error names the line and column."""
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader(source))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{source}: YAML syntax error{where}: {problem}") from None
    except RecursionError:
        raise UserError(f"{source}: nested deeper than {LIMITS['yaml_depth']} levels") from None


def read_yaml_file(path: str | os.PathLike[str], what: str = "file") -> tuple[Any, str]:
    """(data, text) of a UTF-8 YAML file of at most `LIMITS['params_bytes']`, each failure one line."""
    raw = read_input_bytes(path, what, LIMITS["params_bytes"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return parse_yaml(text, str(path)), text


# -- format strings, ids, URLs -------------------------------------------------------------------------------------


def check_template(template: str, allowed: Sequence[str], where: str) -> str:
    """A `str.format` template that uses only the allowed placeholders, each at least once, with no attribute or
    index access: checked at load, not when the first prompt is built after calls were paid."""
    where = f"{where}: " if where else ""
    names = []
    try:
        for _, field, spec, conv in string.Formatter().parse(template):
            if field is None:
                continue
            if field not in allowed:
                shown = "{" + field + "}" if field else "{}"
                raise UserError(f"{where}placeholder {shown} is not allowed; use "
                                + ", ".join("{" + a + "}" for a in allowed) + " (write {{ and }} for literal braces)")
            if spec and ("{" in spec):
                raise UserError(f"{where}nested placeholders are not allowed")
            names.append(field)
        template.format(**{a: "x" for a in allowed})
    except ValueError as err:
        raise UserError(f"{where}not a valid template ({err}); write {{{{ and }}}} for literal braces") from None
    missing = [a for a in allowed if a not in names]
    if missing:
        raise UserError(f"{where}the template must contain " + ", ".join("{" + a + "}" for a in missing))
    return template


def check_model_id(model: Any, where: str = "model id") -> str:
    """`provider/name` with a non-empty provider and name and no whitespace; what LiteLLM can route."""
    if not isinstance(model, str):
        raise UserError(f"{where}: expected a model id such as openai/gpt-4o-mini, got {type(model).__name__}")
    if "/" not in model:
        raise UserError(f"{where} {model!r} needs a provider prefix such as local/, openai/, ollama/")
    if not _MODEL_ID.fullmatch(model) or any(ord(c) < 32 for c in model):
        raise UserError(f"{where} {model!r}: expected provider/name (e.g. openai/gpt-4o-mini): a provider, a slash "
                        "and a model name, without spaces")
    return model


def check_url(url: Any, where: str = "api_base") -> str:
    """An http(s) URL with a host: what an OpenAI-compatible endpoint can be."""
    if not isinstance(url, str) or not url.strip():
        raise UserError(f"{where}: expected an http(s) URL such as http://localhost:8080/v1, got {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as err:
        raise UserError(f"{where} {url!r}: not a URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise UserError(f"{where} {url!r}: expected an http(s) URL such as http://localhost:8080/v1")
    return url


def check_env_name(name: Any, where: str = "api_key_env") -> str:
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise UserError(f"{where}: expected the name of an environment variable (letters, digits, _), got {name!r}")
    return name


# -- JSON lines ----------------------------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in a JSON text (strings skipped), without parsing it."""
    bare = _JSON_STRING.sub('""', text)
    if bare.count("[") + bare.count("{") <= LIMITS["json_depth"]:
        return bare.count("[") + bare.count("{")
    depth = best = 0
    for ch in bare:
        if ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


class _LongNumber(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text) > LIMITS["id_chars"]:
        raise _LongNumber(text)
    return int(text)


def parse_json_line(line: str, where: str) -> Any:
    """One JSON value within the depth and number-length limits."""
    if json_depth(line) > LIMITS["json_depth"]:
        raise UserError(f"{where}: JSON nested deeper than {LIMITS['json_depth']} levels")
    try:
        return json.loads(line, parse_int=_bounded_int)
    except _LongNumber as err:
        raise UserError(f"{where}: a number of {len(str(err))} digits; the limit is {LIMITS['id_chars']}") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: not valid JSON ({err.msg}, column {err.colno})") from None
    except (ValueError, RecursionError) as err:
        raise UserError(f"{where}: not valid JSON ({str(err)[:80]})") from None


def iter_jsonl(path: str | os.PathLike[str], what: str = "input") -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a UTF-8 JSONL file, read line by line with a bound per line."""
    p = input_file(path, what)
    limit = LIMITS["jsonl_line_bytes"]
    try:
        with open(p, "rb") as fh:
            number = 0
            while True:
                raw = fh.readline(limit + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > limit and not raw.endswith(b"\n"):
                    raise UserError(f"{p}:{number}: line longer than the limit of {limit / 1e6:.1f} MB")
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
                except UnicodeDecodeError as err:
                    raise UserError(f"{p}:{number}: not valid UTF-8 (byte {err.start})") from None
                if line:
                    yield number, parse_json_line(line, f"{p}:{number}")
    except OSError as err:
        raise UserError(f"{what} {p}: cannot be read ({_os_reason(err)})") from None


def check_answers_jsonl(path: str | os.PathLike[str]) -> int:
    """Validate the input of `valuelex extract` (`{"id", "text"}` per line, unique ids); returns the line count."""
    seen: dict[Any, int] = {}
    for number, record in iter_jsonl(path, "input"):
        where = f"{path}:{number}"
        if not isinstance(record, dict):
            raise UserError(f'{where}: expected a JSON object with "id" and "text"')
        answer_id, text = record.get("id"), record.get("text")
        if isinstance(answer_id, bool) or not isinstance(answer_id, (str, int)):
            raise UserError(f'{where}: missing or invalid "id" (a string or an integer is required)')
        if isinstance(answer_id, str) and (not answer_id.strip() or len(answer_id) > LIMITS["id_chars"]):
            raise UserError(f'{where}: "id" must be 1-{LIMITS["id_chars"]} characters')
        if not isinstance(text, str):
            raise UserError(f'{where}: missing or invalid "text" (a string is required)')
        if answer_id in seen:
            raise UserError(f'{where}: "id" {answer_id!r} already used at line {seen[answer_id]}')
        seen[answer_id] = number
    return len(seen)


# -- CSV -----------------------------------------------------------------------------------------------------------

_OTHER_DELIMITERS = (";", "\t", "|")


def read_csv_rows(path: str | os.PathLike[str], what: str = "input") -> list[list[str]]:
    """Rows of a UTF-8 (BOM accepted) comma-separated file whose every row has the header's number of fields."""
    raw = read_input_bytes(path, what, LIMITS["csv_bytes"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start}); save the CSV as UTF-8") from None
    if "\x00" in text:
        raise UserError(f"{path}: contains NUL bytes; not a text CSV")
    if not text.strip():
        raise UserError(f"{path}: the CSV is empty")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as err:
        raise UserError(f"{path}: not a readable CSV ({err})") from None
    header = rows[0]
    if len(header) == 1:
        found = [d for d in _OTHER_DELIMITERS if d in header[0]]
        if found:
            name = {"\t": "tab"}.get(found[0], repr(found[0]))
            raise UserError(f"{path}: fields are separated by {name}; expected commas (save as comma-separated CSV)")
    for number, row in enumerate(rows[1:], start=2):
        if row and len(row) != len(header):
            raise UserError(f"{path}: line {number} has {len(row)} fields; the header has {len(header)}")
    return [r for r in rows if r]


def check_completions_csv(path: str | os.PathLike[str], columns: Sequence[str] = ("id", "stem", "completion")) -> int:
    """Validate the input of `valuelex score`: the needed columns, at least one row, ids unique and bounded."""
    rows = read_csv_rows(path)
    header = [h.strip() for h in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; the input needs {', '.join(columns)}")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise UserError(f"{path}: column(s) named twice: {', '.join(dup)}")
    if len(rows) < 2:
        raise UserError(f"{path}: the CSV has a header but no rows")
    at = header.index("id")
    for number, row in enumerate(rows[1:], start=2):
        if len(row[at]) > LIMITS["id_chars"]:
            raise UserError(f"{path}: line {number}: id of {len(row[at])} characters; the limit is "
                            f"{LIMITS['id_chars']}")
    return len(rows) - 1


# -- run dir products (for `valuelex report`) ----------------------------------------------------------------------

#: Which step writes each product, to say what to rerun when one is damaged.
PRODUCT_STEP = {"elicitation.parquet": "01", "descriptors.parquet": "02", "lexicon.csv": "02", "matrix.csv": "02",
                "factors.json": "03", "loadings.csv": "03", "taxonomy.yaml": "04", "clusters.csv": "04",
                "completions.parquet": "05", "scores.parquet": "06", "value_profiles.csv": "06",
                "reliability.json": "06", "comparison.csv": "07"}


def _damaged(path: Path, why: str, step: str | None) -> UserError:
    fix = f"; rerun step {step} (valuelex run --steps {step})" if step else ""
    return UserError(f"{path}: damaged ({why}){fix}")


def _manifest_model():
    from pydantic import BaseModel, ConfigDict

    class _Open(BaseModel):
        model_config = ConfigDict(extra="allow")

    class Step(_Open):
        notebook: str = ""
        status: str | None = None
        seconds: float | None = None

    class Respondent(_Open):
        model: str
        configs: list[Any] = []

    class StudyParams(_Open):
        respondents: list[Respondent] = []

    class Git(_Open):
        commit: str | None = None
        dirty: bool | None = None

    class Manifest(_Open):
        run_name: Any = None
        params: StudyParams = StudyParams()
        steps: dict[str, Step] = {}
        calls: dict[str, dict[str, dict[str, float]]] = {}
        git: Git = Git()
        started: float | None = None
        finished: float | None = None

    return Manifest


def check_manifest(path: Path) -> dict[str, Any]:
    """manifest.json: a JSON object of the shape `valuelex run` writes."""
    from pydantic import ValidationError

    data = _json_product(path, None)
    if not isinstance(data, dict):
        raise _damaged(path, f"expected a JSON object, found {type(data).__name__}", None)
    try:
        _manifest_model().model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise _damaged(path, f"'{loc}': {first['msg'].lower()}", None) from None
    return data


def _json_product(path: Path, step: str | None) -> Any:
    raw = read_input_bytes(path, "run dir product", LIMITS["json_product_bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(path, "not UTF-8 text", step) from None
    if json_depth(text) > LIMITS["json_depth"] * 4:
        raise _damaged(path, "JSON nested too deeply", step)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _damaged(path, f"not valid JSON: {str(err).splitlines()[0][:80]}", step) from None


def check_product(path: Path) -> None:
    """One product file of a run dir can be read as what its name says; else which file and what to rerun."""
    step = PRODUCT_STEP.get(path.name)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pq.ParquetFile(path).read()
        except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
            raise _damaged(path, f"not a readable Parquet file: {str(err).splitlines()[0][:100]}", step) from None
    elif suffix == ".json":
        _json_product(path, step)
    elif suffix == ".ipynb":
        nb = _json_product(path, step or path.stem[:2])
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or not isinstance(nb.get("metadata"),
                                                                                               dict):
            raise _damaged(path, "not a Jupyter notebook (no cells)", path.stem[:2])
    elif suffix == ".csv":
        try:
            read_csv_rows(path, "run dir product")
        except UserError as err:
            raise _damaged(path, str(err).split(": ", 1)[-1], step) from None
    elif suffix in (".yaml", ".yml"):
        raw = read_input_bytes(path, "run dir product", LIMITS["json_product_bytes"])
        try:
            parse_yaml(raw.decode("utf-8"), str(path))
        except UnicodeDecodeError:
            raise _damaged(path, "not UTF-8 text", step) from None
        except UserError as err:
            raise _damaged(path, str(err).split(": ", 1)[-1][:120], step) from None


def check_run_products(run_dir: str | os.PathLike[str]) -> Path:
    """What `valuelex report` reads, checked before it writes: the run dir, its manifest (shape as written by
    `valuelex run`), every known product and every executed notebook."""
    p = check_path_text(run_dir, "run dir")
    if not p.is_dir():
        if p.exists():
            raise UserError(f"run dir {p} is a file, not a folder")
        raise UserError(f"run dir not found: {p}")
    manifest = p / "manifest.json"
    if not manifest.exists():
        raise UserError(f"{p} has no manifest.json: not a ValueLex run dir (run `valuelex run` first)")
    input_file(manifest, "manifest")
    check_manifest(manifest)
    for name in PRODUCT_STEP:
        if (p / name).exists():
            input_file(p / name, "run dir product")
            check_product(p / name)
    notebooks = p / "notebooks"
    if notebooks.exists() and not notebooks.is_dir():
        raise UserError(f"{notebooks}: expected the folder of executed notebooks, found a file")
    for nb in sorted(notebooks.glob("*.ipynb")) if notebooks.is_dir() else []:
        input_file(nb, "notebook")
        check_product(nb)
    report = p / "report"
    if os.path.lexists(report) and not report.is_dir():
        raise UserError(f"{report}: expected the report folder, found a file")
    return p
