#!/usr/bin/env python3
"""Writes the small document corpus the knowledge-base tests ingest (Tests/TailorRAGTests/Fixtures/docs):
one file per supported format, plus files that must fail or be decoded with a note.

Needs: pip install python-docx fpdf2. The outputs are committed; run again only to change them.
The texts are about a made-up bicycle maker, so each fact is findable in exactly one place.
"""
import json, os, sys

out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TailorRAGTests", "Fixtures", "docs")
os.makedirs(out, exist_ok=True)

def write(name, text, encoding="utf-8"):
    with open(os.path.join(out, name), "w", encoding=encoding, newline="") as f:
        f.write(text)

# Markdown: front matter, ATX and setext headings, a list, a table, a code fence, links.
write("handbook.md", """---
title: Lumen Bikes Service Handbook
author: Workshop Team
---
# Lumen Bikes Service Handbook

Welcome to the workshop. This handbook explains how we service every Lumen bicycle.

## Brakes

Hydraulic brakes are bled every twelve months. Use only mineral oil; DOT fluid destroys the seals.
See the [parts list](parts.csv) for pad codes.

### Pad wear

Replace the pads when the friction material is thinner than 1.5 millimetres.
A squeal after rain is normal and fades after a few stops.

## Drivetrain

- Clean the chain every 300 kilometres.
- Replace the chain when it has stretched by 0.5 percent.
- Cassettes last about three chains.

| Part | Interval |
|------|----------|
| Chain | 3000 km |
| Cassette | 9000 km |

Tyre pressure
-------------

City tyres run at 4.5 bar; the cargo model needs 5 bar when loaded.

```
torque --bolt stem --nm 5
```
""")

# HTML: boilerplate (nav, header, footer, script, style, cookie banner) around an article.
write("faq.html", """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lumen FAQ &amp; Help</title>
<meta name="description" content="Answers to common questions">
<style>body { font-family: sans-serif } .secret { color: red }</style>
<script>var trackingCode = "UA-SHOULD-NOT-APPEAR";</script></head>
<body>
<header><a href="/">Lumen home</a> <a href="/shop">Shop</a></header>
<nav><ul><li>Products</li><li>Dealers</li><li>Careers</li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept all?</div>
<main><article>
<h1>Frequently asked questions</h1>
<h2>Delivery</h2>
<p>Orders ship within <b>three working days</b> from our warehouse in Ghent.
Delivery to the Netherlands takes two more days.</p>
<h2>Returns</h2>
<p>You may return an unridden bike within 30 days&nbsp;&mdash; we refund the full price.</p>
<ul><li>Keep the original box.</li><li>Print the return label from your account.</li></ul>
<h2>Sizes</h2>
<table><tr><th>Frame</th><th>Rider height</th></tr>
<tr><td>S</td><td>155&ndash;170 cm</td></tr>
<tr><td>M</td><td>170&ndash;185 cm</td></tr></table>
</article></main>
<aside>Related: our blog about the Tour of Flanders.</aside>
<footer>&copy; 2026 Lumen Bikes. All rights reserved.</footer>
<script>console.log("footer script must not appear")</script>
</body></html>
""")

# CSV with a quoted comma, a doubled quote and a newline inside quotes; TSV.
write("parts.csv", 'code,name,price,notes\n'
      'BP-100,"Brake pad, organic",12.50,Standard pad for city bikes\n'
      'BP-200,"Brake pad, sintered",15.90,"For the cargo model; lasts ""twice"" as long"\n'
      'CH-11,Chain 11-speed,29.00,"Fits all\n2024 models"\n')
write("stores.tsv", "city\taddress\topening hours\nGhent\tKorenmarkt 4\t9-18\nUtrecht\tOudegracht 120\t10-18\n")

# JSONL: records with ids, titles, text and metadata fields.
tickets = [
    {"id": "T-1", "title": "Creaking bottom bracket", "text": "The customer hears a creak when pedalling hard uphill. Regreasing the bottom bracket threads fixed it.", "priority": "low", "product": "Urban 3"},
    {"id": "T-2", "title": "Motor cuts out", "text": "The e-bike motor stops assisting after ten minutes in cold weather. The battery firmware update 2.4 solves this.", "priority": "high", "product": "E-Cargo"},
    {"id": "T-3", "title": "Flat tyres", "text": "Repeated flats on the rear wheel came from a sharp spoke end. We replaced the rim tape.", "priority": "medium", "product": "Urban 3"},
]
write("tickets.jsonl", "".join(json.dumps(t) + "\n" for t in tickets))

# Windows-1252 text (é and a curly apostrophe) and UTF-16 with a byte-order mark.
write("legacy-notes.txt", "Caf\u00e9 ride on Sunday\u2019s route.\n\nMeet at the bridge at 8.\n", encoding="cp1252")
write("utf16-notes.txt", "\ufeffSaddle heights are measured from the crank axle.\n", encoding="utf-16-le")

# A file that is not a PDF, and a file type Tailor does not read.
write("broken.pdf", "this is not a pdf file at all\n")
write("photo.xyz", "binary-ish\n")

# PDF: two pages, a title in the metadata.
from fpdf import FPDF
pdf = FPDF()
pdf.set_title("Lumen Warranty Terms")
pdf.set_author("Lumen Legal")
pdf.set_font("Helvetica", size=11)
pdf.add_page()
pdf.multi_cell(0, 6, "Warranty terms\n\nEvery Lumen frame carries a lifetime warranty for the first owner. "
               "Paint and decals are covered for two years.")
pdf.add_page()
pdf.multi_cell(0, 6, "Electric parts\n\nBatteries are covered for 800 charge cycles or three years, whichever comes first. "
               "Motors are covered for two years.")
pdf.output(os.path.join(out, "warranty.pdf"))

# DOCX: title, headings, paragraphs, a list, a table, core properties.
import docx
d = docx.Document()
d.core_properties.author = "People Team"
d.core_properties.title = "Onboarding Guide"
d.add_heading("Onboarding Guide", level=0)
d.add_paragraph("Welcome to Lumen. Your first week is spent in the workshop with a mentor.")
d.add_heading("Tools", level=1)
d.add_paragraph("Every mechanic receives a torque wrench and a chain checker on day one.")
d.add_paragraph("Sign the tool register.", style="List Bullet")
d.add_paragraph("Label your drawer.", style="List Bullet")
d.add_heading("Schedule", level=1)
t = d.add_table(rows=3, cols=2)
for i, (a, b) in enumerate([("Day", "Activity"), ("Monday", "Safety training"), ("Tuesday", "Wheel truing")]):
    t.cell(i, 0).text = a
    t.cell(i, 1).text = b
d.save(os.path.join(out, "onboarding.docx"))
print("wrote", sorted(os.listdir(out)))
