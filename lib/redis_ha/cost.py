"""The monthly cost of the cluster from a price table and the services' sizes in the inventory.

Railway bills memory and vCPU per minute of use, plus volumes and egress; the plan's subscription
(Hobby $5, Pro $20) is a minimum usage commitment that covers that much usage. The estimate is:

    usage  = sum over sized services (memory_gb * memory price + vcpu * vCPU price
                                      + volume_gb * volume price) + egress_gb * egress price
    bill   = max(plan fee, usage)

Sizes are what each service is expected to use on average (Railway bills use, not limits):
`size: {memory_gb: 0.5, vcpu: 0.1}` on any node, Sentinel or the single instance, and
`cost: {plan: pro, budget_usd: 60, expected_usd: [30, 45], egress_gb: 5}` at the top.

Where the prices came from (read 2026-12-03, from stored copies of the pages; check
https://railway.com/pricing before relying on them):
- memory $10 / GB / month ($0.000231 / GB / minute) and vCPU $20 / vCPU / month ($0.000463 /
  vCPU / minute): docs.railway.app/reference/pricing;
- Hobby $5 and Pro $20 as a minimum usage commitment covering that much usage:
  docs.railway.com/reference/pricing/understanding-your-bill;
- egress $0.05 / GB and volumes $0.15 / GB / month: a third-party summary of railway.com/pricing
  (api-evangelist/railway-app, plans/railway-app-plans-pricing.yml, dated 2026-07-02, marked
  unverified there).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redis_ha import paths
from redis_ha.errors import HAError, InventoryError
from redis_ha.inventory import Inventory

HISTORY_FILE = "cost-history.csv"
HISTORY_FIELDS = (
    "week",
    "recorded_at",
    "inventory",
    "monthly_usd",
    "usage_usd",
    "budget_usd",
    "within_budget",
)
SIZE_KEYS = ("memory_gb", "vcpu", "volume_gb")
COST_KEYS = ("provider", "plan", "budget_usd", "expected_usd", "egress_gb")


@dataclass(frozen=True)
class PriceTable:
    provider: str
    memory_gb_month: float
    vcpu_month: float
    volume_gb_month: float
    egress_gb: float
    plans: dict[str, float]  # plan -> monthly fee, which covers that much usage
    source: str
    retrieved: str


RAILWAY = PriceTable(
    provider="railway",
    memory_gb_month=10.0,
    vcpu_month=20.0,
    volume_gb_month=0.15,
    egress_gb=0.05,
    plans={"hobby": 5.0, "pro": 20.0, "none": 0.0},
    source=(
        "docs.railway.app/reference/pricing (memory, vCPU); "
        "docs.railway.com/reference/pricing/understanding-your-bill (plans); "
        "egress and volumes from a third-party summary of railway.com/pricing (unverified)"
    ),
    retrieved="2026-12-03",
)
TABLES = {"railway": RAILWAY}


@dataclass
class ServiceCost:
    name: str
    memory_gb: float
    vcpu: float
    volume_gb: float
    monthly_usd: float


@dataclass
class Estimate:
    provider: str
    plan: str
    plan_fee_usd: float
    services: list[ServiceCost]
    unsized: list[str]
    egress_gb: float
    egress_usd: float
    usage_usd: float
    monthly_usd: float
    budget_usd: float | None
    expected_usd: tuple[float, float] | None
    prices: dict[str, Any] = field(default_factory=dict)

    @property
    def within_budget(self) -> bool | None:
        return None if self.budget_usd is None else self.monthly_usd <= self.budget_usd

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["within_budget"] = self.within_budget
        d["headroom_usd"] = (
            None if self.budget_usd is None else round(self.budget_usd - self.monthly_usd, 2)
        )
        return d


def _number(v: Any, where: str, problems: list[str]) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        problems.append(f"{where}: must be a number >= 0, got {v!r}")
        return 0.0
    return float(v)


def estimate(inv: Inventory, table: PriceTable | None = None) -> Estimate:
    """The monthly estimate; an InventoryError lists every problem with its YAML path."""
    problems: list[str] = []
    c = inv.cost
    for k in c:
        if k not in COST_KEYS:
            problems.append(f"cost.{k}: unknown field (expected one of: {', '.join(COST_KEYS)})")
    provider = str(c.get("provider", "railway"))
    if table is None:
        table = TABLES.get(provider)
        if table is None:
            problems.append(f"cost.provider: no price table for {provider!r} (known: railway)")
            table = RAILWAY
    plan = str(c.get("plan", "none"))
    if plan not in table.plans:
        problems.append(f"cost.plan: must be one of {', '.join(table.plans)}, got {plan!r}")
    budget = _number(c["budget_usd"], "cost.budget_usd", problems) if "budget_usd" in c else None
    expected = None
    if "expected_usd" in c:
        e = c["expected_usd"]
        if isinstance(e, list) and len(e) == 2:
            lo = _number(e[0], "cost.expected_usd[0]", problems)
            expected = (lo, _number(e[1], "cost.expected_usd[1]", problems))
        else:
            problems.append(f"cost.expected_usd: must be [low, high], got {e!r}")
    egress = _number(c.get("egress_gb", 0), "cost.egress_gb", problems)
    services: list[ServiceCost] = []
    unsized: list[str] = []
    groups = (("nodes", inv.nodes), ("sentinels", inv.sentinels), ("single", (inv.single,)))
    for key, eps in groups:
        for i, ep in enumerate(eps):
            if ep is None:
                continue
            where = f"{key}[{i}].size" if key != "single" else "single.size"
            if not ep.size:
                unsized.append(ep.name)
                continue
            for k in ep.size:
                if k not in SIZE_KEYS:
                    problems.append(
                        f"{where}.{k}: unknown field (expected: {', '.join(SIZE_KEYS)})"
                    )
            mem, cpu, vol = (
                _number(ep.size.get(k, 0), f"{where}.{k}", problems) for k in SIZE_KEYS
            )
            monthly = (
                mem * table.memory_gb_month + cpu * table.vcpu_month + vol * table.volume_gb_month
            )
            services.append(ServiceCost(ep.name, mem, cpu, vol, round(monthly, 4)))
    if not services and not problems:
        problems.append(
            "no service has a size: add `size: {memory_gb: ..., vcpu: ...}` to the nodes "
            "and Sentinels"
        )
    if problems:
        lines = "\n  ".join(problems)
        raise InventoryError(f"{inv.path}: cannot estimate the cost:\n  {lines}")
    fee = table.plans[plan]
    egress_usd = egress * table.egress_gb
    usage = sum(s.monthly_usd for s in services) + egress_usd
    return Estimate(
        provider=table.provider,
        plan=plan,
        plan_fee_usd=fee,
        services=services,
        unsized=unsized,
        egress_gb=egress,
        egress_usd=round(egress_usd, 4),
        usage_usd=round(usage, 2),
        monthly_usd=round(max(fee, usage), 2),
        budget_usd=budget,
        expected_usd=expected,
        prices=asdict(table),
    )


def history_path() -> Path:
    """Where `--record` writes: $REDIS_HA_HOME, else the current folder (`paths.home()`)."""
    return paths.home() / HISTORY_FILE


def week_of(when: dt.datetime) -> str:
    y, w, _ = when.isocalendar()
    return f"{y}-W{w:02d}"


def record(inv: Inventory, est: Estimate, path: Path, now: dt.datetime) -> tuple[str, bool]:
    """Append this week's row (or replace it when the week is already there): (week, replaced)."""
    week = week_of(now)
    row = {
        "week": week,
        "recorded_at": now.isoformat(timespec="seconds"),
        "inventory": inv.name,
        "monthly_usd": f"{est.monthly_usd:.2f}",
        "usage_usd": f"{est.usage_usd:.2f}",
        "budget_usd": "" if est.budget_usd is None else f"{est.budget_usd:.2f}",
        "within_budget": "" if est.within_budget is None else str(est.within_budget).lower(),
    }
    rows: list[dict[str, str]] = []
    try:
        if path.exists():
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        same = [r for r in rows if r.get("week") == week and r.get("inventory") == inv.name]
        rows = [r for r in rows if r not in same] + [row]
        rows.sort(key=lambda r: (r.get("inventory", ""), r.get("week", "")))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        tmp.replace(path)
    except OSError as e:
        raise HAError(f"cannot write the cost history {path}: {e.strerror or e}") from None
    return week, bool(same)
