#!/usr/bin/env python3
"""Draws a Grafana dashboard's panels from scraped /metrics samples, as one HTML page of SVG.

Grafana cannot be installed here, so docs/images/grafana-dashboard.png is this rendering of
docs/grafana/vigil-dashboard.json (scripts/docs-pictures makes the samples), labelled as such.
It evaluates the PromQL the dashboard uses and nothing more: a selector with label matchers,
rate()/increase() over a window (from the first and last sample in the window, without
Prometheus's extrapolation to the window's edges), sum by (...), histogram_quantile() (linear
within the bucket, as Prometheus does), time() - x. Anything else raises, so the picture never
shows a panel this did not compute.

usage: render_dashboard.py DASHBOARD.json METRICS_DIR OUT.html
"""
import html, json, math, os, re, sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def load(folder):
    """[(t, {(name, frozenset(labels)): value})] in time order."""
    scrapes = []
    for f in sorted(os.listdir(folder)):
        t, series = None, {}
        for line in open(os.path.join(folder, f)):
            line = line.strip()
            if line.startswith('# scraped_at '):
                t = float(line.split()[2])
            if not line or line.startswith('#'):
                continue
            m = SAMPLE.match(line)
            if m:
                series[(m.group(1), frozenset(LABEL.findall(m.group(3) or '')))] = float(m.group(4))
        if t is not None and series:
            scrapes.append((t, series))
    return scrapes


class Expr:
    """A tiny PromQL parser for the forms above; eval(i) gives {labels: value} at scrape i."""

    def __init__(self, text, scrapes):
        self.s, self.i, self.scrapes = text, 0, scrapes
        self.root = self.parse()
        self.skip()
        if self.i != len(self.s):
            raise ValueError('cannot read %r at %r' % (text, self.s[self.i:]))

    def skip(self):
        while self.i < len(self.s) and self.s[self.i] == ' ':
            self.i += 1

    def word(self):
        self.skip()
        m = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*|[0-9.]+').match(self.s, self.i)
        if not m:
            raise ValueError('expected a name in %r at %d' % (self.s, self.i))
        self.i = m.end()
        return m.group(0)

    def expect(self, c):
        self.skip()
        if not self.s.startswith(c, self.i):
            raise ValueError('expected %r in %r at %d' % (c, self.s, self.i))
        self.i += len(c)

    def peek(self, c):
        self.skip()
        return self.s.startswith(c, self.i)

    def parse(self):
        left = self.term()
        if self.peek('-'):
            self.expect('-')
            right = self.term()
            return ('sub', left, right)
        return left

    def term(self):
        w = self.word()
        if w == 'sum':
            by = []
            if not self.peek('('):
                self.expect('by')
                self.expect('(')
                while not self.peek(')'):
                    by.append(self.word())
                    if self.peek(','):
                        self.expect(',')
                self.expect(')')
            self.expect('(')
            inner = self.parse()
            self.expect(')')
            return ('sum', tuple(by), inner)
        if w in ('rate', 'increase'):
            self.expect('(')
            sel = self.selector(self.word())
            self.expect('[')
            n = self.word()
            unit = self.word() if not n[-1].isalpha() else ''
            window = float(re.match(r'[0-9.]+', n).group(0)) * {'s': 1, 'm': 60, 'h': 3600}[(n + unit)[-1]]
            self.expect(']')
            self.expect(')')
            return (w, sel, window)
        if w == 'histogram_quantile':
            self.expect('(')
            q = float(self.word())
            self.expect(',')
            inner = self.parse()
            self.expect(')')
            return ('quantile', q, inner)
        if w == 'time':
            self.expect('(')
            self.expect(')')
            return ('time',)
        return ('select', self.selector(w))

    def selector(self, name):
        matchers = []
        if self.peek('{'):
            self.expect('{')
            while not self.peek('}'):
                k = self.word()
                self.expect('="')
                j = self.s.index('"', self.i)
                matchers.append((k, self.s[self.i:j]))
                self.i = j + 1
                if self.peek(','):
                    self.expect(',')
            self.expect('}')
        return (name, tuple(matchers))

    def select(self, sel, i):
        name, matchers = sel
        return {labels: v for (n, labels), v in self.scrapes[i][1].items()
                if n == name and all((k, val) in labels for k, val in matchers)}

    def eval(self, i, node=None):
        node = node or self.root
        kind = node[0]
        if kind == 'select':
            return self.select(node[1], i)
        if kind == 'time':
            return {frozenset(): self.scrapes[i][0]}
        if kind == 'sub':
            left, right = self.eval(i, node[1]), self.eval(i, node[2])
            if list(left) == [frozenset()]:   # a scalar (time()) minus a vector: one result per series
                return {k: left[frozenset()] - v for k, v in right.items()}
            r = list(right.values())
            return {k: v - r[0] for k, v in left.items()} if len(r) == 1 else {k: v - right[k] for k, v in left.items() if k in right}
        if kind in ('rate', 'increase'):
            t1 = self.scrapes[i][0]
            first = next(j for j in range(i + 1) if self.scrapes[j][0] >= t1 - node[2])
            out = {}
            for k, v in self.select(node[1], i).items():
                # Each series from its own first sample in the window (a series appears when first counted).
                for j in range(first, i):
                    a = self.select(node[1], j).get(k)
                    if a is not None:
                        d = v - a if v >= a else v   # a counter reset starts again from 0
                        out[k] = d / (t1 - self.scrapes[j][0]) if kind == 'rate' else d
                        break
            return out
        if kind == 'sum':
            out = {}
            for k, v in self.eval(i, node[2]).items():
                key = frozenset((n, val) for n, val in k if n in node[1])
                out[key] = out.get(key, 0) + v
            return out
        if kind == 'quantile':
            groups = {}
            for k, v in self.eval(i, node[2]).items():
                le = dict(k)['le']
                rest = frozenset((n, val) for n, val in k if n != 'le')
                groups.setdefault(rest, []).append((math.inf if le == '+Inf' else float(le), v))
            out = {}
            for k, buckets in groups.items():
                buckets.sort()
                total = buckets[-1][1]
                if total <= 0:
                    continue
                rank, prev_le, prev_c = node[1] * total, 0.0, 0.0
                for le, c in buckets:
                    if c >= rank:
                        out[k] = prev_le if le == math.inf else prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-12)
                        break
                    prev_le, prev_c = le, c
            return out
        raise ValueError(kind)


def legend(fmt, labels):
    d = dict(labels)
    return re.sub(r'\{\{\s*(\w+)\s*\}\}', lambda m: d.get(m.group(1), ''), fmt).strip() or '{}'


def human(v, unit):
    if unit == 'bytes':
        for u in ['B', 'KiB', 'MiB', 'GiB']:
            if abs(v) < 1024 or u == 'GiB':
                return ('%.0f %s' if u == 'B' else '%.1f %s') % (v, u)
            v /= 1024
    if unit == 's':
        if v == 0:
            return '0 s'
        return '%.3g ms' % (v * 1000) if abs(v) < 1 else '%.3g s' % v
    if abs(v) >= 1000:
        return '%.3gk' % (v / 1000)
    return '%.3g' % v


COLOURS = ['#73bf69', '#f2cc0c', '#8ab8ff', '#ff780a', '#f2495c', '#5794f2', '#b877d9', '#fade2a']


def timeseries(panel, scrapes, x0, x1, width, height):
    unit = panel['fieldConfig']['defaults'].get('unit', 'none')
    bars = panel['fieldConfig']['defaults'].get('custom', {}).get('drawStyle') == 'bars'
    lines = []
    for t in panel['targets']:
        e = Expr(t['expr'], scrapes)
        per = {}
        for i in range(len(scrapes)):
            for k, v in e.eval(i).items():
                per.setdefault(k, []).append((scrapes[i][0], v))
        for k in sorted(per, key=lambda k: sorted(k)):
            lines.append((legend(t.get('legendFormat', ''), k), per[k]))
    top = max([v for _, pts in lines for _, v in pts] + [0])
    top = top * 1.15 if top > 0 else 1
    pl, pr, pt, pb = 64, 10, 8, 22
    w, h = width - pl - pr, height - pt - pb
    X = lambda t: pl + (t - x0) / max(x1 - x0, 1e-9) * w
    Y = lambda v: pt + h - v / top * h
    s = ['<svg width="%d" height="%d">' % (width, height)]
    for f in (0, 0.5, 1):
        y = Y(top / 1.15 * f)
        s.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#2c3235"/>' % (pl, pl + w, y, y))
        s.append('<text x="%d" y="%.1f" text-anchor="end" fill="#8e8e8e" font-size="11">%s</text>' % (pl - 6, y + 4, html.escape(human(top / 1.15 * f, unit))))
    for k in range(5):
        t = x0 + (x1 - x0) * k / 4
        s.append('<text x="%.1f" y="%d" text-anchor="%s" fill="#8e8e8e" font-size="11">+%ds</text>'
                 % (X(t), height - 5, 'end' if k == 4 else 'middle', round(t - x0)))
    for n, (name, pts) in enumerate(lines):
        c = COLOURS[n % len(COLOURS)]
        if bars:
            bw = max(2.0, w / max(len(scrapes), 1) / max(len(lines), 1) * 0.8)
            for t, v in pts:
                if v > 0:
                    s.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' % (X(t) + n * bw - bw, Y(v), bw, Y(0) - Y(v), c))
        else:
            s.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>' % (c, ' '.join('%.1f,%.1f' % (X(t), Y(v)) for t, v in pts)))
    s.append('</svg>')
    legend_html = ''.join('<span><i style="background:%s"></i>%s</span>' % (COLOURS[n % len(COLOURS)], html.escape(name)) for n, (name, _) in enumerate(lines))
    if not lines:
        legend_html = '<span class="nodata">No data (the series is absent from /metrics in this run)</span>'
    return ''.join(s) + '<div class="legend">' + legend_html + '</div>'


def stat(panel, scrapes):
    unit = panel['fieldConfig']['defaults'].get('unit', 'none')
    e = Expr(panel['targets'][0]['expr'], scrapes)
    vals = e.eval(len(scrapes) - 1)
    if not vals:
        return '<div class="stat nodata">No data</div>'
    if panel.get('options', {}).get('textMode') == 'value_and_name':
        # One box per series, named by the legend, as Grafana's stat panel shows them.
        fmt = panel['targets'][0].get('legendFormat', '')
        return '<div class="stats">' + ''.join(stat_box(panel, v, unit, legend(fmt, k)) for k, v in sorted(vals.items(), key=lambda kv: sorted(kv[0]))) + '</div>'
    return stat_box(panel, sum(vals.values()), unit)


def stat_box(panel, v, unit, name=None):
    text = human(v, unit)
    for m in panel['fieldConfig']['defaults'].get('mappings', []):
        if m.get('type') == 'value' and str(int(v)) in m['options'] and v == int(v):
            text = m['options'][str(int(v))]['text']
    steps = panel['fieldConfig']['defaults'].get('thresholds', {}).get('steps', [])
    colour = 'blue'
    for st in steps:
        if st['value'] is None or v >= st['value']:
            colour = st['color']
    css = {'green': '#37872d', 'red': '#c4162a', 'orange': '#fa6400', 'blue': '#1f60c4'}.get(colour, colour)
    if name is not None:
        return '<div class="stat small" style="background:%s"><span>%s</span>%s</div>' % (css, html.escape(name), html.escape(text))
    return '<div class="stat" style="background:%s">%s</div>' % (css, html.escape(text))


def main():
    dashboard, folder, out = sys.argv[1:4]
    d = json.load(open(dashboard))
    scrapes = load(folder)
    if len(scrapes) < 3:
        sys.exit('need at least 3 scrapes in %s' % folder)
    x0, x1 = scrapes[0][0], scrapes[-1][0]
    col, row = 1180 / 24, 30
    body = []
    for p in d['panels']:
        g = p['gridPos']
        left, top, width, height = g['x'] * col + 10, g['y'] * row + 70, g['w'] * col - 8, g['h'] * row - 8
        inner = stat(p, scrapes) if p['type'] == 'stat' else timeseries(p, scrapes, x0, x1, int(width - 16), int(height - 62))
        body.append('<div class="panel" style="left:%dpx;top:%dpx;width:%dpx;height:%dpx"><div class="title">%s</div>%s</div>'
                    % (left, top, width, height, html.escape(p['title']), inner))
    bottom = max(p['gridPos']['y'] + p['gridPos']['h'] for p in d['panels']) * row + 80
    page = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#111217;color:#ccccdc;font:13px system-ui,sans-serif;height:%dpx;position:relative}
.head{position:absolute;left:10px;top:10px;right:10px} .head b{font-size:17px;color:#fff} .head span{color:#8e8e8e}
.panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;box-sizing:border-box;padding:6px 8px;overflow:hidden}
.title{font-weight:600;color:#fff;margin-bottom:4px}
.stat{font-size:26px;font-weight:600;color:#fff;text-align:center;border-radius:2px;padding:8px 0}
.legend span{margin-right:12px;white-space:nowrap;font-size:11px} .legend i{display:inline-block;width:12px;height:3px;margin:0 4px 3px 0}
.stats{display:flex;gap:6px;flex-wrap:wrap} .stat.small{flex:1;font-size:18px;padding:4px 6px} .stat.small span{display:block;font-size:11px;font-weight:400}
.nodata{color:#8e8e8e;font-size:12px;background:none}
</style></head><body><div class="head"><b>%s</b><br><span>A rendering, not a Grafana screenshot: the panels of docs/grafana/vigil-dashboard.json
evaluated by scripts/render_dashboard.py over %d /metrics scrapes (every 2 s, %d s) of a scripts/docs-pictures run of vigild.</span></div>
%s</body></html>""" % (bottom, html.escape(d['title']), len(scrapes), round(x1 - x0), '\n'.join(body))
    open(out, 'w').write(page)


if __name__ == '__main__':
    main()
