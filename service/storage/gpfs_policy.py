"""Placement policy text: one rule per pool that sends a fileset named `{pool}-...` to `pool`.

A space's fileset is named `{pool}-{space}`, so these rules are what puts its data in the
pool of its profile. Existing rules are kept as they are; a default rule (a placement rule
without a condition) always comes last, since the first matching rule wins.

Profiles add rules of their own, all named `pixstor-...` and rewritten whole at each install:
a SET POOL rule for the filesets of a profile's spaces (first, so that it overrides the
`{pool}-placement` rules when a profile's placement changed), and a MIGRATE or DELETE rule
per ILM step (service/ilm.py says what a step's conditions mean).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from service import ilm

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


MANAGED = "pixstor-"     # the service's own rules: replaced whole at every install


@dataclass
class ProfileRules:
    """What a profile asks of the policy: its pool, its spaces' filesets, its ILM steps (objects
    with the IlmStep fields, `target_pool` set for migrations), in order."""
    name: str
    pool: str
    filesets: list[str]
    steps: list = field(default_factory=list)


def _filesets(names: list[str]) -> str:
    return "FOR FILESET (" + ", ".join(f"'{n}'" for n in names) + ")"


def _where(step) -> str:
    """The WHERE clause of a step's conditions ('' when it sets none)."""
    parts = []
    if step.access_days is not None:
        parts.append(f"(DAYS(CURRENT_TIMESTAMP) - DAYS(ACCESS_TIME)) >= {int(step.access_days)}")
    if step.modification_days is not None:
        parts.append(f"(DAYS(CURRENT_TIMESTAMP) - DAYS(MODIFICATION_TIME)) >= {int(step.modification_days)}")
    if step.min_size is not None:
        parts.append(f"FILE_SIZE >= {int(step.min_size)}")
    if step.max_size is not None:
        parts.append(f"FILE_SIZE <= {int(step.max_size)}")
    if step.name_patterns:
        names = " OR ".join(f"NAME LIKE '{ilm.like(p)}' ESCAPE '\\'" for p in step.name_patterns)
        parts.append(f"({names})")
    return "\n WHERE " + " AND ".join(parts) if parts else ""


def step_rule(profile: ProfileRules, step) -> str:
    name = f"{MANAGED}{profile.name}-{step.name}"
    scope = _filesets(profile.filesets)
    if step.action == "delete":
        return f"RULE '{name}' DELETE\n {scope}{_where(step)}"
    threshold = (f" THRESHOLD({int(step.threshold_high)},{int(step.threshold_low)})"
                 if step.threshold_high is not None else "")
    return (f"RULE '{name}' MIGRATE FROM POOL '{profile.pool}'{threshold} TO POOL '{step.target_pool}'\n"
            f" {scope}{_where(step)}")


def placement_rules_of(profiles: list[ProfileRules]) -> list[str]:
    return [f"RULE '{MANAGED}{p.name}-placement' SET POOL '{p.pool}'\n {_filesets(p.filesets)}"
            for p in profiles if p.filesets]


def ilm_rules_of(profiles: list[ProfileRules]) -> list[str]:
    return [step_rule(p, s) for p in profiles if p.filesets for s in p.steps]


def merge_profiles(policy_text: str, profiles: list[ProfileRules], pools, default_pool: str) -> str:
    """The installed policy with the service's rules replaced by `profiles`': their placement
    rules first, the kept and missing `{pool}-placement` rules next, then the ILM rules, the
    default rule(s) last. Rules the service did not write are kept as they are."""
    preamble, rules = split_rules(policy_text)
    kept = [r for r in rules if not (rule_name(r) or "").startswith(MANAGED)]
    defaults = [r for r in kept if is_default_rule(r)] or [default_rule(default_pool)]
    others = [r for r in kept if not is_default_rule(r)]
    added = [placement_rule(p) for p in pools if not has_placement(kept, p)]
    parts = [preamble, *placement_rules_of(profiles), *others, *added, *ilm_rules_of(profiles), *defaults]
    return "\n\n".join(part for part in parts if part) + "\n"
