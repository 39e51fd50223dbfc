"""Native CRM export folders (Salesforce, HubSpot, Pipedrive) and their ground truth.

Each builder writes a vendor's export files into a folder, with the vendor's own file names,
headers and value formats, and returns a :class:`Truth`: the deals as plain Python values
(true status, amount in the reporting currency, created time, close date), the reps, the stage
entries, activities and exchange rates. Tests compute expected figures from the truth by hand,
independently of the package. Everything is drawn from a seeded ``random.Random``.

The world: one calendar year 2025, reporting currency USD, company time zone UTC, snapshot
2025-12-31. Deals are created from January to November; a closed deal closes 5-120 days after
creation (at the latest on 30 December); an open deal has an expected close date.
"""

from __future__ import annotations

import csv
import hashlib
import random
import string
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

YEAR_START = datetime(2025, 1, 2, 8, 0)
LAST_CLOSE = date(2025, 12, 30)
REPORTING = "USD"

SF_STAGES = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
]
HS_STAGES = [  # (internal id, label)
    ("appointmentscheduled", "Appointment Scheduled"),
    ("qualifiedtobuy", "Qualified To Buy"),
    ("presentationscheduled", "Presentation Scheduled"),
    ("decisionmakerboughtin", "Decision Maker Bought-In"),
    ("contractsent", "Contract Sent"),
]
HS_WON = ("closedwon", "Closed Won")
HS_LOST = ("closedlost", "Closed Lost")
PD_STAGES = ["Qualified", "Contact Made", "Demo Scheduled", "Proposal Made", "Negotiations Started"]

NAMES = [
    "Ana García",
    "Ben Okafor",
    "Chloé Martin",
    "Dev Patel",
    "Eva Novak",
    "Farid Haddad",
    "Grace Liu",
]

#: Salesforce DatedConversionRate: EUR per 1 USD, in force from StartDate
SF_RATES = [("USD", 1.0, date(2024, 1, 1)), ("EUR", 0.8, date(2024, 1, 1)), ("EUR", 0.9, date(2025, 8, 15))]


@dataclass
class Deal:
    id: str
    owner_id: str  # the vendor's owner id (Salesforce), else the stable id of the owner's name
    owner_name: str
    status: str  # open | won | lost
    stage: str  # current stage as the vendor names it (label)
    amount: float  # in the deal's currency
    currency: str
    amount_reporting: float | None  # in USD at the rate in force on the close date
    created_at: datetime  # UTC wall time
    close_date: date  # actual close (won / lost) or expected (open)
    expected_close: date | None = None  # Pipedrive: the expected close date, also for closed deals
    deal_type: str | None = None  # canonical
    loss_reason: str | None = None  # canonical, or the vendor's text when it has no canonical meaning
    account_id: str | None = None


@dataclass
class Truth:
    deals: list[Deal]
    reps: dict[str, str]  # rep_id -> name
    stage_entries: list[tuple[str, str, str]] = field(default_factory=list)  # (deal id, stage, entered_at text)
    activities: list[dict] = field(default_factory=list)
    fx: list[tuple[str, date, float]] = field(default_factory=list)  # (currency, date, rate_to_reporting)
    files: list[str] = field(default_factory=list)

    def deal(self, deal_id: str) -> Deal:
        return next(d for d in self.deals if d.id == deal_id)


def stable_id(name: str) -> str:
    """Independent re-statement of the rule the presets use for owner names."""
    text = " ".join(name.split()).lower()
    return "id_" + hashlib.md5(text.encode("utf-8")).hexdigest()[:10]


def rate_on(fx: list[tuple[str, date, float]], currency: str, day: date) -> float | None:
    """rate_to_reporting in force on ``day`` (the latest rate dated on or before it)."""
    if currency == REPORTING:
        return 1.0
    dated = [(d, r) for c, d, r in fx if c == currency and d <= day]
    return max(dated)[1] if dated else None


def _write(path: Path, header: list[str], rows: list[list], *, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])


def _sf_id(rng: random.Random, prefix: str) -> str:
    chars = string.ascii_letters + string.digits
    return prefix + "5g0000" + "".join(rng.choice(chars) for _ in range(9))


def _amount(rng: random.Random) -> float:
    # whole amounts or two decimals (never three, which is ambiguous without a locale)
    whole = rng.randrange(20, 400) * 250
    return float(whole) if rng.random() < 0.7 else whole + rng.choice([0.5, 0.25, 0.75])


def _money_text(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:.2f}"


def _timeline(rng: random.Random, n: int) -> list[tuple[str, datetime, date]]:
    """(status, created_at, close_date) for n deals, all three statuses in every quarter."""
    out = []
    for i in range(n):
        created = YEAR_START + timedelta(days=rng.randrange(0, 330), hours=rng.randrange(0, 9), minutes=rng.choice([0, 15, 30, 45]))
        status = ("won", "lost", "open")[i % 3] if i < 30 else rng.choices(["won", "lost", "open"], [0.38, 0.32, 0.30])[0]
        if status == "open":
            close = created.date() + timedelta(days=rng.randrange(10, 150))
        else:
            close = min(created.date() + timedelta(days=rng.randrange(5, 120)), LAST_CLOSE)
        out.append((status, created, close))
    return out


def _stage_path(rng: random.Random, stages: list[str], status: str, current: str | None) -> list[str]:
    """Stages a deal went through, in order: a prefix of the funnel, possibly skipping one."""
    if status == "open":
        last = stages.index(current)
    else:
        last = rng.randrange(0, len(stages))
    path = [s for i, s in enumerate(stages[: last + 1]) if i in (0, last) or rng.random() > 0.15]
    return path


def _entry_times(rng: random.Random, start: datetime, end: datetime, k: int) -> list[datetime]:
    """k increasing times from ``start`` to before ``end``, at least two hours apart."""
    slots = max(int((end - start).total_seconds() // 7200), k + 1)
    picks = sorted(rng.sample(range(1, slots), k - 1)) if k > 1 else []
    return [start] + [start + timedelta(hours=2 * p) for p in picks]


def _path_times(rng: random.Random, created: datetime, end: datetime, k: int, closed: bool) -> list[datetime]:
    """Entry times of a k-stage path: spread from creation; a closed deal's last (closing) stage
    is entered on its close day (``end``'s day, by ``end``), as CRMs record it."""
    if not closed or k < 2:
        return _entry_times(rng, created, max(end, created + timedelta(days=1)), k)
    day_start = datetime.combine(end.date(), time(0, 0))
    times = _entry_times(rng, created, max(day_start, created + timedelta(hours=1)), k - 1)
    return [*times, max(end, times[-1] + timedelta(minutes=1))]


# -- Salesforce --------------------------------------------------------------------------------


def salesforce_export(folder: Path, *, seed: int = 7, n_deals: int = 140, bool_style: str = "mixed") -> Truth:
    """Data Loader exports: Opportunity, User, OpportunityHistory, Task, Event,
    DatedConversionRate, Lead and Account, as CSV files named after the objects."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    users = [(_sf_id(rng, "005"), name) for name in NAMES[:6]]
    manager = users[0][0]
    _write(
        folder / "User.csv",
        ["Id", "Username", "Name", "FirstName", "LastName", "ManagerId", "UserRoleId", "IsActive"],
        [
            [uid, name.split()[0].lower() + "@example.com", name, name.split()[0], name.split()[1],
             "" if uid == manager else manager, _sf_id(rng, "00E"), "true"]
            for uid, name in users
        ],
    )
    reps = dict(users)
    accounts = [(_sf_id(rng, "001"), f"Account {i:02d}", rng.choice(["Software", "Retail", "Banking"])) for i in range(25)]
    _write(
        folder / "Account.csv",
        ["Id", "Name", "Industry", "BillingCountry", "CreatedDate"],
        [[a, nm, ind, rng.choice(["US", "DE", "FR"]), "2024-06-01T10:00:00.000+0000"] for a, nm, ind in accounts],
    )
    fx = [(c, d, 1.0 / r) for c, r, d in SF_RATES]
    _write(
        folder / "DatedConversionRate.csv",
        ["Id", "IsoCode", "ConversionRate", "StartDate", "NextStartDate"],
        [
            [_sf_id(rng, "04w"), "USD", "1.0", "2024-01-01", "9999-12-31"],
            [_sf_id(rng, "04w"), "EUR", "0.8", "2024-01-01", "2025-08-15"],
            [_sf_id(rng, "04w"), "EUR", "0.9", "2025-08-15", "9999-12-31"],
        ],
    )
    types = {"New Customer": "new_business", "Existing Customer - Upgrade": "expansion",
             "Existing Customer - Replacement": "renewal"}
    true_words = {"mixed": [("true", "false"), ("TRUE", "FALSE"), ("1", "0")], "lower": [("true", "false")]}[bool_style]

    def sf_time(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    deals: list[Deal] = []
    opp_rows, hist_rows, entries = [], [], []
    for status, created, close in _timeline(rng, n_deals):
        oid = _sf_id(rng, "006")
        uid, name = rng.choice(users)
        cur = "EUR" if rng.random() < 0.3 else "USD"
        amount = _amount(rng)
        rate = rate_on(fx, cur, close)
        stage = {"won": "Closed Won", "lost": "Closed Lost"}.get(status) or rng.choice(SF_STAGES)
        type_text = rng.choice([*types, "Existing Customer - Downgrade"])
        acct = rng.choice(accounts)[0]
        deals.append(Deal(oid, uid, name, status, stage, amount, cur, None if rate is None else amount * rate,
                          created, close, deal_type=types.get(type_text, type_text), account_id=acct))
        t, f = rng.choice(true_words)
        opp_rows.append([
            oid, uid, acct, f"Deal {oid[-4:]}", stage, _money_text(amount), close.isoformat(), sf_time(created),
            t if status != "open" else f, t if status == "won" else f, rng.choice([10, 50, 90]), type_text,
            rng.choice(["Web", "Partner", "Cold Call"]), cur, "Pipeline",
        ])
        # OpportunityHistory: a row per stage entered, plus snapshot rows where only the amount
        # or close date changed (same stage: not a stage entry)
        path = _stage_path(rng, SF_STAGES, status, None if status != "open" else stage)
        if status != "open":
            path = path + [stage]
        end = datetime.combine(close, time(17, 0)) if status != "open" else datetime(2025, 12, 30, 17, 0)
        times = _path_times(rng, created, end, len(path), status != "open")
        for s, at in zip(path, times):
            hist_rows.append([_sf_id(rng, "008"), oid, s, _money_text(amount), close.isoformat(), sf_time(at), 10])
            entries.append((oid, s, sf_time(at)))
            if rng.random() < 0.3:  # an amount change later, same stage
                hist_rows.append([_sf_id(rng, "008"), oid, s, _money_text(amount + 250), close.isoformat(),
                                  sf_time(at + timedelta(minutes=30)), 10])
    _write(
        folder / "Opportunity.csv",
        ["Id", "OwnerId", "AccountId", "Name", "StageName", "Amount", "CloseDate", "CreatedDate", "IsClosed",
         "IsWon", "Probability", "Type", "LeadSource", "CurrencyIsoCode", "ForecastCategoryName"],
        opp_rows,
    )
    rng.shuffle(hist_rows)  # exports are not sorted
    _write(folder / "OpportunityHistory.csv",
           ["Id", "OpportunityId", "StageName", "Amount", "CloseDate", "CreatedDate", "Probability"], hist_rows)

    leads = []
    lead_rows = []
    for i in range(40):
        lid = _sf_id(rng, "00Q")
        uid, _ = rng.choice(users)
        created = YEAR_START + timedelta(days=rng.randrange(0, 300))
        st = rng.choice(["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"])
        leads.append(lid)
        lead_rows.append([lid, sf_time(created), uid, rng.choice(["Web", "Event"]), st,
                          "true" if st == "Closed - Converted" else "false", "", "", ""])
    _write(folder / "Lead.csv",
           ["Id", "CreatedDate", "OwnerId", "LeadSource", "Status", "IsConverted", "ConvertedDate",
            "ConvertedOpportunityId", "ConvertedAccountId"], lead_rows)

    activities = []
    task_rows, event_rows = [], []
    for i in range(220):
        uid, _ = rng.choice(users)
        day = (YEAR_START + timedelta(days=rng.randrange(0, 360))).date()
        what = rng.choice([rng.choice(deals).id, rng.choice(accounts)[0], ""])
        who = rng.choice([rng.choice(leads), _sf_id(rng, "003"), ""])
        kind = rng.choice(["Call", "Call", "Email", "Task", "Event"])
        opp = what if what.startswith("006") else None
        lead = who if who.startswith("00Q") else None
        if kind == "Event":
            eid = _sf_id(rng, "00U")
            at = datetime.combine(day, time(rng.randrange(8, 17), 0))
            event_rows.append([eid, uid, what, who, sf_time(at), day.isoformat(), 30, "Meeting"])
            activities.append({"activity_id": eid, "rep_id": uid, "type": "meeting", "day": day,
                               "opportunity_id": opp, "lead_id": lead})
        else:
            tid = _sf_id(rng, "00T")
            call = kind == "Call"
            task_rows.append([
                tid, uid, what, who, kind, kind if kind != "Task" else "Other", day.isoformat(),
                rng.randrange(30, 900) if call else "", rng.choice(["Outbound", "Inbound"]) if call else "",
                rng.choice(["Connected", "No Answer", "Left Voicemail"]) if call else "", "Completed", f"{kind} {i}",
            ])
            activities.append({"activity_id": tid, "rep_id": uid, "type": {"Call": "call", "Email": "email"}.get(kind, "other"),
                               "day": day, "opportunity_id": opp, "lead_id": lead})
    _write(folder / "Task.csv",
           ["Id", "OwnerId", "WhatId", "WhoId", "TaskSubtype", "Type", "ActivityDate", "CallDurationInSeconds",
            "CallType", "CallDisposition", "Status", "Subject"], task_rows)
    _write(folder / "Event.csv",
           ["Id", "OwnerId", "WhatId", "WhoId", "ActivityDateTime", "ActivityDate", "DurationInMinutes", "Subject"],
           event_rows)

    return Truth(deals, reps, _dedupe_entries(entries), activities, fx,
                 sorted(p.name for p in folder.iterdir()))


def _dedupe_entries(entries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return sorted(set(entries))


# -- HubSpot ---------------------------------------------------------------------------------------

HS_PIPELINE = "Sales Pipeline"


def hubspot_export(folder: Path, *, seed: int = 11, n_deals: int = 130, stage_ids: bool = True) -> Truth:
    """The "all deals" export: hubspot-crm-exports-all-deals-2025-12-31.csv.

    ``stage_ids``: Deal Stage holds internal ids (appointmentscheduled) in about half the rows
    and labels in the others; False: labels only.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    owners = NAMES[:5]
    labels = [lab for _, lab in HS_STAGES] + [HS_WON[1], HS_LOST[1]]
    entered_cols = [f"Date entered {lab} ({HS_PIPELINE})" for lab in labels]
    exited_cols = [f"Date exited {lab} ({HS_PIPELINE})" for lab in labels[:5]]
    header = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date", "Deal owner",
              "Pipeline", "Deal Type", "Closed Lost Reason", *entered_cols, *exited_cols, "Last Activity Date"]
    reasons = {"Too expensive": "price", "Lost to competitor": "competitor", "Bad timing": "no_urgency",
               "Went silent": "Went silent"}

    def hs_time(t: datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M")

    deals, rows, entries = [], [], []
    for i, (status, created, close) in enumerate(_timeline(rng, n_deals)):
        rid = str(9_000_000_000 + rng.randrange(10**8))
        owner = owners[i % len(owners)]
        written_owner = owner + " " if i % 17 == 0 else owner  # stray space in a few rows: same rep
        amount = _amount(rng)
        if status == "open":
            k = rng.randrange(len(HS_STAGES))
        else:
            k = rng.randrange(len(HS_STAGES))
        path = [HS_STAGES[j] for j in range(k + 1) if j in (0, k) or rng.random() > 0.2]
        if status == "won":
            path.append(HS_WON)
        elif status == "lost":
            path.append(HS_LOST)
        current_id, current_label = path[-1]
        use_id = stage_ids and rng.random() < 0.5
        dtype = rng.choice(["newbusiness", "existingbusiness", ""])
        reason_text = rng.choice(list(reasons)) if status == "lost" else ""
        deals.append(Deal(
            rid, stable_id(owner), owner, status, current_label, amount, REPORTING, amount, created, close,
            deal_type={"newbusiness": "new_business", "existingbusiness": "expansion"}.get(dtype),
            loss_reason=reasons.get(reason_text),
        ))
        end = datetime.combine(close, time(16, 0)) if status != "open" else datetime(2025, 12, 30, 16, 0)
        times = _path_times(rng, created, end, len(path), status != "open")
        entered = {}
        for (sid, lab), at in zip(path, times):
            entered[lab] = hs_time(at)
            entries.append((rid, lab, hs_time(at)))
        close_text = close.isoformat() if rng.random() < 0.5 else close.isoformat() + " 17:00"
        rows.append([
            rid, f"Deal {i}", current_id if use_id else current_label, _money_text(amount), close_text,
            hs_time(created), written_owner, HS_PIPELINE, dtype, reason_text,
            *[entered.get(lab, "") for lab in labels],
            *[("2025-12-01 10:00" if lab in entered else "") for lab in labels[:5]],
            "",
        ])
    _write(folder / "hubspot-crm-exports-all-deals-2025-12-31.csv", header, rows)
    return Truth(deals, {stable_id(o): o for o in owners}, sorted(entries), files=sorted(p.name for p in folder.iterdir()))


# -- Pipedrive -------------------------------------------------------------------------------------


def pipedrive_export(folder: Path, *, seed: int = 5, n_deals: int = 120, file_name: str = "deals-8123456-17.csv",
                     encoding: str = "utf-8") -> Truth:
    """The deals list export with "Deal - " headers."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    owners = NAMES[2:7]
    orgs = [f"Org {c}" for c in "ABCDEFGHIJ"]
    reasons = {"Price": "price", "Chose competitor": "competitor", "No need": "no_need", "Budget freeze": "Budget freeze"}

    def pd_time(t: datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M:%S")

    deals, rows = [], []
    for i, (status, created, close) in enumerate(_timeline(rng, n_deals)):
        did = str(1000 + i)
        owner = owners[i % len(owners)]
        org = rng.choice(orgs)
        amount = _amount(rng)
        stage = rng.choice(PD_STAGES)
        # the expected close date is never the actual close date of a closed deal
        expected = close + timedelta(days=rng.choice([-40, -20, 25, 60])) if status != "open" else close
        closed_at = datetime.combine(close, time(rng.randrange(8, 18), rng.choice([0, 30]), 0))
        won_time = pd_time(closed_at) if status == "won" else ""
        lost_time = pd_time(closed_at) if status == "lost" else ""
        closed_on = pd_time(closed_at) if status != "open" else ""
        if status == "won" and i % 11 == 0:
            won_time = ""  # some exports lack the won time: Deal closed on is the close date
        reason_text = rng.choice(list(reasons)) if status == "lost" else ""
        deals.append(Deal(did, stable_id(owner), owner, status, stage, amount, REPORTING, amount, created, close,
                          expected_close=expected, loss_reason=reasons.get(reason_text), account_id=stable_id(org)))
        rows.append([did, f"Deal {i}", _money_text(amount), REPORTING, org, "Pipeline", stage, status, owner,
                     pd_time(created), won_time, lost_time, closed_on, expected.isoformat(), reason_text,
                     pd_time(created + timedelta(days=1))])
    header = ["Deal - ID", "Deal - Title", "Deal - Value", "Deal - Currency", "Deal - Organization", "Deal - Pipeline",
              "Deal - Stage", "Deal - Status", "Deal - Owner", "Deal - Deal created", "Deal - Won time",
              "Deal - Lost time", "Deal - Deal closed on", "Deal - Expected close date", "Deal - Lost reason",
              "Deal - Update time"]
    _write(folder / file_name, header, rows, encoding=encoding)
    return Truth(deals, {stable_id(o): o for o in owners}, files=sorted(p.name for p in folder.iterdir()))


BUILDERS = {"salesforce": salesforce_export, "hubspot": hubspot_export, "pipedrive": pipedrive_export}
