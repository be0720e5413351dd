"""Tokenizers of the reference documents, reproduced rule for rule.

``basic_english`` equals torchtext's ``get_tokenizer("basic_english")``: lower-case, then
twelve regex substitutions in torchtext's order, then whitespace split. Note that torchtext
*drops* ``;`` and ``:`` (they become a space) while it splits off ``. , ( ) ! ?`` as tokens,
deletes ``"`` and turns ``'`` into a token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# (pattern, replacement) exactly as torchtext.data.utils lists them, in the same order.
_BASIC_ENGLISH_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    )
)


def basic_english(text: str) -> list[str]:
    """torchtext's basic_english tokenizer (same normalisation, same punctuation splits)."""
    line = text.lower()
    for pattern, replacement in _BASIC_ENGLISH_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


_SEP = "\x00"
# The same rules as plain str.replace calls, reordered where that provably changes nothing:
# deleting '"' commutes with the "'" rule, and no rule but '"' can create or destroy a
# "<br />" (the others only insert spaces next to the character they expand), so "<br />"
# can go right after '"'. The final \s+ rule is what str.split() does anyway.
_FAST_RULES: tuple[tuple[str, str], ...] = (
    ('"', ""),
    ("<br />", " "),
    ("'", " '  "),
    (".", " . "),
    (",", " , "),
    ("(", " ( "),
    (")", " ) "),
    ("!", " ! "),
    ("?", " ? "),
    (";", " "),
    (":", " "),
)


def basic_english_many(texts: Sequence[str]) -> list[list[str]]:
    """``[basic_english(t) for t in texts]``, about ten times faster on a large corpus.

    It applies ``_FAST_RULES`` once to the NUL-joined texts; no rule can match across the
    separator. Tests compare it with ``basic_english`` on the real data and on edge cases."""
    if not texts:
        return []
    if any(_SEP in t for t in texts):
        return [basic_english(t) for t in texts]
    joined = _SEP.join(texts).lower()
    for old, new in _FAST_RULES:
        joined = joined.replace(old, new)
    return [part.split() for part in joined.split(_SEP)]


def seinfeld_token_lookup(question_mark_quirk: bool = True) -> dict[str, str]:
    """The Udacity project's ``token_lookup`` as the seed prints it.

    The seed maps ``?`` to ``||period||`` (a quirk kept by default for faithful runs);
    ``question_mark_quirk=False`` gives it its own ``||question_mark||`` token."""
    return {
        ".": "||period||",
        ",": "||comma||",
        '"': "||quotation_mark||",
        ";": "||semicolon||",
        "!": "||exclamation_mark||",
        "?": "||period||" if question_mark_quirk else "||question_mark||",
        "(": "||left_parenthesis||",
        ")": "||right_parenthesis||",
        "-": "||double_hyphen||",
        "\n": "||newline||",
    }


def punctuation_to_tokens(text: str, token_dict: dict[str, str]) -> list[str]:
    """Udacity's helper: replace each key by `` token ``, lower-case, whitespace split."""
    for key, token in token_dict.items():
        text = text.replace(key, f" {token} ")
    return text.lower().split()


def d2l_char_tokens(text: str) -> list[str]:
    """d2l 1.0 TimeMachine: runs of non-letters become one space, lower-case, characters."""
    return list(re.sub("[^A-Za-z]+", " ", text).lower())
