"""Just enough of a Dockerfile to check it without a Docker engine: its stages, the instructions
of each (line continuations joined), and what their `pip install` commands install."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_FROM = re.compile(r"^FROM\s+(?P<base>\S+)(?:\s+AS\s+(?P<name>\S+))?$", re.I)


@dataclass
class Stage:
    """One build stage: `FROM <base> [AS <name>]` and the instructions up to the next FROM."""

    base: str
    name: str | None
    instructions: list[str] = field(default_factory=list)

    def pip_installs(self) -> list[str]:
        """Every `pip install` command of the stage's RUN instructions."""
        return [
            command
            for line in self.instructions
            if line.startswith("RUN ")
            for command in re.split(r"&&|;", line[4:])
            if re.search(r"\bpip\s+install\b", command)
        ]

    def requirement_files(self) -> list[str]:
        """The file names (without folders) its pip installs read with -r."""
        return [
            Path(path).name
            for command in self.pip_installs()
            for path in re.findall(r"(?:^|\s)-r\s+(\S+)", command)
        ]


def stages(path: Path) -> list[Stage]:
    """The stages in order; the last one is what `docker build` builds without --target."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    found: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _FROM.match(line)
        if match:
            found.append(Stage(match.group("base"), match.group("name")))
        elif found:
            found[-1].instructions.append(line)
    return found


def stage_chain(all_stages: list[Stage], stage: Stage) -> list[Stage]:
    """The stage and the stages it is built FROM, base first."""
    by_name = {s.name: s for s in all_stages if s.name}
    chain = [stage]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain
