#!/usr/bin/env python3
"""Checks a `calibrate compare --html` report against the --json report of the same run.

    report_html_check.py REPORT.html REPORT.json [--max-bytes-per-tensor N] [--absval 0|1]

well_formed     every element closed in order (HTML void elements excepted), each <svg> parses
                as XML
self_contained  no script, no external reference: no http(s)/protocol-relative URL anywhere,
                no src=, no href= other than "#...", no <link>/<img>/<iframe>/<object>/<embed>,
                no url() or @import in styles
ranking         the table lists the JSON ranking, in order, with its SQNR (%.2f)
sqnr_chart      one series per top-3 candidate, one point per layer with an SQNR; a link to
                each one's worst layer (JSON worst_layer), whose section starts open
histograms      one <details> and one histogram SVG per observed tensor; in each, for every
                method kind (method, percentile, symmetric) the range [lo, hi] of the
                best-ranked candidate of that kind (JSON "min"/"max") drawn as vertical lines
                inside the plot, each tagged and labelled; at most 96 bars
size            bytes per observed tensor (optional bound)
"""
import argparse
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from oracle_util import fail, failures, ok

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children, self.text = [], ""

    def all(self, tag=None, cls=None):
        for c in self.children:
            if (tag is None or c.tag == tag) and (cls is None or cls in
                                                  (c.attrs.get("class") or "").split()):
                yield c
            yield from c.all(tag, cls)

    def alltext(self):
        return self.text + "".join(c.alltext() for c in self.children)


class Tree(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.errors = []

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.cur.tag != tag:
            self.errors.append(f"</{tag}> closes <{self.cur.tag}> (line {self.getpos()[0]})")
            return
        self.cur = self.cur.parent

    def handle_data(self, data):
        self.cur.text += data


def kind_tag(c):
    args = c["calibrate_args"]
    m = c["method"]
    sym = "s" if c["symmetric_activations"] else ""
    if m == "percentile":
        return "p" + args[args.index("--percentile") + 1] + sym
    return {"minmax": "mm", "entropy": "ent"}.get(m, m) + sym


def close(a, b):
    return abs(a - b) <= 1e-5 * max(abs(a), abs(b)) + 1e-30


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("html")
    ap.add_argument("json")
    ap.add_argument("--max-bytes-per-tensor", type=int, default=0)
    ap.add_argument("--absval", type=int, choices=(0, 1))
    a = ap.parse_args()
    raw = open(a.html, encoding="utf-8").read()
    rep = json.load(open(a.json))
    cands = {c["name"]: c for c in rep["candidates"]}
    ranking = rep["ranking"]

    t = Tree()
    t.feed(raw)
    t.close()
    svgs = re.findall(r"<svg\b.*?</svg>", raw, re.S)
    xml_bad = []
    for s in svgs:
        try:
            ET.fromstring(s)
        except ET.ParseError as e:
            xml_bad.append(str(e))
    if t.errors or t.cur is not t.root or xml_bad or not raw.startswith("<!DOCTYPE html>"):
        fail("well_formed", "; ".join(t.errors[:3] + xml_bad[:3]) or f"<{t.cur.tag}> unclosed")
    else:
        ok("well_formed", f"{len(raw)} bytes, {len(svgs)} SVGs parse as XML")

    bad = []
    if re.search(r"(?i)\b(https?|ftp|data|javascript):", raw):
        bad.append("a URL scheme")
    for n in t.root.all():
        if n.tag in ("script", "link", "img", "iframe", "object", "embed", "base"):
            bad.append(f"<{n.tag}>")
        if "src" in n.attrs or "xlink:href" in n.attrs:
            bad.append(f"src on <{n.tag}>")
        if "href" in n.attrs and not (n.attrs["href"] or "").startswith("#"):
            bad.append(f"href {n.attrs['href']}")
        if n.tag == "style" and re.search(r"(?i)url\(|@import", n.text):
            bad.append("url()/@import in <style>")
        if re.search(r"(?i)url\(", n.attrs.get("style") or ""):
            bad.append("url() in a style attribute")
    if bad:
        fail("self_contained", ", ".join(sorted(set(bad))))
    else:
        ok("self_contained", "no script, no external reference")

    table = next(t.root.all("table"), None)
    rows = [[td.alltext().strip() for td in tr.all("td")] for tr in table.all("tr")][1:] \
        if table is not None and table.attrs.get("id") == "ranking" else []
    want = [[str(i + 1), n, "%.2f" % float(cands[n]["sqnr_db"])] for i, n in enumerate(ranking)]
    got = [r[:3] for r in rows]
    if got != want:
        fail("ranking", f"table {got[:3]}..., JSON {want[:3]}...")
    else:
        ok("ranking", f"{len(rows)} candidates in the JSON order, best {ranking[0]!r}")

    chart = [n for n in t.root.all("svg") if n.attrs.get("id") == "sqnr"]
    top = ranking[:3]
    series = {g.attrs["data-cand"]: g for g in chart[0].all("g")} if chart else {}
    msg = []
    for name in top:
        want_pts = sum(1 for v in cands[name]["layers"]["sqnr_db"] if v is not None)
        pts = len(list(series[name].all("circle"))) if name in series else -1
        if pts != want_pts:
            msg.append(f"{name}: {pts} points, {want_pts} layers with an SQNR")
    ids = {n.attrs["id"]: n for n in t.root.all() if n.attrs.get("id")}
    links = {a_.alltext(): a_.attrs["href"] for a_ in t.root.all("a")}
    for h in links.values():
        if h[1:] not in ids:
            msg.append(f"link {h} to nothing")
    for name in top:
        w = cands[name].get("worst_layer")
        if not w:
            continue
        hit = [h for txt, h in links.items() if txt.split(" ", 1)[-1] == w["name"]]
        sec = ids.get(hit[0][1:]) if hit else None
        if sec is None or sec.tag != "details" or "open" not in sec.attrs:
            msg.append(f"{name}: no link to an open section of its worst layer {w['name']}")
    if not chart or sorted(series) != sorted(top) or msg:
        fail("sqnr_chart", "; ".join(msg) or f"series {sorted(series)}, want {sorted(top)}")
    else:
        ok("sqnr_chart", f"{len(top)} series, {want_pts} points each, worst layers linked")

    # method kinds and their best-ranked candidate, as the report draws them
    rep_of = {}
    for name in ranking:
        rep_of.setdefault(kind_tag(cands[name]), name)
    layer_idx = {n: {t: i for i, t in enumerate(c["layers"]["name"])} for n, c in cands.items()}
    details = list(t.root.all("details"))
    hists = list(t.root.all("svg", "hist"))
    problems, n_lines, n_checked = [], 0, 0
    for d in details:
        bold = next(next(d.all("summary")).all("b"), None)
        tname = re.match(r"#\d+ (.*)$", bold.alltext(), re.S) if bold is not None else None
        svg = next(d.all("svg", "hist"), None)
        if not tname or svg is None:
            problems.append(f"section {d.attrs.get('id')} without a name or a histogram")
            continue
        tname = tname.group(1)
        absval = svg.attrs.get("data-absval") == "1"
        if a.absval is not None and absval != bool(a.absval):
            problems.append(f"{tname}: data-absval {absval}, expected {bool(a.absval)}")
        vb = [float(v) for v in svg.attrs["viewbox"].split()]
        lines = list(svg.all("line", "t"))
        labels = ",".join(x.alltext() for x in svg.all("text", "t")).split(",")
        bars = next(svg.all("path", "bar"), None)
        if bars is not None and bars.attrs["d"].count("H") > 96:
            problems.append(f"{tname}: {bars.attrs['d'].count('H')} bars")
        for tag, cname in rep_of.items():
            li = layer_idx[cname].get(tname)
            if li is None:
                continue
            lay = cands[cname]["layers"]
            lo, hi = float(lay["min"][li]), float(lay["max"][li])
            want_v = sorted({abs(lo), abs(hi)} if absval else {lo, hi})
            mine = [ln for ln in lines if ln.attrs.get("data-m") == tag]
            got_v = sorted(float(re.search(r" (?:lo|hi) = (\S+)$", ln.alltext()).group(1))
                           for ln in mine)
            n_checked += 1
            n_lines += len(mine)
            if len(got_v) != len(want_v) or not all(map(close, got_v, want_v)):
                problems.append(f"{tname} {tag}: lines at {got_v}, range {want_v}")
            elif tag not in labels:
                problems.append(f"{tname} {tag}: no label")
            for ln in mine:
                x, y1, y2 = (float(ln.attrs[k]) for k in ("x1", "y1", "y2"))
                if not (0 <= x <= vb[2] and y2 - y1 > 50):
                    problems.append(f"{tname} {tag}: line at x={x} y={y1}..{y2} off the plot")
    n_t = rep["observed_tensors"]
    if len(details) != n_t or len(hists) != n_t or problems or n_checked == 0:
        fail("histograms", f"{len(details)} sections, {len(hists)} histograms, {n_t} tensors; "
             + "; ".join(problems[:4]))
    else:
        ok("histograms", f"{n_t} tensors, {len(rep_of)} method kinds "
           f"({', '.join(rep_of)}): {n_checked} ranges drawn as {n_lines} labelled lines")

    if a.max_bytes_per_tensor:
        per = len(raw.encode()) / max(n_t, 1)
        if per > a.max_bytes_per_tensor:
            fail("size", f"{per:.0f} bytes per tensor > {a.max_bytes_per_tensor}")
        else:
            ok("size", f"{len(raw.encode())} bytes for {n_t} tensors ({per:.0f} per tensor)")
    return 1 if failures() else 0


if __name__ == "__main__":
    sys.exit(main())
