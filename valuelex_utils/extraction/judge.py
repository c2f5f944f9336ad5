"""The optional judgment (the second half of f in paper Eq. 1, the paper's GPT-4 judgment): an LLM keeps only the
words that name a value. Every call goes through the shared LLM layer (`roles`)."""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Sequence

from valuelex_utils.errors import UserError
from valuelex_utils.llm.roles import RoleCaller

Messages = list[dict[str, str]]
LLM_FILTER_SYSTEM = (
    "You help build a lexicon of value words. A value word names a value, virtue, principle or desirable quality "
    "of a person or an AI assistant, as a noun or an adjective (honesty, helpful, fairness, family, freedom, "
    "user-friendly). Ordinary words that name no value (table, response, model, quickly, the) are not value words."
)
LLM_FILTER_USER = (
    "Here is a JSON list of words. Answer with only a JSON list containing the words that are value words, spelled "
    "exactly as given, in the same order.\n{words}"
)


def llm_filter_messages(words: Sequence[str]) -> Messages:
    """The chat messages for one batch (deterministic, so the response store can cache them by content)."""
    return [
        {"role": "system", "content": LLM_FILTER_SYSTEM},
        {"role": "user", "content": LLM_FILTER_USER.format(words=json.dumps(list(words), ensure_ascii=False))},
    ]


def _parse_word_list(reply: str) -> set[str] | None:
    """The words of the first JSON list in a reply (models wrap it in prose or code fences); None if there is none."""
    start, end = reply.find("["), reply.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        parsed = json.loads(reply[start:end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list):
        return None
    return {str(item).strip().lower() for item in parsed if isinstance(item, (str, int, float))}


FILTER_BATCH = 50  # distinct words per prompt: one call judges many words, and the answer stays short


def filter_decoding(seed: int = 0, batch_size: int = FILTER_BATCH) -> dict[str, int | float]:
    """Decoding of the judgment calls: greedy, seeded, and room for the whole batch echoed back as a JSON list (about
    8 tokens a word), so a list is never cut off mid-way."""
    return {"temperature": 0.0, "seed": int(seed), "max_tokens": 8 * batch_size + 32}


def _ask_batches(call: Callable[[Messages], str], prompts: list[Messages]) -> list[str]:
    """Every prompt's answer: all at once through `call.batch` (the shared LLM layer: concurrent, stored, retried),
    else one by one."""
    many = getattr(call, "batch", None)
    if callable(many):
        return list(many(prompts))
    return [call(messages) for messages in prompts]


def llm_judgment(words: Iterable[str], call: Callable[[Messages], str], *, batch_size: int = FILTER_BATCH,
                 model: str = "the judge") -> dict[str, bool | None]:
    """The judge's verdict on each distinct word (lower-cased): True when it names a value, False when not, None when
    its batch got no readable verdict.

    A batch whose reply holds no JSON list (or whose call failed) keeps all its words (None), with a warning: a broken
    verdict must not silently erase descriptors."""
    if batch_size < 1:
        raise UserError(f"llm_filter: batch_size must be >= 1, got {batch_size}")
    unique = list(dict.fromkeys(w.strip().lower() for w in words if w.strip()))
    batches = [unique[i:i + batch_size] for i in range(0, len(unique), batch_size)]
    replies = _ask_batches(call, [llm_filter_messages(b) for b in batches])
    verdicts: dict[str, bool | None] = {}
    for batch, reply in zip(batches, replies):
        named = _parse_word_list(reply)
        if named is None:
            warnings.warn(f"llm_filter: {model} gave no JSON list; kept the batch of {len(batch)} words", stacklevel=2)
        verdicts.update((w, None if named is None else w in named) for w in batch)
    return verdicts


def llm_filter(
    words: Sequence[str],
    model: str,
    call: Callable[[Messages], str] | None = None,
    *,
    batch_size: int = FILTER_BATCH,
) -> list[str]:
    """Keep only the words an LLM judges to name a value (the second half of f in Eq. 1, the paper's GPT-4 judgment).

    `call(messages) -> reply text` makes the request; the pipeline and the CLI pass a `roles.RoleCaller` (answers
    stored and cached, batches sent concurrently, retried); without one, a throw-away `RoleCaller` on `model` is used.
    Words keep their order. See `llm_judgment` for unparseable replies.
    """
    if call is None:
        call = RoleCaller(model, None, role="extraction judge", step="extract",
                          params=filter_decoding(0, batch_size))
    verdicts = llm_judgment(words, call, batch_size=batch_size, model=model)
    return [w for w in words if verdicts.get(w.strip().lower(), False) is not False]
