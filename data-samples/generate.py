"""Build data-samples/docs/: the documents of Brightwater Instruments, a fictional maker of
marine sensors. Text formats are written as they are; PDF, DOCX, PPTX, XLSX and EML are
built from the same text here, so the binaries can be regenerated and reviewed:

    .venv/bin/python data-samples/generate.py
"""

from __future__ import annotations

import email.message
import email.utils
from pathlib import Path

DOCS = Path(__file__).resolve().parent / "docs"


# -- a tiny PDF writer (standard Helvetica, WinAnsi text, one text layer per page) -----------
def _pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _wrap(text: str, width: int) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width and line:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        out.append(line)
    return out or [""]


def write_pdf(path: Path, pages: list[list[tuple[str, str]]], title: str) -> None:
    """pages: list of pages, each a list of (style, text); style: h1, h2, p, row."""
    objects: list[bytes] = []

    def add(obj: bytes) -> int:
        objects.append(obj)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    page_ids = []
    pages_id = len(objects) + 2 * len(pages) + 1
    for n, page in enumerate(pages, 1):
        y = 790
        ops = []
        for style, text in page:
            size, fnt, width, gap = {"h1": (16, "F2", 60, 26), "h2": (12, "F2", 80, 20), "p": (10, "F1", 100, 14),
                                     "row": (10, "F1", 110, 14)}[style]
            if style in ("h1", "h2"):
                y -= 6
            for line in _wrap(text, width) if style != "row" else [text]:
                ops.append(f"BT /{fnt} {size} Tf 56 {y} Td ({_pdf_escape(line)}) Tj ET")
                y -= gap
            if style == "p":
                y -= 6
        ops.append(f"BT /F1 8 Tf 280 30 Td (Page {n}) Tj ET")
        stream = "\n".join(ops).encode("cp1252")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page_ids.append(add(
            f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 595 842] /Contents {content} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R /F2 {bold} 0 R >> >> >>".encode()
        ))
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    assert add(f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()) == pages_id
    catalog = add(f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode())
    info = add(f"<< /Title ({_pdf_escape(title)}) /Producer (Brightwater sample generator) >>".encode())
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


# -- the documents -------------------------------------------------------------------------
HANDBOOK = [
    [("h1", "Brightwater Instruments Employee Handbook"),
     ("p", "This handbook describes how we work at Brightwater Instruments AS, a maker of marine sensors and "
           "ocean data buoys headquartered in Bergen, Norway, with an office in Aberdeen, Scotland. It applies to all "
           "permanent and fixed-term employees. Contractors follow the terms of their own agreements."),
     ("h2", "Working Hours"),
     ("p", "The standard working week is 37.5 hours, Monday to Friday. Core hours, when everyone is expected to be "
           "available, are 10:00 to 15:00 local time. Outside core hours you may arrange your day with your manager."),
     ("p", "Overtime must be approved in advance by your manager and is paid at 150 percent of the hourly rate, or "
           "taken as time off in lieu within three months.")],
    [("h2", "Annual Leave"),
     ("p", "Every employee receives 25 days of paid annual leave per calendar year, plus public holidays. Employees "
           "who have completed five years of service receive 28 days. New employees accrue leave from their first "
           "day, pro rata for the part of the year they are employed."),
     ("p", "Up to five unused days may be carried over into the first quarter of the following year. Carried-over days "
           "that are not taken by 31 March expire. Leave requests are made in the HR portal at least two weeks ahead "
           "for periods longer than three days."),
     ("h2", "Sick Leave"),
     ("p", "If you are ill, tell your manager before 09:30 on the first day of absence. You may self-certify for up "
           "to three calendar days; from the fourth day a doctor's note is required. Full salary is paid for up to "
           "16 weeks of sick leave in any rolling twelve-month period.")],
    [("h2", "Remote Work"),
     ("p", "Employees in office-based roles may work remotely up to three days per week, agreed with their manager. "
           "Laboratory and production staff work on site. Brightwater provides a laptop, a monitor and a one-time "
           "home office allowance of NOK 5,000 (or GBP 400 in the Aberdeen office)."),
     ("p", "Work from abroad is allowed for up to 20 working days per year, subject to approval by HR, because of "
           "tax and insurance rules."),
     ("h2", "Equipment and Security"),
     ("p", "Company laptops use full-disk encryption and must be locked when unattended. Lost or stolen equipment "
           "must be reported to the IT helpdesk within 24 hours by calling extension 4400."),
     ("h2", "Performance Reviews"),
     ("p", "Performance reviews take place twice a year, in March and September. Salary adjustments are decided "
           "once a year and take effect on 1 May.")],
]

EXPENSES = [
    [("h1", "Expense Policy"),
     ("p", "This policy covers business expenses paid by employees and later reimbursed by Brightwater Instruments. "
           "It is owned by the Finance department and was last revised in August 2026."),
     ("h2", "Submitting Claims"),
     ("p", "Claims are submitted in the Expense app with a photo of every receipt. Claims must be submitted within "
           "60 days of the expense; later claims are only paid with approval from the Finance Director. "
           "Reimbursements are paid with the next monthly salary run."),
     ("h2", "Meal Allowances"),
     ("p", "When travelling on business, meals are reimbursed up to the daily limits below. Alcohol is not "
           "reimbursed except at client events approved in advance."),
     ("row", "Location              Breakfast   Lunch   Dinner   Daily maximum"),
     ("row", "Norway                NOK 150     NOK 250 NOK 450  NOK 850"),
     ("row", "United Kingdom        GBP 12      GBP 20  GBP 35   GBP 67"),
     ("row", "Rest of the world     EUR 15      EUR 25  EUR 45   EUR 85")],
    [("h2", "Mileage"),
     ("p", "Use of a private car for business is reimbursed at NOK 3.50 per kilometre in Norway and GBP 0.45 per "
           "mile in the United Kingdom. Commuting between home and your usual office is not reimbursed."),
     ("h2", "Corporate Cards"),
     ("p", "Employees who travel more than six times a year may apply for a corporate card. Personal purchases on "
           "a corporate card are not allowed; any made by mistake must be repaid within 14 days."),
     ("h2", "Non-Reimbursable Items"),
     ("p", "Fines, parking tickets, personal entertainment, upgrades to business class on flights under six hours, "
           "and lost luggage that is covered by travel insurance are not reimbursed.")],
]


def build_pdfs() -> None:
    write_pdf(DOCS / "hr" / "employee-handbook.pdf", HANDBOOK, "Employee Handbook")
    write_pdf(DOCS / "finance" / "expense-policy.pdf", EXPENSES, "Expense Policy")


def build_docx() -> None:
    import docx

    d = docx.Document()
    d.add_heading("Parental Leave Policy", 0)
    d.add_paragraph("Brightwater Instruments supports employees who become parents by birth, adoption or surrogacy. "
                    "This policy adds to the statutory rights in Norway and the United Kingdom.")
    d.add_heading("Leave Entitlement", 1)
    d.add_paragraph("The birth parent is entitled to 18 weeks of parental leave at full pay. The other parent is "
                    "entitled to 12 weeks at full pay. Leave must start within 12 months of the birth or adoption.")
    t = d.add_table(rows=1, cols=3)
    t.rows[0].cells[0].text, t.rows[0].cells[1].text, t.rows[0].cells[2].text = "Parent", "Weeks at full pay", "Notice required"
    for row in (("Birth parent", "18", "8 weeks"), ("Other parent", "12", "4 weeks"), ("Adoptive parent", "18", "8 weeks")):
        cells = t.add_row().cells
        for c, v in zip(cells, row):
            c.text = v
    d.add_heading("Part-Time Return", 1)
    d.add_paragraph("After parental leave, employees may return at 60 to 80 percent of full time for up to one year, "
                    "with salary adjusted accordingly. Requests go to HR at least four weeks before the return date.")
    d.add_heading("Keeping in Touch Days", 1)
    d.add_paragraph("Up to ten paid keeping-in-touch days may be worked during leave by mutual agreement.")
    d.save(DOCS / "hr" / "parental-leave-policy.docx")

    d = docx.Document()
    d.add_heading("Travel Booking Guide", 0)
    d.add_paragraph("All business travel is booked through Nordic Travel Desk, our travel agency, by email to "
                    "travel@brightwater.example or in the booking portal.")
    d.add_heading("Flights", 1)
    d.add_paragraph("Book economy class for flights under six hours. Premium economy is allowed for flights of six "
                    "hours or more. Book at least 14 days ahead where possible.")
    d.add_heading("Hotels", 1)
    d.add_paragraph("The nightly hotel limit is NOK 1,800 in Norway, GBP 160 in London and GBP 120 elsewhere in the "
                    "United Kingdom. Preferred hotels are listed in the booking portal.")
    d.save(DOCS / "finance" / "travel-booking-guide.docx")

    d = docx.Document()
    d.add_heading("Release Process", 0)
    d.add_paragraph("Firmware for the Tidewater buoy and the Kelp sensor family ships through the release train "
                    "described here. Releases go out every second Tuesday.")
    d.add_heading("Release Checklist", 1)
    for item in ("All unit and hardware-in-the-loop tests pass on the release branch.",
                 "The change log is reviewed by the product owner.",
                 "Two approvals from the firmware team, one of them a senior engineer.",
                 "The signed image is uploaded to the update server with a staged rollout of 5 percent."):
        d.add_paragraph(item, style="List Bullet")
    d.add_heading("Rollback", 1)
    d.add_paragraph("If the error rate of updated devices rises above 2 percent within 48 hours, the on-call engineer "
                    "halts the rollout and restores the previous image.")
    d.save(DOCS / "engineering" / "release-process.docx")


def build_pptx() -> None:
    from pptx import Presentation
    from pptx.util import Inches

    p = Presentation()
    s = p.slides.add_slide(p.slide_layouts[0])
    s.shapes.title.text = "Q3 2026 Results"
    s.placeholders[1].text = "Brightwater Instruments - Board update, October 2026"
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Highlights"
    s.placeholders[1].text = ("Revenue grew 14 percent year on year to NOK 212 million\n"
                              "Tidewater buoy orders reached 340 units\n"
                              "Gross margin improved to 48 percent")
    s = p.slides.add_slide(p.slide_layouts[5])
    s.shapes.title.text = "Revenue by Product Line"
    rows = [("Product line", "Q3 2025 (NOK m)", "Q3 2026 (NOK m)"), ("Tidewater buoys", "98", "121"),
            ("Kelp sensors", "61", "66"), ("Data services", "27", "25")]
    table = s.shapes.add_table(len(rows), 3, Inches(0.5), Inches(1.5), Inches(9), Inches(2)).table
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            table.cell(r, c).text = v
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Outlook"
    s.placeholders[1].text = ("Full-year revenue guidance raised to NOK 820 million\n"
                              "New Aberdeen service centre opens in January 2027")
    p.save(DOCS / "finance" / "q3-2026-results.pptx")

    p = Presentation()
    s = p.slides.add_slide(p.slide_layouts[0])
    s.shapes.title.text = "Platform Architecture Overview"
    s.placeholders[1].text = "Engineering all-hands, 2026"
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Data Path"
    s.placeholders[1].text = ("Buoys send readings every 10 minutes over Iridium satellite links\n"
                              "The ingest service writes readings to a TimescaleDB cluster in Bergen\n"
                              "Customers read data through the Harbour API")
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Availability Targets"
    s.placeholders[1].text = ("Harbour API: 99.9 percent monthly availability\n"
                              "Data loss budget: no more than 0.1 percent of readings per month")
    p.save(DOCS / "engineering" / "architecture-overview.pptx")


def build_xlsx() -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Health plans"
    ws.append(["Plan", "Monthly premium (NOK)", "Annual deductible (NOK)", "Dental included"])
    ws.append(["Basic", 0, 4000, "No"])
    ws.append(["Plus", 450, 1500, "Yes"])
    ws.append(["Family Plus", 980, 1500, "Yes"])
    ws2 = wb.create_sheet("Pension")
    ws2.append(["Item", "Value"])
    ws2.append(["Employer pension contribution", "7 percent of salary"])
    ws2.append(["Employee contribution (optional)", "up to 4 percent of salary"])
    ws2.append(["Vesting period", "none"])
    wb.save(DOCS / "hr" / "benefits-summary.xlsx")

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Budget 2027"
    ws.append(["Department", "Budget 2026 (NOK m)", "Budget 2027 (NOK m)", "Change"])
    for row in (["Engineering", 142, 158, "+11%"], ["Production", 210, 224, "+7%"], ["Sales and marketing", 64, 70, "+9%"],
                ["Finance and HR", 31, 32, "+3%"]):
        ws.append(row)
    wb.save(DOCS / "finance" / "budget-2027.xlsx")


def build_eml() -> None:
    m = email.message.EmailMessage()
    m["From"] = "Ingrid Solberg <cto@brightwater.example>"
    m["To"] = "engineering@brightwater.example"
    m["Subject"] = "Postmortem: Harbour API outage on 14 September 2026"
    m["Date"] = email.utils.format_datetime(email.utils.parsedate_to_datetime("Tue, 16 Sep 2026 09:12:00 +0200"))
    m.set_content(
        "Hi all,\n\nHere is the summary of the Harbour API outage on 14 September.\n\n"
        "What happened: the API was unavailable for 47 minutes, from 02:13 to 03:00 CEST, after a certificate "
        "on the load balancer expired.\n\n"
        "Impact: customers could not read data; no readings were lost, because the buoys buffer up to 72 hours "
        "of data.\n\n"
        "Actions: certificate renewal is now automated, and expiry alerts fire 30 days ahead. Owner: Platform team.\n\n"
        "Ingrid\n"
    )
    (DOCS / "engineering" / "postmortem-harbour-api-outage.eml").write_bytes(bytes(m))

    m = email.message.EmailMessage()
    m["From"] = "Office of the CEO <ceo@brightwater.example>"
    m["To"] = "all@brightwater.example"
    m["Subject"] = "Office move in Bergen and the winter party"
    m["Date"] = email.utils.format_datetime(email.utils.parsedate_to_datetime("Mon, 02 Nov 2026 08:30:00 +0100"))
    m.set_content(
        "Dear colleagues,\n\nOur Bergen office moves to Damsgardsveien 40 on 1 February 2027. The new building has "
        "a test tank for buoy trials and room for 180 people.\n\n"
        "The winter party takes place on 11 December at Bryggen Hall, starting at 18:00. Please register by 27 "
        "November.\n\nBest regards,\nMarte Lien, CEO\n"
    )
    (DOCS / "company" / "announcement-office-move.eml").write_bytes(bytes(m))


TEXT_FILES = {
    "hr/onboarding-checklist.md": """# Onboarding Checklist

New employees and their managers use this checklist during the first month.

## Before the First Day

- The manager orders a laptop from IT at least ten working days before the start date.
- HR sends the employment contract and the handbook.

## First Week

- Collect your access badge from reception in Bergen or Aberdeen.
- Complete the security awareness course in the learning portal; it takes about 45 minutes.
- Meet your onboarding buddy, who is assigned by your manager.

## First Month

- Agree on goals for the probation period with your manager.
- The probation period is six months, with a check-in meeting after three months.
""",
    "hr/code-of-conduct.html": """<!DOCTYPE html>
<html><head><title>Code of Conduct</title></head><body>
<h1>Code of Conduct</h1>
<p>Brightwater Instruments expects every employee to act honestly, fairly and safely.</p>
<h2>Gifts and Hospitality</h2>
<p>Employees may accept gifts worth up to NOK 500 (or GBP 40). Anything of higher value must be declared to
Compliance within five working days and is usually returned.</p>
<h2>Reporting Concerns</h2>
<p>Concerns can be raised with your manager, with HR, or anonymously through the whistleblowing line run by an
external provider, reachable at +47 55 00 12 34. Retaliation against anyone who reports in good faith is
forbidden.</p>
<h2>Conflicts of Interest</h2>
<p>Side jobs for customers, suppliers or competitors require written approval from the Compliance officer.</p>
</body></html>
""",
    "hr/holiday-calendar-2026.csv": """Date,Holiday,Office
2026-01-01,New Year's Day,Bergen and Aberdeen
2026-04-02,Maundy Thursday,Bergen
2026-04-03,Good Friday,Bergen and Aberdeen
2026-04-06,Easter Monday,Bergen and Aberdeen
2026-05-01,Labour Day,Bergen
2026-05-17,Constitution Day,Bergen
2026-12-24,Christmas Eve (office closed),Bergen and Aberdeen
2026-12-25,Christmas Day,Bergen and Aberdeen
2026-12-26,Boxing Day,Bergen and Aberdeen
""",
    "finance/purchasing-approval-limits.md": """# Purchasing Approval Limits

Every purchase order needs approval before it is sent to the supplier. The approver depends on the amount.

| Amount (NOK, excl. VAT) | Approver |
| --- | --- |
| up to 25,000 | Team lead |
| 25,000 to 250,000 | Department head |
| 250,000 to 2,000,000 | Finance Director |
| above 2,000,000 | CEO and board chair |

Splitting a purchase into smaller orders to avoid a limit is a breach of this policy.

## Preferred Suppliers

Use a preferred supplier from the procurement portal where one exists. New suppliers are checked by Finance before
the first order, which takes about five working days.
""",
    "finance/invoice-process.txt": """Invoice Process

Supplier invoices are sent to invoices@brightwater.example as PDF. Paper invoices are not accepted.

Every invoice must carry a purchase order number. Invoices without one are returned to the supplier.

Our standard payment terms are 30 days from the invoice date. Invoices are paid in two payment runs each week, on
Tuesdays and Thursdays.

Questions about an invoice go to the accounts payable team on extension 4200.
""",
    "engineering/incident-response-runbook.md": """# Incident Response Runbook

This runbook tells the on-call engineer what to do when production is degraded.

## Severity Levels

| Severity | Definition | Response time |
| --- | --- | --- |
| SEV1 | Harbour API down or data loss for customers | 15 minutes, around the clock |
| SEV2 | Degraded service for some customers | 1 hour during working hours |
| SEV3 | Minor issue with a workaround | next working day |

## First Steps

1. Acknowledge the page in the paging tool within the response time.
2. Open an incident channel named after the date, for example inc-2026-09-14.
3. Name an incident commander; for SEV1 also inform the CTO.

## After the Incident

A written postmortem is due within five working days for every SEV1 and SEV2 incident. Postmortems are blameless.
""",
    "engineering/oncall-rotation.html": """<!DOCTYPE html>
<html><head><title>On-call Rotation</title></head><body>
<h1>On-call Rotation</h1>
<p>Platform engineers share a weekly on-call rotation that starts each Monday at 09:00.</p>
<table>
<tr><th>Week</th><th>Primary</th><th>Secondary</th></tr>
<tr><td>Week 48</td><td>Jonas Berg</td><td>Aisha Khan</td></tr>
<tr><td>Week 49</td><td>Aisha Khan</td><td>Tomasz Nowak</td></tr>
<tr><td>Week 50</td><td>Tomasz Nowak</td><td>Jonas Berg</td></tr>
</table>
<h2>Compensation</h2>
<p>Each week of primary on-call is compensated with NOK 4,000, and each call-out outside working hours with two
hours of time off in lieu.</p>
</body></html>
""",
    "engineering/security-guidelines.txt": """Security Guidelines for Engineers

Secrets

Passwords, API keys and certificates are stored in the secrets vault, never in source code or chat. A secret that
was exposed must be rotated within four hours.

Access

Production access is granted for 8 hours at a time through the access broker and is logged. Multi-factor
authentication is required for every system that supports it.

Dependencies

Third-party libraries are scanned for known vulnerabilities on every build. A critical vulnerability must be
fixed within 7 days, a high one within 30 days.
""",
    "company/about-brightwater.md": """# About Brightwater Instruments

Brightwater Instruments AS was founded in 2009 in Bergen by two oceanographers, Marte Lien and Henrik Vik. We
design and build marine sensors and ocean data buoys used by research institutes, fish farms and offshore wind
operators.

## Products

- **Tidewater buoy**: a solar-powered data buoy that measures waves, currents and water temperature.
- **Kelp sensors**: water-quality sensors for oxygen, salinity and chlorophyll.
- **Harbour**: our data service, which delivers readings to customers through an API.

## People

We employ about 260 people: 190 in Bergen and 70 in Aberdeen. The company is owned by its founders and
employees.
""",
    "company/it-helpdesk-faq.html": """<!DOCTYPE html>
<html><head><title>IT Helpdesk FAQ</title></head><body>
<h1>IT Helpdesk FAQ</h1>
<h2>How do I reset my password?</h2>
<p>Use the self-service page at id.brightwater.example. Passwords must be at least 14 characters long and are
changed every 12 months.</p>
<h2>How do I get a new monitor or keyboard?</h2>
<p>Order it in the IT shop in the intranet; standard items are delivered within three working days.</p>
<h2>When is the helpdesk open?</h2>
<p>The helpdesk is staffed from 08:00 to 17:00 on working days. Outside those hours, call the on-call number for
urgent problems only.</p>
</body></html>
""",
}


def build_text() -> None:
    for rel, text in TEXT_FILES.items():
        (DOCS / rel).write_text(text, encoding="utf-8")


def main() -> None:
    for sub in ("hr", "finance", "engineering", "company"):
        (DOCS / sub).mkdir(parents=True, exist_ok=True)
    build_pdfs()
    build_docx()
    build_pptx()
    build_xlsx()
    build_eml()
    build_text()
    print(f"wrote {sum(1 for p in DOCS.rglob('*') if p.is_file())} files under {DOCS}")


if __name__ == "__main__":
    main()
