"""robots.txt, read the way an API client should (RFC 9309 for the syntax).

A group addressed to the harvester's own product token is the site speaking to
this tool: it applies in full, and a rule that disallows the API path stops
the crawl. The ``*`` group speaks to web crawlers in general: it stops the
harvester only when it shuts robots out of the whole site (``Disallow: /``
with nothing allowing the API path). A ``*`` group that fences off part of a
site does not: Wikipedia's disallows ``/w/``, where api.php lives, and what
governs API clients there is the API's own etiquette (User-Agent, maxlag, one
request at a time), which the harvester follows. A robots.txt that is
missing or cannot be read allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PRODUCT_TOKEN = "harvester"  # the first word of our User-Agent (harvester.client.user_agent)


@dataclass(frozen=True)
class Rule:
    allow: bool
    path: str
    line: int  # 1-based, for the message
    text: str  # the line as written

    def matches(self, path: str) -> bool:
        return _pattern(self.path).match(path) is not None


@dataclass
class Group:
    agents: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    def deciding_rule(self, path: str) -> Rule | None:
        """RFC 9309: the longest matching path wins; between equals, allow."""
        best: Rule | None = None
        for rule in self.rules:
            if not rule.path or not rule.matches(path):
                continue  # an empty Disallow allows everything: no rule
            longer = best is None or len(rule.path) > len(best.path)
            tie_allow = best is not None and len(rule.path) == len(best.path) and rule.allow
            if longer or tie_allow:
                best = rule
        return best

    def allows(self, path: str) -> bool:
        rule = self.deciding_rule(path)
        return rule is None or rule.allow


def parse(text: str) -> list[Group]:
    """The groups of a robots.txt; consecutive User-agent lines share one group."""
    groups: list[Group] = []
    current: Group | None = None
    in_agents = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if current is None or not in_agents:
                current = Group()
                groups.append(current)
            current.agents.append(value.lower())
            in_agents = True
        elif key in ("allow", "disallow") and current is not None:
            current.rules.append(Rule(key == "allow", value, number, raw.strip()))
            in_agents = False
        else:
            in_agents = False  # sitemap and unknown lines end a run of User-agent lines
    return groups


def group_for(groups: list[Group], agent: str) -> Group | None:
    """All groups naming ``agent`` (or ``*``), merged, as RFC 9309 says."""
    merged = Group(agents=[agent])
    for group in groups:
        if agent in group.agents:
            merged.rules.extend(group.rules)
    found = any(agent in group.agents for group in groups)
    return merged if found else None


def refusal(text: str, api_path: str, url: str) -> str | None:
    """Why robots.txt (the text at ``url``) keeps the harvester off ``api_path``, or None."""
    groups = parse(text)
    own = group_for(groups, PRODUCT_TOKEN)
    if own is not None:
        rule = own.deciding_rule(api_path)
        if rule is not None and not rule.allow:
            return (f"{url} disallows {api_path} to the harvester: line {rule.line}, "
                    f"'{rule.text}', in the group for 'User-agent: {PRODUCT_TOKEN}'")
        return None
    everyone = group_for(groups, "*")
    if everyone is None or everyone.allows("/") or everyone.allows(api_path):
        return None
    rule = everyone.deciding_rule("/")
    assert rule is not None
    return (f"{url} shuts robots out of the whole site: line {rule.line}, '{rule.text}', "
            "in the group for 'User-agent: *'")


def _pattern(path: str) -> re.Pattern[str]:
    """A rule's path as a regex: ``*`` any characters, a final ``$`` the end."""
    anchored = path.endswith("$")
    body = path[:-1] if anchored else path
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))
