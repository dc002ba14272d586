"""A stand-in for the document sets the project never sees: periodic filings and earnings-call
transcripts of a few companies, many of them siblings (one company, another quarter), written as
PDFs the way such documents read, with questions that name the company and the period.

    .venv/bin/python bench/siblings.py [--out DIR]     # writes DIR/docs/*.pdf and DIR/questions.jsonl

What makes the real sets hard is built in: the filings of one company share their boilerplate
(risk factors, legal proceedings, the same table headings), a quarterly report's tables also hold
the same quarter of the year before (drawn with rules between the cells for one company, as most
text layers give them for the others: a label and its figures), the company's name is on the cover page and rarely in the
text of the page that answers, and some file names say nothing about the period (the cover does).
The numbers are drawn from a seeded generator, so a run is the same everywhere.

It is a proxy, written here: it shows whether the answer stage tells siblings apart, not how the
held-back sets score. bench/answers.py takes it as the set ``siblings``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MONTH_END = {1: "March 31", 2: "June 30", 3: "September 30", 4: "December 31"}
ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth"}


def _write_pdf():
    """data-samples' tiny PDF writer (a script, not a package: loaded from its path)."""
    spec = importlib.util.spec_from_file_location("samples_generate", ROOT / "data-samples" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_pdf


@dataclass
class Company:
    name: str  # "Northstar Robotics, Inc."
    short: str  # "Northstar Robotics"
    ticker: str
    industry: str
    drivers: list[str]  # what moved revenue, one per period
    segments: tuple[str, str]
    ceo: str
    cfo: str
    plant: list[str]  # a project the CEO speaks of on each call
    base_revenue: float  # millions
    periods: list[tuple[int, int]]  # (year, quarter); quarter 4 = the annual report
    calls: list[tuple[int, int]]
    file_names: dict = field(default_factory=dict)  # (year, quarter) -> file name; "call" key for calls


COMPANIES = [
    Company("Northstar Robotics, Inc.", "Northstar Robotics", "NSTR", "warehouse automation robots",
            ["higher shipments of autonomous pallet movers", "the ramp of the Vega picking arm",
             "service contracts with grocery distributors", "record orders from parcel carriers"],
            ("Systems", "Services"), "Elena Marsh", "David Okafor",
            ["the Tucson assembly line", "the Lyon service hub", "the second Tucson line"],
            380.0, [(2023, 1), (2023, 2), (2023, 3), (2023, 4)], [(2023, 2), (2023, 3)]),
    Company("Harbor Foods Corporation", "Harbor Foods", "HBRF", "packaged and frozen foods",
            ["price increases on frozen meals", "the launch of the Coastline snack range",
             "volume growth in private-label soups"],
            ("Frozen", "Pantry"), "Marcus Lindqvist", "Priya Raman",
            ["the Monterrey plant", "the Rotterdam distribution centre"],
            1210.0, [(2024, 1), (2024, 2), (2023, 4)], [(2024, 1), (2024, 2)]),
    Company("Pinecrest Energy Partners", "Pinecrest Energy", "PCEP", "natural gas gathering and processing",
            ["higher throughput at the Big Horn processing complex", "new gathering contracts in the Permian basin",
             "the startup of the Eagle Creek compressor station"],
            ("Gathering", "Processing"), "Sandra Whitfield", "Tomas Reyes",
            ["the Eagle Creek expansion", "the Big Horn debottlenecking"],
            640.0, [(2023, 1), (2023, 2), (2023, 3)], [(2023, 2), (2023, 3)]),
]


def _file_name(c: Company, year: int, quarter: int, kind: str, opaque_index: int) -> str:
    """Three companies, three naming habits: ticker and period, words and period, and opaque names
    whose period only the cover states."""
    if c.ticker == "NSTR":
        return f"NSTR_{year}Q{quarter}_10-Q.pdf" if kind == "10-Q" else (
            f"NSTR_{year}_10-K.pdf" if kind == "10-K" else f"NSTR_Q{quarter}_{year}_Earnings_Call.pdf")
    if c.ticker == "HBRF":
        return {"10-Q": f"Harbor Foods 10-Q Q{quarter} {year}.pdf", "10-K": f"Harbor Foods Annual Report {year}.pdf",
                "call": f"Harbor Foods Q{quarter} {year} earnings call transcript.pdf"}[kind]
    return f"pinecrest-{'quarterly' if kind == '10-Q' else 'call'}-{opaque_index:02d}.pdf"


def _without_rules(row: str) -> str:
    """"| Revenue | 1,745.9 | 1,477.9 |" as a text layer without the table's rules gives it: "Revenue 1,745.9 1,477.9"."""
    return " ".join(cell.strip() for cell in row.strip("|").split("|") if cell.strip())


def _money(x: float) -> str:
    return f"${x:,.1f} million"


def _figures(rng: random.Random, base: float, annual: bool) -> dict:
    scale = 4.0 if annual else 1.0
    revenue = round(base * scale * rng.uniform(0.9, 1.25), 1)
    prior = round(revenue / rng.uniform(1.04, 1.22), 1)
    cost = round(revenue * rng.uniform(0.52, 0.66), 1)
    rnd = round(revenue * rng.uniform(0.05, 0.11), 1)
    sga = round(revenue * rng.uniform(0.12, 0.2), 1)
    op = round(revenue - cost - rnd - sga, 1)
    net = round(op * rng.uniform(0.7, 0.8), 1)
    shares = rng.randint(80, 240)
    return {
        "revenue": revenue, "prior": prior, "growth": round(100 * (revenue / prior - 1)),
        "cost": cost, "gross": round(revenue - cost, 1), "rnd": rnd, "sga": sga, "op": op, "net": net,
        "eps": round(net / shares, 2), "shares": shares, "cash": round(base * rng.uniform(0.6, 1.6), 1),
        "capex": round(base * scale * rng.uniform(0.04, 0.09), 1), "buyback": round(base * rng.uniform(0.02, 0.06), 1),
        "margin": round(100 * (revenue - cost) / revenue, 1), "headcount": rng.randint(1800, 9000),
        "seg": round(revenue * rng.uniform(0.55, 0.75), 1),
        "guide_low": round(revenue * rng.uniform(1.01, 1.04)), "guide_high": round(revenue * 1.08),
    }


def _filing_pages(c: Company, year: int, quarter: int, f: dict, driver: str) -> list[list[tuple[str, str]]]:
    annual = quarter == 4 and c.ticker != "PCEP"
    period_end = f"{MONTH_END[quarter]}, {year}"
    if annual:
        cover_kind, ended, this, last = "FORM 10-K", f"For the fiscal year ended {period_end}", f"fiscal {year}", f"fiscal {year - 1}"
        heading = f"Year Ended {MONTH_END[quarter]}"
    else:
        cover_kind, ended = "FORM 10-Q", f"For the quarterly period ended {period_end}"
        this, last = f"the {ORDINAL[quarter]} quarter of {year}", f"the {ORDINAL[quarter]} quarter of {year - 1}"
        heading = f"Three Months Ended {MONTH_END[quarter]}"
    cover = [
        ("h1", "UNITED STATES SECURITIES AND EXCHANGE COMMISSION"),
        ("p", "Washington, D.C. 20549"),
        ("h2", cover_kind),
        ("p", ("ANNUAL REPORT" if annual else "QUARTERLY REPORT") + " PURSUANT TO SECTION 13 OR 15(d) OF THE "
              "SECURITIES EXCHANGE ACT OF 1934"),
        ("p", ended),
        ("h2", c.name.upper()),
        ("p", f"(Exact name of registrant as specified in its charter). Trading symbol: {c.ticker}. "
              f"Incorporated in Delaware."),
        ("p", f"As of the end of the period there were {f['shares']} million shares of the registrant's common "
              "stock outstanding."),
    ]
    statements = [
        ("h2", "Condensed Consolidated Statements of Operations (unaudited)"),
        ("p", "(in millions, except per share amounts)"),
        ("row", f"| | {heading}, {year} | {heading}, {year - 1} |"),
        ("row", f"| Revenue | {f['revenue']:,.1f} | {f['prior']:,.1f} |"),
        ("row", f"| Cost of revenue | {f['cost']:,.1f} | {f['prior'] * 0.6:,.1f} |"),
        ("row", f"| Gross profit | {f['gross']:,.1f} | {f['prior'] * 0.4:,.1f} |"),
        ("row", f"| Research and development | {f['rnd']:,.1f} | {f['prior'] * 0.08:,.1f} |"),
        ("row", f"| Selling, general and administrative | {f['sga']:,.1f} | {f['prior'] * 0.15:,.1f} |"),
        ("row", f"| Operating income | {f['op']:,.1f} | {f['prior'] * 0.17:,.1f} |"),
        ("row", f"| Net income | {f['net']:,.1f} | {f['prior'] * 0.13:,.1f} |"),
        ("row", f"| Diluted earnings per share | {f['eps']:.2f} | {f['prior'] * 0.13 / f['shares']:.2f} |"),
    ]
    if c.ticker != "NSTR":  # the text layer of most PDFs: a label and its figures, no rules between the cells
        statements = [(kind, _without_rules(text)) if kind == "row" else (kind, text) for kind, text in statements]
    mdna = [
        ("h2", "Management's Discussion and Analysis of Financial Condition and Results of Operations"),
        ("p", f"Overview. We design, build and support {c.industry} for customers in North America and Europe."),
        ("p", f"Revenue for {this} was {_money(f['revenue'])}, an increase of {f['growth']}% compared with "
              f"{_money(f['prior'])} in {last}, driven primarily by {driver}."),
        ("p", f"Gross margin was {f['margin']}% of revenue. Research and development expense was {_money(f['rnd'])}."),
        ("p", f"Revenue from the {c.segments[0]} segment was {_money(f['seg'])}; the remainder came from the "
              f"{c.segments[1]} segment."),
        ("h2", "Liquidity and Capital Resources"),
        ("p", f"We ended the period with cash and cash equivalents of {_money(f['cash'])}. Capital expenditures were "
              f"{_money(f['capex'])}, mainly for production equipment. During the period we repurchased shares for "
              f"{_money(f['buyback'])} under the program authorized by the Board."),
        ("p", f"At the end of the period we had approximately {f['headcount']:,} full-time employees."),
    ]
    risks = [
        ("h2", "Risk Factors"),
        ("p", "Our results may fluctuate because of changes in demand, pricing pressure from competitors, the "
              "availability and cost of components and raw materials, and disruptions in our supply chain."),
        ("p", "We depend on a limited number of suppliers for certain components. A loss of a supplier could delay "
              "shipments and increase our costs. Changes in interest rates and foreign exchange rates affect our "
              "results and the value of our assets."),
        ("h2", "Legal Proceedings"),
        ("p", "From time to time we are involved in claims and legal proceedings that arise in the ordinary course "
              "of business. We do not believe that any pending matter will have a material adverse effect."),
    ]
    return [cover, statements, mdna, risks]


def _notes_pages(c: Company, year: int, quarter: int, f: dict, rng: random.Random) -> list[list[tuple[str, str]]]:
    """The pages a real filing has beyond its statements: notes, controls, market risk and exhibits, written
    alike in every filing of the company, with this period's figures. They speak of revenue, cash,
    employees, capital spending and earnings per share without answering the questions (revenue
    recognition, cash paid for taxes, segment employees), as a long filing's pages do."""
    def m(share: float) -> str:
        return _money(round(f["revenue"] * share * rng.uniform(0.8, 1.2), 1))

    north, europe = m(0.62), m(0.31)
    pages = [
        [("h2", "Notes to Condensed Consolidated Financial Statements"),
         ("p", "Note 1. Basis of Presentation. The accompanying unaudited condensed consolidated financial statements "
               f"of {c.name} have been prepared in accordance with generally accepted accounting principles for interim "
               "financial information. In the opinion of management, all adjustments considered necessary for a fair "
               "presentation have been included."),
         ("p", "Note 2. Revenue Recognition. We recognize revenue when control of the promised goods or services "
               "transfers to our customers, in an amount that reflects the consideration we expect to be entitled to. "
               "Revenue from service contracts is recognized ratably over the contract term."),
         ("p", f"Disaggregation of revenue. Revenue by geography was {north} in North America and {europe} in Europe; "
               "the remainder came from other regions. Contract liabilities were "
               f"{m(0.05)} at the end of the period.")],
        [("h2", "Note 3. Cash, Cash Equivalents and Investments"),
         ("p", "Cash equivalents consist of highly liquid investments with original maturities of three months or less, "
               "primarily money market funds and commercial paper. Restricted cash of "
               f"{m(0.004)} is held as collateral for letters of credit."),
         ("p", f"Cash paid for income taxes was {m(0.02)}, and cash paid for interest was {m(0.006)}. Marketable "
               f"securities with a fair value of {m(0.09)} are classified as available for sale."),
         ("h2", "Note 4. Property and Equipment"),
         ("p", "Property and equipment are stated at cost less accumulated depreciation. Depreciation expense was "
               f"{m(0.03)}. Purchases of property and equipment that were accrued but not paid were {m(0.004)}.")],
        [("h2", "Note 5. Debt"),
         ("p", f"We have a revolving credit facility of {_money(round(f['revenue'] * 0.4))}, of which nothing was drawn at "
               "the end of the period. The facility bears interest at a floating rate plus a margin and contains "
               "customary covenants, with which we were in compliance."),
         ("h2", "Note 6. Earnings per Share"),
         ("p", "Basic earnings per share is computed by dividing net income by the weighted-average number of shares "
               "outstanding. Diluted earnings per share includes the effect of stock options and restricted stock units "
               "under the treasury stock method. Anti-dilutive awards excluded from the computation were "
               f"{rng.randint(1, 4)} million shares.")],
        [("h2", "Note 7. Stock-Based Compensation and Employees"),
         ("p", f"Stock-based compensation expense was {m(0.015)}. The 401(k) plan covers substantially all full-time "
               f"employees in the United States; the {c.segments[1]} segment had approximately "
               f"{rng.randint(150, 900):,} employees at the end of the period."),
         ("h2", "Quantitative and Qualitative Disclosures About Market Risk"),
         ("p", "We are exposed to market risks from changes in interest rates and foreign currency exchange rates. "
               "A hypothetical 10% change in exchange rates would change revenue by approximately "
               f"{m(0.01)}.")],
        [("h2", "Controls and Procedures"),
         ("p", "Our management, with the participation of our Chief Executive Officer and Chief Financial Officer, "
               "evaluated the effectiveness of our disclosure controls and procedures as of the end of the period and "
               "concluded that they were effective. There was no change in our internal control over financial "
               "reporting that materially affected it."),
         ("h2", "Exhibits"),
         ("p", "31.1 Certification of the Chief Executive Officer. 31.2 Certification of the Chief Financial Officer. "
               "32.1 Certifications pursuant to 18 U.S.C. Section 1350. 101 Inline XBRL documents.")],
    ]
    return pages


def _call_pages(c: Company, year: int, quarter: int, f: dict, plant: str, rng: random.Random) -> list[list[tuple[str, str]]]:
    low, high = f["guide_low"], f["guide_high"]
    analyst, bank = rng.choice([("Rachel Kim", "Morgan Crane"), ("Luis Ortega", "Baird Whitney"),
                                ("Hannah Cole", "Stifel Marsh")])
    opening = [
        ("h1", f"{c.short} {ORDINAL[quarter].capitalize()} Quarter {year} Earnings Conference Call"),
        ("p", "Operator: Good day, and welcome to the conference call. All participants are in listen-only mode. "
              "Please note this event is being recorded."),
        ("p", f"{c.ceo}, Chief Executive Officer: Thank you, and good morning, everyone. This was a strong quarter "
              f"for our team. Our progress on {plant} remains on schedule, and we expect it to be fully "
              f"operational within two quarters. Demand for {c.industry} stayed healthy."),
        ("p", f"{c.cfo}, Chief Financial Officer: Thanks. Revenue in the quarter was {_money(f['revenue'])}, up "
              f"{f['growth']}% year over year, and gross margin came in at {f['margin']}%. For the next quarter we "
              f"expect revenue between ${low:,.0f} million and ${high:,.0f} million."),
    ]
    qa = [
        ("h2", "Question-and-Answer Session"),
        ("p", f"{analyst}, {bank}: Thanks for taking my question. Could you talk about what drove the growth and "
              "whether pricing will hold?"),
        ("p", f"{c.ceo}, Chief Executive Officer: Sure. Most of the growth came from {c.drivers[(quarter + 1) % len(c.drivers)]}. "
              "We think pricing holds as long as input costs stay where they are."),
        ("p", f"{analyst}, {bank}: And on capital spending for the rest of the year?"),
        ("p", f"{c.cfo}, Chief Financial Officer: We spent {_money(f['capex'])} on capital projects this quarter, and we "
              "expect a similar level next quarter."),
        ("p", "Operator: This concludes today's conference call. You may now disconnect."),
    ]
    return [opening, qa]


def _questions(c: Company, year: int, quarter: int, f: dict, doc: str, driver: str, kind: str,
               plant: str | None) -> list[dict]:
    who = c.short
    whose = who + ("'" if who.endswith("s") else "'s")  # "Harbor Foods'", "Pinecrest Energy's"
    if kind == "call":
        when = f"Q{quarter} {year}"
        asks = [
            (f"What revenue range did {who} guide to for the quarter after {when} on its earnings call?",
             f"${f['guide_low']:,.0f} million and ${f['guide_high']:,.0f} million", 1),
            (f"What did {whose} CEO say about {plant} on the {when} earnings call?", "fully operational within two quarters", 1),
            (f"How much did {who} spend on capital projects according to the {when} call?", _money(f["capex"]), 2),
            (f"Who is {whose} CFO, according to the {when} earnings call?", c.cfo, 1),  # the call writes the title out
        ]
    elif quarter == 4 and c.ticker != "PCEP":
        when = f"fiscal {year}"
        asks = [
            (f"What was {whose} revenue in {when}?", _money(f["revenue"]), 3),
            (f"How much did {who} spend on capital expenditures in {when}?", _money(f["capex"]), 3),
            (f"What were {whose} diluted earnings per share for fiscal year {year}?", f"{f['eps']:.2f}", 2),
            (f"What was {whose} diluted EPS in fiscal {year}?", f"{f['eps']:.2f}", 2),  # an acronym the filing spells out
        ]
    else:
        when = rng_when(year, quarter)
        asks = [
            (f"What was {whose} revenue in {when}?", _money(f["revenue"]), 3),
            (f"What drove {whose} revenue growth in {when}?", driver, 3),
            (f"How much cash and cash equivalents did {who} have at the end of {when}?", _money(f["cash"]), 3),
            (f"How many full-time employees did {who} have at the end of {when}?", f"{f['headcount']:,}", 3),
        ]
    out = []
    for question, answer, page in asks:
        pages = [2, 3] if page == 3 and answer == _money(f["revenue"]) else [page]  # the table holds it too
        out.append({"question": question, "answers": [answer], "evidence": [{"doc": doc, "page": p} for p in pages],
                    "answerable": True, "meta": {"company": c.ticker, "period": f"{year}Q{quarter}", "kind": kind}})
    return out


def rng_when(year: int, quarter: int) -> str:
    """The period as questions name it, in the spellings people use, chosen by the period itself."""
    return [f"Q{quarter} {year}", f"the {ORDINAL[quarter]} quarter of {year}", f"{year} Q{quarter}"][(year + quarter) % 3]


UNANSWERABLE = [
    "What was Ironclad Mining's revenue in Q3 2023?",
    "How many stores did Evergreen Apparel open in 2023?",
    "What is the dividend policy of Summit Airlines?",
    "Who audits the financial statements of Bluefin Software?",
]


def build(out: Path, seed: int = 0, notes: bool = False) -> tuple[Path, Path]:
    """The set under ``out``; with ``notes``, every filing runs on with five pages of notes and
    disclosures (:func:`_notes_pages`), the same questions and evidence pages."""
    write_pdf = _write_pdf()
    rng = random.Random(seed)
    docs = out / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    questions: list[dict] = []
    for c in COMPANIES:
        opaque = 0
        for n, (year, quarter) in enumerate(c.periods):
            kind = "10-K" if quarter == 4 and c.ticker != "PCEP" else "10-Q"
            opaque += 1
            name = _file_name(c, year, quarter, kind, opaque)
            f = _figures(rng, c.base_revenue, kind == "10-K")
            driver = c.drivers[n % len(c.drivers)]
            pages = _filing_pages(c, year, quarter, f, driver)
            if notes:
                pages += _notes_pages(c, year, quarter, f, random.Random(f"{seed}-{c.ticker}-{year}-{quarter}"))
            write_pdf(docs / name, pages, f"{c.name} {kind}")
            questions += _questions(c, year, quarter, f, name, driver, kind, None)
        for n, (year, quarter) in enumerate(c.calls):
            opaque += 1
            name = _file_name(c, year, quarter, "call", opaque)
            f = _figures(rng, c.base_revenue, False)
            plant = c.plant[n % len(c.plant)]
            write_pdf(docs / name, _call_pages(c, year, quarter, f, plant, rng), f"{c.short} earnings call")
            questions += _questions(c, year, quarter, f, name, "", "call", plant)
    for i, q in enumerate(questions):
        q["id"] = f"siblings-{i:03d}"
    for j, text in enumerate(UNANSWERABLE):
        questions.append({"id": f"siblings-u{j:02d}", "question": text, "answers": [], "evidence": [],
                          "answerable": False, "meta": {}})
    qfile = out / "questions.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return docs, qfile


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.common import CACHE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=CACHE / "siblings-set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--notes", action="store_true", help="filings run on with pages of notes (the set siblings-long)")
    args = ap.parse_args()
    docs, qfile = build(args.out, args.seed, args.notes)
    n = sum(1 for _ in qfile.open())
    print(f"{len(list(docs.iterdir()))} documents in {docs}, {n} questions in {qfile}")


if __name__ == "__main__":
    main()
