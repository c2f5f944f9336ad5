"""Secrets never leave the process: one scrubber applied at every boundary where ValueLex writes or prints.

What counts as a secret (`secrets()`), gathered fresh on each call because a kernel or a worker process sees its own
environment:
- the value of every environment variable LiteLLM reads a provider key from (its OpenAI-compatible provider list, and
  its own deny-list of key names when LiteLLM is already imported), and of every variable whose name ends like a key
  (`SECRET_NAME_SUFFIXES`: `_API_KEY`, `_TOKEN`, `_SECRET`, ...);
- the value of every variable named by an `api_key_env` (`register_key_env`, called where a key is read);
- credentials written into a URL (`https://user:secret@host/v1`): any `scheme://userinfo@` in a text is masked, and the
  user name and password of every `api_base` seen are secrets too (a provider may echo them without the URL).

Where it is applied: the response store and `calls.jsonl` (each line before it is written), `atomic_write_text` (params
copy, manifest, report pages, products), executed notebooks (papermill writes them through `ScrubbedNotebookIO`), and
the CLI's stdout and stderr (`ScrubbingStream`, which the child running a step's notebook pipes through too).

Why a value and not a pattern: a provider echoes the key it received ("Incorrect API key provided: sk-...") in an
error body, which ends up in the store, a notebook's traceback, the manifest's step error and the report; a key of an
unknown format is still found by its value. Values shorter than `MIN_SECRET_LEN` are left alone (a variable such as
`FOO_TOKEN=1` would blank every digit 1).
"""
from __future__ import annotations

import io
import json
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from .atomic import atomic_path

MASK = "***"
MIN_SECRET_LEN = 8
SECRET_NAME_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_CREDENTIALS", "_AUTH")
URL_SECRETS_ENV = "VALUELEX_URL_SECRETS"  # JSON {masked api_base: real api_base}, for the step's kernel only
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s@\"'<>]+)@")
_registered_envs: set[str] = set()
_registered_values: set[str] = set()


@lru_cache(maxsize=1)
def litellm_key_names() -> frozenset[str]:
    """Names of the environment variables LiteLLM reads provider keys from, as far as LiteLLM lists them: its
    OpenAI-compatible providers file (read from disk, so the CLI need not import LiteLLM) and, once LiteLLM is
    imported anyway, its Sentry deny-list of key names. Names it reads without listing them still match
    `SECRET_NAME_SUFFIXES` (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `AZURE_API_KEY`, ...)."""
    import importlib.util

    names: set[str] = set()
    spec = importlib.util.find_spec("litellm")
    try:
        folder = Path(list(spec.submodule_search_locations)[0])  # type: ignore[union-attr]
        data = json.loads((folder / "llms" / "openai_like" / "providers.json").read_text(encoding="utf-8"))
        names |= {str(v["api_key_env"]) for v in data.values() if isinstance(v, dict) and v.get("api_key_env")}
    except (AttributeError, IndexError, OSError, ValueError, TypeError):
        pass
    constants = sys.modules.get("litellm.constants")
    for name in getattr(constants, "SENTRY_DENYLIST", ()):
        if isinstance(name, str) and name.isupper():
            names.add(name)
    return frozenset(names)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable of this name holds a secret."""
    upper = name.upper()
    return name in _registered_envs or name in litellm_key_names() or upper.endswith(SECRET_NAME_SUFFIXES)


def register_key_env(name: str | None) -> None:
    """Treat the value of variable `name` (an `api_key_env`) as a secret, whatever its name looks like."""
    if name:
        _registered_envs.add(name)


def read_key(name: str) -> str:
    """The value of the `api_key_env` variable `name` (KeyError when unset), registered as a secret first."""
    register_key_env(name)
    return os.environ[name]


def url_credentials(url: str) -> list[str]:
    """The user name and password written into a URL (`https://user:pw@host`), decoded, or []."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return [p for piece in userinfo.split(":", 1) for p in {piece, unquote(piece)} if p]


def register_url(url: str | None) -> None:
    """Treat the credentials in an `api_base` URL as secrets."""
    if url:
        _registered_values.update(url_credentials(url))


def mask_url(url: str) -> str:
    """`https://user:secret@host/v1` -> `https://***@host/v1` (a URL without credentials is returned as is)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(rf"\g<1>{MASK}@", url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f"{MASK}@{parts.netloc.rsplit('@', 1)[1]}"))


def unmask_url(url: str) -> str:
    """The real URL behind a masked one, when the runner handed it to this process (`URL_SECRETS_ENV`); else `url`.

    The run dir's params copy holds masked URLs; the step's kernel gets the real ones through its environment, which
    papermill does not record."""
    if f"{MASK}@" not in url:
        return url
    real = _url_secrets().get(url)
    return real if real else url


def url_secrets_env(urls: Iterable[str]) -> dict[str, str]:
    """The environment entry that lets a child process unmask these URLs (empty when none has credentials)."""
    table = {mask_url(u): u for u in urls if mask_url(u) != u}
    return {URL_SECRETS_ENV: json.dumps(table)} if table else {}


def _url_secrets() -> dict[str, str]:
    try:
        table = json.loads(os.environ.get(URL_SECRETS_ENV) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in table.items()} if isinstance(table, dict) else {}


def secrets() -> list[str]:
    """Every secret value this process can see, longest first (so that a key containing another is masked whole)."""
    found = set(_registered_values)
    for name, value in os.environ.items():
        if name == URL_SECRETS_ENV:
            for real in _url_secrets().values():
                found.update(url_credentials(real))
        elif value and is_secret_name(name):
            found.add(value)
    found = {s.strip() for s in found if s and len(s.strip()) >= MIN_SECRET_LEN}
    variants = set(found)
    for s in found:  # the same key inside a JSON string (a store line, a notebook) may be escaped
        variants.add(json.dumps(s)[1:-1])
        variants.add(json.dumps(s, ensure_ascii=False)[1:-1])
    return sorted(variants, key=len, reverse=True)


def scrub(text: str, known: list[str] | None = None) -> str:
    """`text` with every secret value replaced by `MASK` and every URL's credentials masked."""
    if not text:
        return text
    for secret in secrets() if known is None else known:
        if secret in text:
            text = text.replace(secret, MASK)
    if "@" in text:
        text = _USERINFO.sub(rf"\g<1>{MASK}@", text)
    return text


def scrub_obj(obj: Any, known: list[str] | None = None) -> Any:
    """A JSON-like object with every string scrubbed (keys included)."""
    known = secrets() if known is None else known
    if isinstance(obj, str):
        return scrub(obj, known)
    if isinstance(obj, dict):
        return {scrub(k, known) if isinstance(k, str) else k: scrub_obj(v, known) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_obj(v, known) for v in obj]
    return obj


class ScrubbingStream(io.TextIOBase):
    """A text stream that scrubs whole lines before passing them on (a secret split across two writes would slip
    through a per-write scrub; a line is the unit a terminal shows)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._buf = ""

    def write(self, s: str) -> int:
        self._buf += s
        if "\n" in self._buf:
            head, self._buf = self._buf.rsplit("\n", 1)
            self.inner.write(scrub(head + "\n"))
        return len(s)

    def flush(self) -> None:
        if self._buf:
            self.inner.write(scrub(self._buf))
            self._buf = ""
        self.inner.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.inner, "isatty", lambda: False)())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.inner.fileno()


def scrub_std_streams() -> None:
    """Route this process's stdout and stderr (tracebacks and logging included) through the scrubber."""
    if not isinstance(sys.stdout, ScrubbingStream):
        sys.stdout = ScrubbingStream(sys.stdout)
    if not isinstance(sys.stderr, ScrubbingStream):
        sys.stderr = ScrubbingStream(sys.stderr)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write via a temp file and a rename (`atomic_path`), so a killed run never leaves a half-written product or
    manifest; every secret the process can see is masked first (`scrub`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(scrub(text))
    return Path(path)


class ScrubbedNotebookIO:
    """A papermill I/O handler for `scrubbed://<path>`: every save of the executed notebook (papermill saves after
    each cell) is scrubbed and written atomically to `<path>`, so a notebook cut by a kill holds no key either."""

    SCHEME = "scrubbed://"

    @classmethod
    def path_of(cls, path: str) -> str:
        return path[len(cls.SCHEME):] if path.startswith(cls.SCHEME) else path

    @classmethod
    def read(cls, path: str) -> str:
        return Path(cls.path_of(path)).read_text(encoding="utf-8")

    @classmethod
    def listdir(cls, path: str) -> list[str]:
        return os.listdir(cls.path_of(path))

    @classmethod
    def write(cls, buf: str, path: str) -> None:
        real = cls.path_of(path)
        # papermill records its output path in the notebook's metadata: record the file, not this handler's scheme
        atomic_write_text(real, buf.replace(json.dumps(path)[1:-1], json.dumps(real)[1:-1]))  # (and scrubs)

    @classmethod
    def pretty_path(cls, path: str) -> str:
        return cls.path_of(path)


def register_papermill_io() -> None:
    """Make papermill write `scrubbed://` paths through `ScrubbedNotebookIO`."""
    from papermill.iorw import papermill_io

    papermill_io.register(ScrubbedNotebookIO.SCHEME, ScrubbedNotebookIO)
