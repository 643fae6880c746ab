"""Parse SCIM filters (RFC 7644 3.4.2.2), attribute paths and PATCH paths (RFC 7644 3.5.2).

Grammar (Figure 1), with ``not`` binding tighter than ``and``, ``and`` tighter than ``or``::

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" valFilter ")"
    valuePath = attrPath "[" valFilter "]"   ; valFilter: FILTER without valuePath
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    attrPath  = [URI ":"] ATTRNAME *1subAttr

Keywords and operators are case-insensitive and land lower-case in the AST; attribute names
keep the client's spelling. Parsed results are cached: AST nodes are immutable.

A hostile filter costs a bounded, linear amount of work (``scim.limits``): at most
``MAX_FILTER_LENGTH`` characters and ``MAX_FILTER_EXPRESSIONS`` expressions, parentheses nested at
most 50 deep, and a chain ``a or b or c ...`` becomes a balanced tree rather than a left-deep one,
so every recursive walk of the AST (SQL compilation, evaluation, hashing, ``repr``) stays
logarithmically shallow in the chain's length. Literals are checked as documents are: no NUL, no
lone surrogate, numbers that fit in 64 bits or a double.
"""

from __future__ import annotations

import json
import logging
import math
import re
from functools import lru_cache
from typing import NamedTuple, NoReturn

from scimward.scim.ast import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    CompValue,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
)
from scimward.scim.errors import InvalidFilter, InvalidPath, ScimError
from scimward.scim.limits import (
    MAX_FILTER_EXPRESSIONS,
    MAX_FILTER_LENGTH,
    MAX_FILTER_NESTING,
    MAX_NUMBER_LENGTH,
    check_integer,
    text_problem,
)

__all__ = ["parse_attr_path", "parse_filter", "parse_patch_path"]

_ATTRNAME = r"(?:[A-Za-z][A-Za-z0-9_-]*|\$ref)"
# The URN is everything up to the last ':'; ATTRNAME cannot contain ':' so the split is unique.
_PATH_RE = re.compile(
    rf"(?:(?P<urn>urn:[A-Za-z0-9_.:-]+):)?(?P<attr>{_ATTRNAME})(?:\.(?P<sub>{_ATTRNAME}))?", re.IGNORECASE
)
_SUB_ATTR_RE = re.compile(rf"\.({_ATTRNAME})")

_TOKEN_RE = re.compile(
    r"""
      (?P<ws>[ \t]+)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    | (?P<word>[A-Za-z$][A-Za-z0-9_$:.-]*)
    | (?P<punct>[()\[\].])
    """,
    re.VERBOSE | re.DOTALL,
)
# Without this, `eq"x"` or `1and` would silently split into two tokens.
_AFTER_ATOM = frozenset(" \t()[]")
_CLOSERS = {"(": ")", "[": "]"}

log = logging.getLogger("scimward.scim.filter")


class _Token(NamedTuple):
    kind: str  # "str", "num", "word", or the punctuation character itself
    text: str
    pos: int


def _describe(token: _Token | None) -> str:
    return "end of input" if token is None else f"{token.text!r} at position {token.pos}"


def _split_path(text: str) -> AttrPath | None:
    match = _PATH_RE.fullmatch(text)
    if match is None:
        return None
    return AttrPath(match["urn"], match["attr"], match["sub"])


def _tokenize(text: str, error: type[ScimError]) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            what = "unterminated string" if text[pos] == '"' else f"unexpected character {text[pos]!r}"
            raise error(f"{what} at position {pos}")
        kind = match.lastgroup or ""
        end = match.end()
        if kind != "ws":
            tokens.append(_Token(match[0] if kind == "punct" else kind, match[0], pos))
        if kind in ("str", "num", "word") and end < len(text) and text[end] not in _AFTER_ATOM:
            raise error(f"expected whitespace after {match[0]!r} at position {end}")
        pos = end
    return tokens


class _Parser:
    def __init__(self, text: str, error: type[ScimError]) -> None:
        self.error = error
        self.tokens = _tokenize(text, error)
        self.index = 0
        self.depth = 0
        self.expressions = 0

    def fail(self, message: str) -> NoReturn:
        raise self.error(message)

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            self.fail(f"expected {expected} but reached end of input")
        self.index += 1
        return token

    def take_keyword(self, keyword: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == keyword:
            self.index += 1
            return True
        return False

    def close(self, opener: _Token) -> None:
        closer = _CLOSERS[opener.kind]
        token = self.peek()
        if token is None:
            self.fail(f"unbalanced {opener.kind!r} at position {opener.pos}: missing {closer!r}")
        if token.kind != closer:
            self.fail(f"expected 'and', 'or' or {closer!r} but found {_describe(token)}")
        self.index += 1

    def finish(self) -> None:
        token = self.peek()
        if token is None:
            return
        if token.kind in (")", "]"):
            self.fail(f"unbalanced {_describe(token)}")
        self.fail(f"expected 'and' or 'or' but found {_describe(token)}")

    def filter(self, nested: bool) -> Filter:
        terms = [self.conjunction(nested)]
        while self.take_keyword("or"):
            terms.append(self.conjunction(nested))
        return _balanced(Or, terms)

    def conjunction(self, nested: bool) -> Filter:
        terms = [self.term(nested)]
        while self.take_keyword("and"):
            terms.append(self.term(nested))
        return _balanced(And, terms)

    def term(self, nested: bool) -> Filter:
        token = self.take("an attribute path, 'not' or '('")
        if token.kind == "(":
            return self.group(token, nested)
        if token.kind == "word" and token.text.lower() == "not":
            following = self.peek()
            if following is not None and following.kind == "(":
                self.index += 1
                return Not(self.group(following, nested))
            # ATTRNAME allows an attribute literally called "not"; only an operator tells them apart.
            if following is None or following.text.lower() not in COMPARE_OPS | {"pr"}:
                self.fail(f"expected '(' after 'not' at position {token.pos}, found {_describe(following)}")
        path = self.path(token, relative=nested)
        following = self.peek()
        if following is not None and following.kind == "[":
            return self.value_path(path, following, nested)
        return self.attr_exp(path, token)

    def group(self, opener: _Token, nested: bool) -> Filter:
        # Bounded so a hostile `((((...` is a 400, not a RecursionError.
        self.depth += 1
        if self.depth > MAX_FILTER_NESTING:
            self.fail(f"{_describe(opener)}: parentheses nested deeper than {MAX_FILTER_NESTING}")
        inner = self.filter(nested)
        self.close(opener)
        self.depth -= 1
        return inner

    def path(self, token: _Token, relative: bool) -> AttrPath:
        if token.kind != "word":
            self.fail(f"expected an attribute path but found {_describe(token)}")
        path = _split_path(token.text)
        if path is None:
            self.fail(f"invalid attribute path {_describe(token)}")
        if relative and (path.schema or path.sub_attr):
            self.fail(f"a path inside '[...]' must be a plain sub-attribute name, not {_describe(token)}")
        return path

    def bracket(self, path: AttrPath, opener: _Token, nested: bool) -> Filter:
        if nested:
            self.fail(f"nested '[' at position {opener.pos}: value filters cannot be nested")
        if path.sub_attr:
            self.fail(f"'[' at position {opener.pos} must follow an attribute, not sub-attribute {path}")
        self.index += 1
        inner = self.filter(nested=True)
        self.close(opener)
        return inner

    def value_path(self, path: AttrPath, opener: _Token, nested: bool) -> ValuePath:
        inner = self.bracket(path, opener, nested)
        token = self.peek()
        if token is not None and token.kind == ".":
            # ``emails[type eq "work"].value eq "x"`` is not in RFC 7644's grammar, but Microsoft Entra
            # sends it when the work e-mail is a matching attribute. It means: some work e-mail is "x".
            self.index += 1
            sub_token = self.take("a sub-attribute after ']'.")
            sub = self.path(sub_token, relative=True)
            log.debug("filter rewrite value-path-sub-attribute: %s[...].%s read as one element's test", path, sub)
            return ValuePath(path, And(inner, self.attr_exp(sub, sub_token)))
        return ValuePath(path, inner)

    def attr_exp(self, path: AttrPath, path_token: _Token) -> Filter:
        op_token = self.take(f"an operator after {path_token.text!r}")
        op = op_token.text.lower()
        if op_token.kind != "word" or (op != "pr" and op not in COMPARE_OPS):
            self.fail(f"unknown operator {_describe(op_token)}")
        self.expressions += 1
        if self.expressions > MAX_FILTER_EXPRESSIONS:
            self.fail(f"the filter combines more than {MAX_FILTER_EXPRESSIONS} expressions")
        if op == "pr":
            return Present(path)
        return Compare(path, op, self.value(op_token))

    def value(self, op_token: _Token) -> CompValue:
        token = self.peek()
        if token is None or token.kind not in ("str", "num", "word"):
            self.fail(f"missing value after {_describe(op_token)}, found {_describe(token)}")
        self.index += 1
        if token.kind == "str":
            try:
                text: str = json.loads(token.text)
            except json.JSONDecodeError as exc:
                self.fail(f"invalid string {_describe(token)}: {exc.msg}")
            problem = text_problem(text)
            if problem is not None:
                self.fail(f"the string at position {token.pos} contains {problem}, which cannot be stored or matched")
            return text
        if token.kind == "num":
            return self.number(token)
        literals: dict[str, CompValue] = {"true": True, "false": False, "null": None}
        if token.text.lower() not in literals:
            self.fail(f"invalid value {_describe(token)}: strings must be double-quoted JSON strings")
        return literals[token.text.lower()]

    def number(self, token: _Token) -> int | float:
        # int() of 5,000 digits raises ValueError and float() of 400 gives inf: refuse both by length first.
        if len(token.text) > MAX_NUMBER_LENGTH:
            self.fail(f"number at position {token.pos} has more than {MAX_NUMBER_LENGTH} characters")
        if any(c in token.text for c in ".eE"):
            number = float(token.text)
            if not math.isfinite(number):
                self.fail(f"number out of range {_describe(token)}")
            return number
        return check_integer(int(token.text), f"the number at position {token.pos}", self.error)


def _balanced(node: type[And] | type[Or], terms: list[Filter]) -> Filter:
    """``t1 op t2 op ... tn`` as a balanced tree (the operators are associative); a chain of three is
    still ``(t1 op t2) op t3``."""
    if len(terms) == 1:
        return terms[0]
    middle = (len(terms) + 1) // 2
    return node(_balanced(node, terms[:middle]), _balanced(node, terms[middle:]))


def _check_length(text: str, what: str, error: type[ScimError]) -> None:
    if len(text) > MAX_FILTER_LENGTH:
        raise error(f"the {what} has {len(text)} characters; at most {MAX_FILTER_LENGTH} are allowed")


@lru_cache(maxsize=1024)
def parse_filter(text: str) -> Filter:
    """Parse a ``filter`` expression; raise InvalidFilter naming the offending position or token."""
    _check_length(text, "filter", InvalidFilter)
    parser = _Parser(text, InvalidFilter)
    if not parser.tokens:
        raise InvalidFilter("empty filter")
    result = parser.filter(nested=False)
    parser.finish()
    return result


@lru_cache(maxsize=1024)
def parse_attr_path(text: str) -> AttrPath:
    """Parse ``[schemaURN ":"] attr ["." subAttr]`` as used by ``attributes=`` and ``sortBy=``.

    Surrounding whitespace is ignored because clients write ``attributes=userName, emails``.
    Raises InvalidPath.
    """
    path = _split_path(text.strip())
    if path is None:
        raise InvalidPath(f"invalid attribute path {text!r}")
    return path


@lru_cache(maxsize=1024)
def parse_patch_path(text: str) -> PatchPath:
    """Parse a PATCH ``path``: ``attrPath`` or ``valuePath ["." subAttr]`` (RFC 7644 3.5.2).

    Every error, including a malformed filter inside the brackets, raises InvalidPath: RFC 7644
    3.5.2 names invalidPath for a bad path, and one error type is simpler for the PATCH engine.
    """
    _check_length(text, "PATCH path", InvalidPath)
    parser = _Parser(text, InvalidPath)
    first = parser.take("an attribute path")
    path = parser.path(first, relative=False)
    opener = parser.peek()
    if opener is None:
        return PatchPath(path)
    if opener.kind != "[":
        parser.fail(f"unexpected {_describe(opener)} in PATCH path")
    inner = parser.bracket(path, opener, nested=False)
    # The tokenizer would accept `] . value`; the grammar wants `.subAttr` glued to the bracket.
    rest = text[parser.tokens[parser.index - 1].pos + 1 :].rstrip(" \t")
    tail = _SUB_ATTR_RE.fullmatch(rest)
    if rest and tail is None:
        raise InvalidPath(f"expected '.subAttribute' or end of path after ']' but found {rest!r}")
    return PatchPath(path, inner, tail[1] if tail else None)
