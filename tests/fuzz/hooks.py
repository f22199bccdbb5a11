"""Schemathesis hooks for DEX's fuzz run (scripts/fuzz.sh loads them via SCHEMATHESIS_HOOKS).

- Auth: the admin token of the fuzzer's own admin account on every route that takes a DEX
  token, and real test-HAT tokens (RS256, minted by tests/src/bin/fuzz-hat.rs for HATs it
  registered) on the HAT-token routes. The token file is written before the run starts.
- A check that no body carries a stack trace or Rust `Debug` text (decisions section 2).
- Slow answers are collected and printed at the end, never a failure.
"""

import itertools
import json
import os
import re
import sys
import threading

import schemathesis

_TOKENS = json.load(open(os.environ["DEX_FUZZ_TOKENS"], encoding="utf-8"))
_HAT_TOKENS = itertools.cycle([hat["token"] for hat in _TOKENS["hats"]])
# One HAT reads its log, so a cursor of its log stays its own.
_LOG_READER = _TOKENS["hats"][0]["token"]
_LOCK = threading.Lock()
SLOW_SECS = float(os.environ.get("DEX_FUZZ_SLOW_SECS", "2"))


def _is_hat_route(path: str) -> bool:
    path = path.lstrip("/")
    if path.startswith(("stats/report", "api/hat/")) or "/users/register-consent/" in f"/{path}":
        return True
    # An offer's claim and a HAT's own claim take the HAT's token.
    return path.startswith("api/v") and path.endswith(("/claim", "/userClaim"))


def _takes_hat_token(case) -> bool:
    for requirement in case.operation.definition.raw.get("security") or []:
        if "HatToken" in requirement:
            return True
    return False


def _takes_dex_token(case) -> bool:
    for requirement in case.operation.definition.raw.get("security") or []:
        if "DexToken" in requirement:
            return True
    return False


def _is_login_route(path: str) -> bool:
    return path.endswith("/users/access_token")


@schemathesis.auth(refresh_interval=None)
class DexAuth:
    """A HAT token on HAT routes, the fuzz admin's token where a DEX token goes, its username
    and password on the login routes."""

    def get(self, case, context):
        if case.operation.path.lstrip("/").startswith("api/hat/"):
            return {"X-Auth-Token": _LOG_READER}
        if _is_hat_route(case.operation.path) or _takes_hat_token(case):
            with _LOCK:
                return {"X-Auth-Token": next(_HAT_TOKENS)}
        if _is_login_route(case.operation.path):
            return {"username": _TOKENS["adminUsername"], "password": _TOKENS["adminPassword"]}
        if _takes_dex_token(case):
            return {"X-Auth-Token": _TOKENS["adminToken"]}
        return None

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers.update(data)


# The cursors each listing handed out, by operation and filters: a cursor is valid only for
# the listing (and filters) that returned it (openapi.yaml, "Listings are paginated").
_CURSORS = {}


def _listing(case):
    query = case.query if isinstance(case.query, dict) else {}
    filters = tuple(sorted((k, str(v)) for k, v in query.items() if k not in ("cursor", "limit")))
    return (case.operation.label, filters)


@schemathesis.hook
def after_call(context, case, response):
    """Remembers the cursor a listing returned, for the same listing's next call."""
    try:
        cursor = response.json().get("cursor")
    except (ValueError, AttributeError):
        return
    if isinstance(cursor, str) and response.status_code == 200:
        with _LOCK:
            _CURSORS.setdefault(_listing(case), set()).add(cursor)


@schemathesis.hook
def before_call(context, case, kwargs):
    """Keeps the fuzzer from locking itself out, and from calling a foreign cursor valid.

    - It must not decertify the cluster of the HATs it signs as, nor change its own account
      (it finds both in listings): such calls go to a spare cluster and a spare account.
    - A cursor is opaque: only one the same listing returned is valid. Any other cursor in a
      positive case (invented, or reused from another listing or other filters) is dropped;
      negative cases keep theirs, which DEX must refuse.
    """
    params = case.path_parameters or {}
    if params.get("domain") == _TOKENS["cluster"]:
        params["domain"] = _TOKENS["spareCluster"]
    if params.get("accountId") == _TOKENS["adminId"]:
        params["accountId"] = _TOKENS["spareAccount"]
    query = case.query
    if (
        isinstance(query, dict)
        and "cursor" in query
        and case.meta is not None
        and case.meta.generation.mode.is_positive
    ):
        with _LOCK:
            known = str(query["cursor"]) in _CURSORS.get(_listing(case), ())
        if not known:
            del query["cursor"]


# What a Rust panic, a backtrace or a `{:?}` of an error or struct looks like.
_LEAKS = [
    (re.compile(r"panicked at"), "a panic message"),
    (re.compile(r"stack backtrace|RUST_BACKTRACE"), "a backtrace"),
    (re.compile(r"\b[\w/-]+\.rs:\d+"), "a Rust source location"),
    (re.compile(r"\b(Some|Ok|Err)\((?!\))"), "an Option/Result Debug dump"),
    (re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Failure|Exception)\s*[({]"), "an error's Debug dump"),
    (re.compile(r"\b[A-Z][A-Za-z0-9]+ \{ [a-z_][a-z0-9_]*: "), "a struct's Debug dump"),
    (re.compile(r"\bat [\w:<>]+::[\w<>]+ \("), "a stack frame"),
]


@schemathesis.check
def no_debug_text(ctx, response, case):
    """No stack trace or Rust Debug text in any body."""
    text = response.content.decode("utf-8", errors="replace")
    for pattern, what in _LEAKS:
        found = pattern.search(text)
        if found:
            start = max(found.start() - 60, 0)
            raise AssertionError(
                f"the body contains {what}: ...{text[start:found.end() + 60]}..."
            )


@schemathesis.check
class ReportSlowAnswers:
    """Lists answers slower than DEX_FUZZ_SLOW_SECS at the end of the run; never fails."""

    def __init__(self):
        self.slow = {}

    def after_response(self, ctx, response, case):
        if response.elapsed >= SLOW_SECS:
            label = case.operation.label
            self.slow[label] = max(self.slow.get(label, 0.0), response.elapsed)
        return None

    def after_run(self, ctx):
        if not self.slow:
            print(f"fuzz: no answer took {SLOW_SECS:g}s or more", file=sys.stderr)
            return
        print(f"fuzz: answers slower than {SLOW_SECS:g}s (reported, not failures):", file=sys.stderr)
        for label, secs in sorted(self.slow.items(), key=lambda kv: -kv[1]):
            print(f"fuzz:   {label}: slowest {secs:.2f}s", file=sys.stderr)
