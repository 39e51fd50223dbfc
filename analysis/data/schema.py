"""The canonical data model (SPEC section 2), declared once.

Every table and column the workbench knows is listed here with its type, whether it is
required, its allowed values, its key and its relations. Loading (type coercion), validation
(every data-quality rule), the sample generator and the documentation (``describe()``) are all
driven from this module; no other module keeps its own list of columns.

Column types
------------
``id``        string identifier; numbers in a CSV stay text (``007`` stays ``007``)
``string``    free text
``category``  text from a closed set (``allowed``); compared case- and space-insensitively
``timestamp`` ISO 8601 instant; converted to the company time zone and stored as local wall time
``date``      calendar date; never shifted between time zones
``money``     amount in the reporting currency (or in ``currency`` when fx_rates are given), float64
``number``    other real number, float64
``integer``   whole number, int64
"""

from __future__ import annotations

from dataclasses import dataclass, field

COLUMN_TYPES = ("id", "string", "category", "timestamp", "date", "money", "number", "integer")

#: The seven canonical funnel steps, in order (SPEC section 2).
STEPS = (
    "prospecting",
    "qualification",
    "research",
    "demo",
    "objection_handling",
    "closing",
    "nurturing",
)

#: Closed-won and closed-lost are statuses, not funnel steps.
STATUSES = ("open", "won", "lost")

LOSS_REASONS = ("price", "trust", "competitor", "no_need", "no_urgency", "no_authority", "other")


@dataclass(frozen=True)
class Column:
    """One canonical column."""

    name: str
    type: str
    required: bool = False
    description: str = ""
    allowed: tuple[str, ...] | None = None
    references: str | None = None  # "table.column" this column points to
    nonnegative: bool = False
    min_value: float | None = None
    max_value: float | None = None
    #: the value must be above ``min_value``, not equal to it (an exchange rate of 0)
    exclusive_min: bool = False

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Table:
    """One canonical table."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: str | None = None
    required: bool = False
    #: (earlier column, later column) pairs that must be ordered in time
    ordered: tuple[tuple[str, str], ...] = ()
    #: columns whose values must not lie in the future of the data snapshot
    not_future: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")

    @property
    def foreign_keys(self) -> list[Column]:
        return [c for c in self.columns if c.references]


C = Column

ACTIVITY_TYPES = ("call", "email", "meeting", "demo", "message", "other")
ACTIVITY_OUTCOMES = (
    "connected",
    "no_answer",
    "voicemail",
    "positive",
    "negative",
    "meeting_booked",
    "replied",
    "completed",
    "no_show",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "reps",
            "The sales team; a rep can leave (end_date).",
            (
                C("rep_id", "id", True, "Rep identifier."),
                C("name", "string", True, "Display name."),
                C("team", "string", description="Team name."),
                C("region", "string", description="Sales region."),
                C("manager_id", "id", description="The rep's manager.", references="reps.rep_id"),
                C("role", "category", description="Job role.", allowed=("SDR", "AE", "AM", "manager")),
                C("hire_date", "date", description="First day."),
                C("end_date", "date", description="Last day, empty while employed."),
            ),
            key="rep_id",
            required=True,
            ordered=(("hire_date", "end_date"),),
        ),
        Table(
            "accounts",
            "Customers' and prospects' companies.",
            (
                C("account_id", "id", True, "Account identifier."),
                C("name", "string", True, "Company name."),
                C("segment", "string", description="Customer segment (SMB, mid-market, enterprise...)."),
                C("industry", "string", description="Industry."),
                C("region", "string", description="Region of the account."),
                C("created_at", "timestamp", description="When the account was created."),
            ),
            key="account_id",
            not_future=("created_at",),
        ),
        Table(
            "leads",
            "Top of the funnel.",
            (
                C("lead_id", "id", True, "Lead identifier."),
                C("created_at", "timestamp", True, "When the lead arrived."),
                C("owner_id", "id", description="Rep working the lead (often an SDR).", references="reps.rep_id"),
                C("source", "string", description="Lead source (inbound, outbound, referral, event...)."),
                C(
                    "status",
                    "category",
                    description="Lead status.",
                    allowed=("open", "qualified", "disqualified", "converted"),
                ),
                C("first_response_at", "timestamp", description="First response by the owner."),
                C("converted_at", "timestamp", description="When it became an opportunity."),
                C(
                    "opportunity_id",
                    "id",
                    description="Opportunity it converted into.",
                    references="opportunities.opportunity_id",
                ),
                C("account_id", "id", description="Company of the lead.", references="accounts.account_id"),
            ),
            key="lead_id",
            ordered=(("created_at", "first_response_at"), ("created_at", "converted_at")),
            not_future=("created_at", "first_response_at", "converted_at"),
        ),
        Table(
            "opportunities",
            "Deals; close_date is the actual close date when closed, the expected one when open.",
            (
                C("opportunity_id", "id", True, "Deal identifier."),
                C("owner_id", "id", True, "Rep who owns the deal.", references="reps.rep_id"),
                C("created_at", "timestamp", True, "When the deal was created."),
                C("status", "category", True, "open, won or lost.", allowed=STATUSES),
                C("stage", "string", True, "Current CRM stage (mapped to a funnel step by the config)."),
                C("amount", "money", True, "Deal value.", nonnegative=True),
                C("close_date", "date", description="Actual close date (closed) or expected (open)."),
                C("account_id", "id", description="Customer account.", references="accounts.account_id"),
                C(
                    "deal_type",
                    "category",
                    description="Kind of deal.",
                    allowed=("new_business", "expansion", "renewal"),
                ),
                C("product", "string", description="Product line."),
                C("lead_source", "string", description="Where the deal came from."),
                C("cost", "money", description="Cost of the deal, for margin.", nonnegative=True),
                C("contract_months", "number", description="Contract length in months.", nonnegative=True),
                C("loss_reason", "category", description="Why a lost deal was lost.", allowed=LOSS_REASONS),
                C("currency", "string", description="Currency of amount and cost (with fx_rates)."),
            ),
            key="opportunity_id",
            required=True,
            ordered=(("created_at", "close_date"),),
            not_future=("created_at",),
        ),
        Table(
            "stage_history",
            "One row each time a deal enters a stage (re-entry allowed).",
            (
                C(
                    "opportunity_id",
                    "id",
                    True,
                    "Deal that moved.",
                    references="opportunities.opportunity_id",
                ),
                C("stage", "string", True, "Stage entered."),
                C("entered_at", "timestamp", True, "When it entered the stage."),
            ),
            not_future=("entered_at",),
        ),
        Table(
            "activities",
            "The daily work.",
            (
                C("activity_id", "id", True, "Activity identifier."),
                C("rep_id", "id", True, "Rep who did it.", references="reps.rep_id"),
                C("type", "category", True, "Kind of activity.", allowed=ACTIVITY_TYPES),
                C("occurred_at", "timestamp", True, "When it happened."),
                C("duration_s", "number", description="Duration in seconds.", nonnegative=True),
                C("direction", "category", description="outbound or inbound.", allowed=("outbound", "inbound")),
                C("outcome", "category", description="Result.", allowed=ACTIVITY_OUTCOMES),
                C(
                    "opportunity_id",
                    "id",
                    description="Deal it belongs to.",
                    references="opportunities.opportunity_id",
                ),
                C("lead_id", "id", description="Lead it belongs to.", references="leads.lead_id"),
                C("account_id", "id", description="Account it belongs to.", references="accounts.account_id"),
            ),
            key="activity_id",
            required=False,
            not_future=("occurred_at",),
        ),
        Table(
            "quotas",
            "Targets: revenue, deals won, calls, meetings... per rep or team and period.",
            (
                C("owner", "id", True, "A rep_id or a team name."),
                C("period_start", "date", True, "First day of the quota period."),
                C("period_end", "date", True, "Last day of the quota period (inclusive)."),
                C("metric", "string", True, "Metric id the target is for."),
                C("target", "number", True, "Target value.", nonnegative=True),
            ),
            ordered=(("period_start", "period_end"),),
        ),
        Table(
            "subscriptions",
            "Recurring contracts, for ARR and churn.",
            (
                C("contract_id", "id", True, "Contract identifier."),
                C("account_id", "id", True, "Customer account.", references="accounts.account_id"),
                C("start_date", "date", True, "First day of the contract."),
                C("end_date", "date", True, "Last day of the contract."),
                C("annual_value", "money", True, "Annual contract value.", nonnegative=True),
                C("renewed_from", "id", description="Contract this one renews.", references="subscriptions.contract_id"),
            ),
            key="contract_id",
            ordered=(("start_date", "end_date"),),
        ),
        Table(
            "spend",
            "Sales and marketing cost, for CAC.",
            (
                C("period_start", "date", True, "First day."),
                C("period_end", "date", True, "Last day (inclusive)."),
                C("category", "category", True, "sales or marketing.", allowed=("sales", "marketing")),
                C("amount", "money", True, "Amount spent.", nonnegative=True),
            ),
            ordered=(("period_start", "period_end"),),
        ),
        Table(
            "pulse",
            "Anonymous employee pulse survey answers, for eNPS.",
            (
                C("answered_at", "timestamp", True, "When the answer was given."),
                C("score", "number", True, "0 to 10.", min_value=0, max_value=10),
                C("rep_id", "id", description="Respondent, if not anonymous.", references="reps.rep_id"),
                C("team", "string", description="Team of the respondent."),
            ),
            not_future=("answered_at",),
        ),
        Table(
            "fx_rates",
            "Optional currency conversion to the reporting currency.",
            (
                C("currency", "string", True, "Currency code."),
                C("date", "date", True, "Day the rate applies from."),
                C("rate_to_reporting", "number", True, "Reporting-currency units per unit.", min_value=0,
                  exclusive_min=True),
            ),
        ),
    ]
}

REQUIRED_TABLES = tuple(name for name, t in TABLES.items() if t.required)

#: File suffixes read by name, in order of preference when several exist.
FILE_SUFFIXES = (".parquet", ".csv", ".xlsx", ".xls")


def table(name: str) -> Table:
    """Return the canonical table ``name`` or raise a KeyError suggesting the closest name."""
    try:
        return TABLES[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, TABLES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown table {name!r}{hint} Known tables: {', '.join(TABLES)}") from None


def closest_header(name: str, headers: list[str]) -> str | None:
    """The header a user most likely meant by ``name``: the same letters and digits (``Stage
    Name`` for ``stage_name``), a header containing them (``Amount ($)`` for ``amount``), one
    that ``name`` abbreviates (``Amount`` for ``Amt``: same first letter, its letters in order),
    or a close spelling; None when nothing is close (a far-fetched guess misleads more than none)."""
    import difflib
    import re

    def alnum(text: str) -> str:
        return re.sub(r"[^0-9a-z]", "", str(text).lower())

    def abbreviates(short: str, long: str) -> bool:
        letters = iter(long)
        return len(short) >= 3 and short[:1] == long[:1] and all(ch in letters for ch in short)

    key = alnum(name)
    return (
        next((h for h in headers if alnum(h) == key), None)
        or next((h for h in headers if len(key) >= 4 and key in alnum(h)), None)
        or next((h for h in headers if abbreviates(key, alnum(h))), None)
        or next(iter(difflib.get_close_matches(name, headers, n=1, cutoff=0.75)), None)
    )


def step_label(step: object) -> str:
    """Human label of a canonical step or status: ``objection_handling`` -> ``Objection handling``."""
    return str(step).replace("_", " ").capitalize() if step is not None else "(unknown)"


def normalize_token(value: str) -> str:
    """Lower-case and drop spaces, underscores and hyphens: ``Objection Handling`` -> ``objectionhandling``."""
    return "".join(ch for ch in str(value).lower() if ch not in " _-\t")


def describe() -> str:
    """The data model as Markdown, generated from :data:`TABLES` (used for docs and reports)."""
    lines = []
    for t in TABLES.values():
        req = "required" if t.required else "optional"
        key = f", key `{t.key}`" if t.key else ""
        lines.append(f"### {t.name} ({req}{key})\n\n{t.description}\n")
        lines.append("| column | type | required | allowed values / relation | meaning |")
        lines.append("| --- | --- | --- | --- | --- |")
        for c in t.columns:
            extra = ", ".join(c.allowed) if c.allowed else (f"→ {c.references}" if c.references else "")
            if c.nonnegative:
                extra = (extra + "; " if extra else "") + "≥ 0"
            if c.min_value is not None or c.max_value is not None:
                extra = (extra + "; " if extra else "") + f"{c.min_value}..{c.max_value}"
            lines.append(f"| {c.name} | {c.type} | {'yes' if c.required else ''} | {extra} | {c.description} |")
        lines.append("")
    return "\n".join(lines)
