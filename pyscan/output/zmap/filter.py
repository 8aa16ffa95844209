"""zmap's --output-filter: its grammar (src/lexer.l, src/parser.y), its type rules
(src/filter.c) and its evaluation (src/expression.c), over zmap's field names.

    expr    := expr '||' expr | expr '&&' expr | '(' expr ')' | compare   ('&&' binds tighter)
    compare := FIELD ('=' | '!=' | '>' | '<' | '>=' | '<=') NUMBER
             | FIELD ('=' | '!=') WORD

An int field compares with a number, a string field with a bare word (`classification =
synack`); anything else is refused before the scan, as zmap refuses it. The grammar is eight
tokens and one precedence rule: a hand-written recursive descent parser is shorter than the
glue a parser library would need, and gives zmap's own error texts.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pyscan.output.zmap.fields import ZmapFieldError, field

__all__ = ["FilterError", "OutputFilter", "parse_filter"]


class FilterError(ValueError):
    """A filter zmap would not accept; one line naming what is wrong."""


_TOKEN = re.compile(r"\s*(?:(?P<number>[0-9]+)|(?P<op>!=|>=|<=|&&|\|\||[=<>()])"
                    r"|(?P<word>[A-Za-z][-_A-Za-z0-9]*))")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
    ">=": operator.ge, "<=": operator.le,
}


@dataclass(frozen=True)
class _Compare:
    field: str
    op: str
    value: int | str

    def __call__(self, record: Mapping[str, object]) -> bool:
        actual = record.get(self.field)
        if actual is None:
            return False
        return _COMPARE[self.op](actual, self.value)


@dataclass(frozen=True)
class _Both:
    left: _Node
    right: _Node
    any_of: bool  # True: '||', False: '&&'

    def __call__(self, record: Mapping[str, object]) -> bool:
        if self.any_of:
            return self.left(record) or self.right(record)
        return self.left(record) and self.right(record)


_Node = _Compare | _Both


@dataclass(frozen=True)
class OutputFilter:
    """A parsed filter: `matches(record)` over {field name: value}; `fields` it reads."""

    text: str
    root: _Node
    fields: tuple[str, ...]

    def matches(self, record: Mapping[str, object]) -> bool:
        return self.root(record)


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            return
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"unable to parse filter {text!r}: unexpected "
                              f"{text[position:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        yield kind, match.group(kind)
        position = match.end()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(_tokens(text))
        self.index = 0
        self.fields: list[str] = []

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("it ends too early")
        self.index += 1
        return token

    def error(self, why: str) -> FilterError:
        return FilterError(f"unable to parse filter {self.text!r}: {why} (accepted: zmap's "
                           "grammar, like 'success = 1 && repeat = 0')")

    def parse(self) -> _Node:
        node = self.any_of()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def any_of(self) -> _Node:
        node = self.all_of()
        while self.peek() == ("op", "||"):
            self.take()
            node = _Both(node, self.all_of(), any_of=True)
        return node

    def all_of(self) -> _Node:
        node = self.term()
        while self.peek() == ("op", "&&"):
            self.take()
            node = _Both(node, self.term(), any_of=False)
        return node

    def term(self) -> _Node:
        kind, text = self.take()
        if (kind, text) == ("op", "("):
            node = self.any_of()
            if self.peek() is None or self.take() != ("op", ")"):
                raise self.error("a '(' is not closed")
            return node
        if kind != "word":
            raise self.error(f"expected a field name, not {text!r}")
        return self.compare(text)

    def compare(self, name: str) -> _Compare:
        op_kind, op = self.take()
        if op_kind != "op" or op not in _COMPARE:
            raise self.error(f"expected a comparison after {name!r}, not {op!r}")
        value_kind, value = self.take()
        if value_kind not in ("number", "word"):
            raise self.error(f"expected a number or a word after {name} {op}, not {value!r}")
        try:
            item = field(name)
        except ZmapFieldError as error:
            if "unknown" in str(error):
                raise FilterError(f"Field '{name}' does not exist (accepted: "
                                  f"{str(error).partition('accepted: ')[2]}") from None
            raise FilterError(str(error)) from None
        if value_kind == "number":
            if item.type != "int":
                raise FilterError(f"Field '{name}' is not of type 'int' in filter "
                                  f"{self.text!r} (accepted: {name} = WORD)")
            self.fields.append(name)
            return _Compare(name, op, int(value))
        if item.type != "string":
            raise FilterError(f"Field '{name}' is not of type 'string' in filter "
                              f"{self.text!r} (accepted: {name} OP NUMBER)")
        if op not in ("=", "!="):
            raise self.error(f"a string field compares only with = or !=, not {op!r}")
        self.fields.append(name)
        return _Compare(name, op, value)


def parse_filter(text: str) -> OutputFilter:
    """Parse and type-check a zmap output filter; FilterError names what is wrong."""
    if not text.strip():
        raise FilterError("empty output filter (accepted: zmap's grammar, like "
                          "'success = 1 && repeat = 0')")
    parser = _Parser(text)
    root = parser.parse()
    return OutputFilter(text, root, tuple(dict.fromkeys(parser.fields)))
