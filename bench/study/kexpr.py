"""The ``-k`` selection language, as in pytest: ``lstm and packed and layers=2``.

A cell offers a set of *keywords* (every axis value as text — ``lstm``,
``scratch``, ``packed`` …, plus ``bidirectional``/``unidirectional`` and the
block name) and a mapping of *fields* (``layers=2``, ``impl=scratch``,
``T=64``). An expression combines

* a bare word: true when it is one of the cell's keywords (exact match, so
  ``lstm`` does not select ``lstm_peephole``),
* ``key=value`` / ``key!=value``: compares the field's text,
* ``and``, ``or``, ``not`` and parentheses, with the usual precedence.

``parse`` checks the syntax and the field names up front and raises
:class:`KExprError`; the result is a predicate over (keywords, fields).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

Predicate = Callable[[Collection[str], Mapping[str, str]], bool]

_TOKEN = re.compile(r"\s*(?:(\()|(\))|([A-Za-z_][\w.\-]*)\s*(!=|=)\s*([\w.\-]+)|([\w.\-]+))")


class KExprError(ValueError):
    """A selection expression that cannot be parsed."""


def _tokens(text: str) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise KExprError(f"cannot read {text[pos:].strip()!r} in selection {text!r}")
        lpar, rpar, key, op, value, word = m.groups()
        if lpar:
            out.append(("(",))
        elif rpar:
            out.append((")",))
        elif key:
            out.append(("cmp", key, op, value))
        elif word in ("and", "or", "not"):
            out.append((word,))
        else:
            out.append(("word", word))
        pos = m.end()
    return out


def parse(text: str, known_fields: Collection[str]) -> Predicate:
    """Compile ``text`` to a predicate; unknown ``key=`` names are an error."""
    toks = _tokens(text)
    if not toks:
        raise KExprError("empty selection expression")
    pos = 0

    def peek() -> tuple[str, ...] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, ...]:
        nonlocal pos
        tok = toks[pos]
        pos += 1
        return tok

    def expr() -> Predicate:
        left = term()
        while (t := peek()) is not None and t[0] == "or":
            take()
            right = term()
            left = (lambda a, b: lambda k, f: a(k, f) or b(k, f))(left, right)
        return left

    def term() -> Predicate:
        left = factor()
        while (t := peek()) is not None and t[0] == "and":
            take()
            right = factor()
            left = (lambda a, b: lambda k, f: a(k, f) and b(k, f))(left, right)
        return left

    def factor() -> Predicate:
        t = peek()
        if t is None:
            raise KExprError(f"selection {text!r} ends too early")
        take()
        if t[0] == "not":
            inner = factor()
            return lambda k, f: not inner(k, f)
        if t[0] == "(":
            inner = expr()
            if (c := peek()) is None or c[0] != ")":
                raise KExprError(f"missing ')' in selection {text!r}")
            take()
            return inner
        if t[0] == "word":
            word = t[1]
            return lambda k, f: word in k
        if t[0] == "cmp":
            _, key, op, value = t
            if key not in known_fields:
                raise KExprError(
                    f"unknown field {key!r} in selection {text!r}; fields: "
                    + ", ".join(sorted(known_fields))
                )
            if op == "=":
                return lambda k, f: f.get(key) == value
            return lambda k, f: f.get(key) != value
        raise KExprError(f"unexpected {t[0]!r} in selection {text!r}")

    pred = expr()
    if pos != len(toks):
        raise KExprError(f"unexpected {toks[pos][-1]!r} in selection {text!r}")
    return pred
