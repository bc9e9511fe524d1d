"""What a changing step will do, decided from one view before anything is touched.

An action is two functions: `plan(view, **args) -> Plan` decides from facts alone, and
`apply(ctx, plan) -> Outcome` carries the plan out. `--dry-run` prints the plan from the same
function the run uses, and the run journals the plan it applied, so what an operator is shown
is what will happen (pyinfra's "the dry run is the run minus execution").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# First words of op commands that are Redis commands as written; other ops are prose ("wait
# until ...", "stop (lab backend)") and send nothing an ACL could refuse.
REDIS_COMMANDS = frozenset({"CONFIG", "CLIENT", "REPLICAOF", "SLAVEOF", "SENTINEL", "INFO", "ROLE"})
# Arguments only known at apply time (`<the promoted replica>`): the permission is the command's,
# so a stand-in of the right arity asks ACL DRYRUN the same question.
_STAND_IN = {"REPLICAOF": ["no", "one"], "SLAVEOF": ["no", "one"]}


@dataclass(frozen=True)
class Op:
    """One operation: on which node or service, which command, and why it is needed."""

    target: str
    command: str
    why: str = ""

    @property
    def argv(self) -> list[list[str]]:
        """The Redis commands this op sends, as argument lists (what ACL DRYRUN is asked about
        before a run changes anything); [] when the op is prose. `A; B` is two commands, and a
        piece without a command word continues the previous one (`SENTINEL REMOVE m; MONITOR`)."""
        out: list[list[str]] = []
        head: str | None = None
        for piece in self.command.split(";"):
            words = piece.split()
            if not words:
                continue
            if words[0] in REDIS_COMMANDS:
                head = words[0]
            elif head == "SENTINEL" and words[0].isupper():
                words = [head, *words]
            else:
                return []
            if "<" in piece and words[0] in _STAND_IN:
                words = [words[0], *_STAND_IN[words[0]]]
            out.append(words)
        return out

    def line(self) -> str:
        why = f"  ({self.why})" if self.why else ""
        return f"{self.target}: {self.command}{why}"


@dataclass
class Plan:
    """The operations of one step, or a no-op with its reason, and what it will record.

    `params` holds every value `apply` needs (resolved from the view and the playbook's
    arguments), so a time-critical apply loop decides nothing the plan did not show. `record`
    is the procedure state the step will write (later steps read it as `$name`). `deferred`:
    the decision waits for apply (a failover in progress must end first), so a dry run's plans
    of the later steps are only indicative.
    """

    action: str
    ops: list[Op] = field(default_factory=list)
    noop: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    changes: bool = True
    deferred: bool = False

    @property
    def is_noop(self) -> bool:
        return not self.ops

    def lines(self) -> list[str]:
        """The plan as an operator reads it: one line per operation, or why nothing is done."""
        if not self.ops:
            return [f"nothing to do: {self.noop or 'no operation needed'}"]
        return [op.line() for op in self.ops]

    def key(self) -> list[tuple[str, str]]:
        """The operations without their reasons: what a dry run and its real run must share."""
        return [(op.target, op.command) for op in self.ops]

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "ops": [{"target": o.target, "command": o.command, "why": o.why} for o in self.ops],
            "noop": self.noop,
            "params": self.params,
            "record": self.record,
            "changes": self.changes,
        }


def noop(action: str, why: str, **record: Any) -> Plan:
    """A plan that changes nothing, saying why (e.g. "replica-priority already 0")."""
    return Plan(action, [], why, record=dict(record), changes=False)


def reads(action: str, target: str, what: str, **params: Any) -> Plan:
    """The plan of a read-only action: one read, shown and journaled like any other op."""
    return Plan(action, [Op(target, what, "read-only")], params=dict(params), changes=False)
