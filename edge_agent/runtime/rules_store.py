"""Which rule set the agent uses, and keeping the last known good one.

At start: the rule set central last applied (STATE_DIR/rules.applied.toml) if there is one,
else the configured file, else the embedded default. SIGHUP re-reads the configured file (a
technician's explicit act) and makes it current. A rule set that does not validate, or names
a bin the configured sorter cannot address (runtime.sorter_reach), is refused with its
problems and the current one stays: the line never runs without rules.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from edge_agent.config import AgentConfig
from edge_agent.runtime.line_state import atomic_write
from edge_agent.runtime.sorter_reach import reach_of_config
from edge_agent.sorting.rules import RulesError, RuleSet, default_rules, load_rules, parse_rules
from edge_agent.sync.command_checks import capped_problems

log = structlog.get_logger(__name__)

APPLIED_RULES_FILE = "rules.applied.toml"


def applied_rules_path(config: AgentConfig) -> Path:
    return config.state_dir / APPLIED_RULES_FILE


def initial_rules(config: AgentConfig) -> tuple[RuleSet, str]:
    """The rule set to start with, and where it came from."""
    applied = applied_rules_path(config)
    if applied.exists():
        try:
            return runnable(config, load_rules(applied), str(applied)), str(applied)
        except RulesError as exc:
            # It was checked before it was written, but by an older agent, or for another
            # sorter: the configured rules take over, loudly, instead of a crash per parcel.
            log.error("rules.applied_unusable", path=str(applied),
                      problems=capped_problems(exc.problems)[0], problems_total=len(exc.problems))
    return configured_rules(config)


def configured_rules(config: AgentConfig) -> tuple[RuleSet, str]:
    """For start and SIGHUP: the configured file (or the default); RulesError if unusable."""
    if config.rules.file is not None:
        source = str(config.rules.file)
        return runnable(config, load_rules(config.rules.file), source), source
    return default_rules(), "embedded default"


def runnable(config: AgentConfig, rules: RuleSet, source: str) -> RuleSet:
    """`rules` if the configured sorter can carry out every lane; RulesError otherwise."""
    problems = reach_of_config(config).problems(rules)
    if problems:
        raise RulesError(source, problems)
    return rules


def accept_pushed_rules(config: AgentConfig, text: str) -> RuleSet:
    """Validate central's rule set and persist it as last known good; RulesError if bad."""
    rules = runnable(config, parse_rules(text, "rules.apply"), "rules.apply")
    atomic_write(applied_rules_path(config), text)
    return rules


def forget_pushed_rules(config: AgentConfig) -> None:
    """After SIGHUP the configured file wins, also across the next restart."""
    applied_rules_path(config).unlink(missing_ok=True)
