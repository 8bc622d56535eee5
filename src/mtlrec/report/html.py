"""The report as one self-contained HTML page: inline CSS, figures as ``data:`` URIs, no
scripts and nothing fetched from the network."""

from __future__ import annotations

import base64

import jinja2

from mtlrec.report.document import Cell, Document, Plot, format_cell, is_numeric

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{ doc.title }}</title>
<style>
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1200px; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; }
h2 { font-size: 1.35rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem;
     margin-top: 2.5rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
header dl { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem;
            color: #57606a; margin: .5rem 0 1rem; }
header dt { font-weight: 600; }
header dd { margin: 0; word-break: break-all; }
nav ol { columns: 3; margin: .5rem 0; }
nav a, a { color: #0969da; text-decoration: none; }
.table-wrap { overflow-x: auto; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: .88rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; vertical-align: top; }
th, td { overflow-wrap: anywhere; }
th { background: #f6f8fa; text-align: left; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.notes { color: #57606a; font-size: .85rem; margin: .2rem 0 0; padding-left: 1.1rem; }
p.note { color: #57606a; }
p.missing { color: #9a6700; background: #fff8c5; padding: .4rem .7rem; border-radius: 4px; }
figure.plot { margin: 1rem 0 1.8rem; }
figure.plot img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
details { margin: .4rem 0; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .82rem; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: .05rem 1rem;
        font-size: .88rem; margin: .3rem 0 1rem; }
dl.kv dt { color: #57606a; }
dl.kv dd { margin: 0; font-variant-numeric: tabular-nums; }
.kv-title { font-weight: 600; margin: .8rem 0 0; }
</style>
</head>
<body>
<header>
<h1>{{ doc.title }}</h1>
<dl>{% for key, value in doc.header %}<dt>{{ key }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>
<nav><ol>{% for s in doc.sections %}<li><a href="#{{ s.key }}">{{ s.title }}</a></li>{% endfor %}
</ol></nav>
</header>
<main>
{% for s in doc.sections %}
<section id="{{ s.key }}">
<h2>{{ loop.index }}. {{ s.title }}</h2>
{% if not s.blocks %}<p class="missing">{{ s.title }}: {{ s.missing }}.</p>{% endif %}
{% for b in s.blocks %}
{% if b.kind == "heading" %}<h3>{{ b.text }}</h3>
{% elif b.kind == "note" %}<p class="note">{{ b.text }}</p>
{% elif b.kind == "table" %}<div class="table-wrap"><table>
<caption>{{ b.title }}</caption>
<thead><tr>{% for c in b.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in b.rows %}<tr>{% for c in row %}<td{% if numeric(c) %} class="num"{% endif %}>
{{- cell(c) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% if b.notes %}<ul class="notes">{% for n in b.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
</div>
{% elif b.kind == "keyvalues" %}<p class="kv-title">{{ b.title }}</p>
<dl class="kv">{% for k, v in b.items %}<dt>{{ k }}</dt><dd>{{ cell(v) }}</dd>{% endfor %}</dl>
{% elif b.kind == "details" %}<details><summary>{{ b.summary }}</summary>
<pre><code>{{ b.text }}</code></pre></details>
{% elif b.kind == "plot" %}<figure class="plot" data-plot="{{ b.key }}">
<figcaption>{{ b.title }}</figcaption>
<img src="{{ data_uri(b) }}" alt="{{ b.alt }}">
</figure>
{% endif %}
{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
"""


def data_uri(plot: Plot) -> str:
    """``data:image/png;base64,...`` of a plot."""
    return "data:image/png;base64," + base64.b64encode(plot.png).decode("ascii")


def _cell(value: Cell) -> str:
    return format_cell(value)


def render_html(document: Document) -> str:
    """The page's text (autoescaped: run names or notes cannot inject markup)."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(TEMPLATE)
    return template.render(doc=document, cell=_cell, numeric=is_numeric, data_uri=data_uri)
