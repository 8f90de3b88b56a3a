"""Placement policy text: one rule per pool that sends a fileset named `{pool}-...` to `pool`.

A space's fileset is named `{pool}-{space}`, so these rules are what puts its data in the
pool of its profile. Existing rules are kept as they are; a default rule (a placement rule
without a condition) always comes last, since the first matching rule wins.
"""
from __future__ import annotations

import re

from .base import Filesystem, Driver

NO_POLICY = "No policy file was installed"
_RULE = re.compile(r"\bRULE\b", re.IGNORECASE)
_NAME = re.compile(r"""\s*RULE\s+(?:'([^']*)'|"([^"]*)")""", re.IGNORECASE)


def placement_rule(pool: str) -> str:
    return f"RULE '{pool}-placement' SET POOL '{pool}'\n WHERE FILESET_NAME LIKE '{pool}-%'"


def default_rule(pool: str) -> str:
    return f"RULE 'default' SET POOL '{pool}'"


def policy_rules(fs: Filesystem, default_pool: str | None = None) -> str:
    """The whole placement policy for `fs`: a rule per pool, then the default rule."""
    rules = [placement_rule(p) for p in fs.pools]
    rules.append(default_rule(default_pool or Driver.default_pool(fs)))
    return "\n\n".join(rules) + "\n"


def _code_positions(text: str):
    """Yield (index, char) of policy text outside quotes and /* comments */."""
    i, quote = 0, None
    while i < len(text):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        else:
            yield i, c
        i += 1


def split_rules(text: str) -> tuple[str, list[str]]:
    """(what precedes the first rule — macros, comments —, the rules in order)."""
    if NO_POLICY in text:
        return "", []
    code = {i for i, _ in _code_positions(text)}
    starts = [m.start() for m in _RULE.finditer(text) if m.start() in code]
    if not starts:
        return text.strip(), []
    bounds = starts + [len(text)]
    return text[:starts[0]].strip(), [text[a:b].strip() for a, b in zip(bounds, bounds[1:])]


def _code_only(rule: str) -> str:
    return "".join(c for _, c in _code_positions(rule))


def rule_name(rule: str) -> str | None:
    m = _NAME.match(rule)
    return (m.group(1) if m.group(1) is not None else m.group(2)) if m else None


def is_default_rule(rule: str) -> bool:
    """A placement rule without a condition: it catches every file the others leave."""
    code = " ".join(_code_only(rule).upper().split())
    return "SET POOL" in code and "WHERE" not in code and "FOR FILESET" not in code


def has_placement(rules: list[str], pool: str) -> bool:
    like = re.compile(rf"SET\s+POOL\s+'{re.escape(pool)}'.*FILESET_NAME\s+LIKE\s+'{re.escape(pool)}-%'",
                      re.IGNORECASE | re.DOTALL)
    return any(rule_name(r) == f"{pool}-placement" or like.search(r) for r in rules)


def missing_pools(policy_text: str, pools) -> list[str]:
    _, rules = split_rules(policy_text)
    return [p for p in pools if not has_placement(rules, p)]


def merge_policy(policy_text: str, pools, default_pool: str) -> str:
    """The installed policy plus the missing placement rules, default rule(s) last."""
    preamble, rules = split_rules(policy_text)
    defaults = [r for r in rules if is_default_rule(r)] or [default_rule(default_pool)]
    others = [r for r in rules if not is_default_rule(r)]
    added = [placement_rule(p) for p in pools if not has_placement(rules, p)]
    return "\n\n".join(part for part in [preamble, *others, *added, *defaults] if part) + "\n"
