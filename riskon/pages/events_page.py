"""The event-study page: forward returns per horizon against all days, the episodes on the index chart, and
every episode's returns per coin, as one offline HTML page (escaped strings, inline PNG charts).

Takes an ``EventStudy`` computed by ``riskon.analysis.episodes``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from riskon.analysis.episodes import BASKET, MIN_EPISODES, EventStudy, shown_episodes
from riskon.pages import html


def pct_text(value: float, signed: bool = True) -> str:
    """A return as a signed percentage with one decimal (or a whole percentage unsigned); "-" when undefined."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    return f"{value:+.1%}" if signed else f"{value:.0%}"


def ci_text(lo: float, hi: float) -> str:
    """A confidence interval of returns as ``[lo, hi]`` in whole signed percents."""
    return "-" if math.isnan(lo) or math.isnan(hi) else f"[{lo:+.0%}, {hi:+.0%}]"


def day_text(ts: object) -> str:
    """A timestamp as ``YYYY-MM-DD`` ("-" when missing)."""
    return "-" if pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d")


def episode_count_text(study: EventStudy) -> str:
    """The episode count in words: all episodes, those overlapping the coins' data, and which of those lack a signal.

    ``23 ^RUT episodes since 1987-09-10; 7 overlap the coins' data, 6 with a first signal; #17 from
    2013-01-02 has no signal (it began before the coins' data)``: the words and the numbers of the
    episode table agree, and the episode without a first-signal return is named with the reason.
    """
    n = f"{len(study.episodes)} {study.index_symbol} episodes since {day_text(study.sessions.index[0])}"
    shown = shown_episodes(study)
    if not len(study.episodes) or not study.prices:
        return n
    first = min(p.index[0] for p in study.prices.values()).tz_convert("UTC").tz_localize(None).normalize()
    lacking = []
    for e in shown[shown["signal"].isna()].itertuples():
        name = f"#{e.episode} from {day_text(e.start)}"
        if pd.Timestamp(e.start) >= first:
            lacking.append(f"{name} has no signal")
        elif e.signals:
            lacking.append(f"{name} has no first signal (it began before the coins' data; its {e.signals} "
                           "signal(s) count in 'every signal')")  # fmt: skip
        else:
            lacking.append(f"{name} has no signal (it began before the coins' data)")
    with_signal = len(shown) - len(lacking)
    text = f"{n}; {len(shown)} overlap the coins' data, {with_signal} with a first signal"
    return "; ".join([text, *lacking])


def returns_chart(study: EventStudy):
    """Per coin: mean forward return per horizon (episodes, every signal, all days) with intervals, episode dots."""
    # matplotlib loads only when a chart is drawn
    from matplotlib.ticker import PercentFormatter

    assets = study.assets
    cols = min(3, len(assets))
    rows = -(-len(assets) // cols)
    fig = html.new_figure(max(5.2 * cols, 8.0), 3.8 * rows)
    s = study.summary
    width = 0.27
    for k, asset in enumerate(assets):
        ax = fig.add_subplot(rows, cols, k + 1)
        part = s[s["asset"] == asset].reset_index(drop=True)
        x = np.arange(len(part))
        for off, (col, lo, hi, label, color) in zip(
            (-width, 0.0, width),
            (("mean", "ci_low", "ci_high", "episodes (first signal)", "#1f4e79"),
             ("signals_mean", "signals_ci_low", "signals_ci_high", "every signal day", "#7aa6d6"),
             ("all_mean", "all_ci_low", "all_ci_high", "all days", "#b0b0b0")),
            strict=True,
        ):  # fmt: skip
            mid = part[col].to_numpy(dtype="float64")
            err = np.vstack([mid - part[lo].to_numpy(dtype="float64"), part[hi].to_numpy(dtype="float64") - mid])
            err = np.where(np.isfinite(err), np.maximum(err, 0.0), 0.0)
            ax.bar(x + off, np.nan_to_num(mid), width, color=color, label=label, yerr=err, capsize=3,
                   error_kw={"elinewidth": 0.9, "ecolor": "#333"})  # fmt: skip
        eps = study.episode_returns(asset)
        for i, h in enumerate(part["horizon"]):
            vals = eps[h].dropna().to_numpy() if h in eps else np.zeros(0)
            ax.scatter(np.full(len(vals), i - width), vals, s=12, color="#d9822b", zorder=3,
                       label="one episode" if i == 0 else None)  # fmt: skip
        ax.axhline(0, color="#444", lw=0.7)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.margins(y=0.08)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xticks(x, [f"{h} d" for h in part["horizon"]])
        ax.set_title(asset, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("mean forward return (symmetric log scale beyond ±100 %)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.2 / (3.8 * rows)))  # room for the title
    return fig


def timeline_chart(study: EventStudy):
    """The index (log) with its record line, episode starts and signal days; the first coin below it."""
    # matplotlib loads only when a chart is drawn
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = html.new_figure(12, 6.5)
    top = fig.add_subplot(2, 1, 1)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    first = min(p.index[0] for p in study.prices.values()).tz_convert("UTC").tz_localize(None)
    start = first - pd.Timedelta(days=365)
    sess = study.sessions[study.sessions.index >= start]
    top.plot(sess.index, sess["idx_close"], color="#333", lw=0.9, label=f"{study.index_symbol} close")
    top.plot(sess.index, sess["idx_ath"], color="#2a7", lw=0.8, ls="--", label="record close so far")
    top.set_yscale("log")
    top.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    top.yaxis.set_minor_formatter(NullFormatter())
    labels = []
    for e in shown_episodes(study).itertuples():
        if e.start < start:
            continue
        top.axvline(e.start, color="#c33", lw=0.8, alpha=0.7)
        labels.append(top.text(e.start, LABEL_TOP, f"#{e.episode} {e.drought}s", transform=top.get_xaxis_transform(),
                               va="top", ha="left", fontsize=8, color="#c33"))  # fmt: skip
    sig = study.signals[study.signals["signal"] >= start]
    y = study.sessions["idx_close"].reindex(sig["signal"]).to_numpy()
    top.scatter(sig["signal"], y, marker="^", s=14, color="#1f4e79", zorder=3, label="signal")
    lo, hi = top.get_ylim()  # the curves and markers keep the lower DATA_SHARE of the height; labels go above
    top.set_ylim(lo, math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) / DATA_SHARE))
    top.legend(fontsize=7, loc="lower right")
    top.set_title("episodes (red: start, with drought in sessions) and signals", fontsize=10)
    lead = study.assets[0]
    price = study.prices[lead]
    when = price.index.tz_convert("UTC").tz_localize(None)
    bottom.plot(when, price.to_numpy(), color="#d9822b", lw=0.9, label=f"{lead} close")
    bottom.set_yscale("log")
    refs = study.returns[(study.returns["asset"] == lead) & study.returns["first"]].drop_duplicates("episode")
    for r in refs.itertuples():
        t0 = pd.Timestamp(r.ref_time).tz_convert("UTC").tz_localize(None)
        bottom.axvspan(t0, t0 + pd.Timedelta(days=90), color="#1f4e79", alpha=0.12)
        bottom.scatter([t0], [r.ref_close], marker="^", s=20, color="#1f4e79", zorder=3)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:.3g}"))
    bottom.set_title(f"{lead}: reference close after each episode's first signal, next 90 days shaded", fontsize=10)
    bottom.legend(fontsize=7, loc="upper left")
    bottom.set_xlim(start, max(sess.index[-1], when[-1]))
    fig.subplots_adjust(left=0.07, right=0.98, top=0.95, bottom=0.05, hspace=0.3)  # tight_layout: 1.5 s here
    _stagger(fig, labels)
    return fig


#: The share of the index panel's height (log scale) that the curves use; the band above holds the labels.
DATA_SHARE = 0.76
#: Where the first row of episode labels hangs (axes fraction) and how far each further row is below it.
LABEL_TOP, LABEL_ROW = 0.985, 0.075


def _stagger(fig, labels: list) -> None:
    """Put each episode label in the first row of the label band where it touches no label before it."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    rows: list[float] = []  # the right edge of the last label in each row, in pixels
    for text in labels:
        box = text.get_window_extent(renderer)
        row = next((k for k, right in enumerate(rows) if box.x0 > right + 3), len(rows))
        if row == len(rows):
            rows.append(0.0)
        rows[row] = box.x1
        text.set_y(LABEL_TOP - row * LABEL_ROW)


# -------------------------------------------------------------------------------------------- HTML
def summary_frame(study: EventStudy) -> pd.DataFrame:
    """The summary as display strings, one row per coin and horizon (the terminal table's columns)."""
    c = f"{study.settings.confidence:.0%}"
    rows = []
    for r in study.summary.itertuples():
        rows.append(
            {
                "asset": r.asset,
                "days": r.horizon,
                "n episodes": r.episodes,
                "mean": pct_text(r.mean),
                "median": pct_text(r.median),
                f"{c} CI": ci_text(r.ci_low, r.ci_high),
                "up": pct_text(r.hit_rate, False),
                "n signals": r.signals,
                "every signal": pct_text(r.signals_mean),
                f"{c} CI (signals)": ci_text(r.signals_ci_low, r.signals_ci_high),
                "n days": r.days,
                "all days": pct_text(r.all_mean),
                f"{c} CI (all days)": ci_text(r.all_ci_low, r.all_ci_high),
                "excess": pct_text(r.excess),
                f"{c} CI (excess)": ci_text(r.excess_ci_low, r.excess_ci_high),
            }
        )
    return pd.DataFrame(rows)


def headline(study: EventStudy, horizon: int = 90) -> list[str]:
    """One sentence per coin at one horizon: episodes against all days, with the interval of the difference."""
    s = study.summary[study.summary["horizon"] == horizon]
    c = f"{study.settings.confidence:.0%}"
    out = []
    for r in s.itertuples():
        if r.episodes == 0:
            out.append(f"{r.asset}: no episode with a {horizon}-day return in the data.")
            continue
        out.append(
            f"{r.asset}, {horizon} days after an episode's first signal: mean {pct_text(r.mean)}, median "
            f"{pct_text(r.median)}, up in {round(r.hit_rate * r.episodes)} of {r.episodes} episodes; "
            f"all days: mean {pct_text(r.all_mean)}; excess {pct_text(r.excess)} "
            + (
                f"({c} interval {ci_text(r.excess_ci_low, r.excess_ci_high)})."
                if not math.isnan(r.excess_ci_low)
                else f"(no interval with fewer than {MIN_EPISODES} episodes)."
            )
        )
    return sorted(out, key=lambda line: not line.startswith(BASKET))  # the basket answers the altcoin claim


def events_page(study: EventStudy, description: str = "") -> str:
    """The whole event-study page (offline, escaped)."""
    st = study.settings
    esc = html.esc
    c = f"{st.confidence:.0%}"
    settings = (
        f"drought = {st.drought} sessions; horizons = {', '.join(map(str, st.horizons))} days; "
        f"bootstrap = {st.bootstrap} draws, seed {st.seed}, {c} percentile intervals; coins: {', '.join(study.assets)}"
    )
    focus = 90 if 90 in st.horizons else st.horizons[0]
    sections = [
        f'<p class="note">{esc(study.how)}</p>',
        f'<p class="note">{esc(settings)}</p>',
        *(f'<p class="note">note: {esc(n)}</p>' for n in study.notes),
        "<h2>Forward returns: episodes vs all days</h2>",
        "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in headline(study, focus)) + "</ul>",
        html.figure(returns_chart(study), "mean forward return per horizon with bootstrap intervals"),
        "<p>n = sample size per horizon (episodes whose first signal has an h-day return inside the data; every "
        "signal day; every day). 'excess' = episode mean − all-days mean, its interval from the two bootstraps "
        "drawn independently. 'up' = share of positive returns.</p>",
        html.table(summary_frame(study), index=False),
        "<h2>Episodes on the index chart</h2>",
        html.figure(timeline_chart(study), "index episodes and signals, and the first coin after each"),
        f"<h2>{esc(study.index_symbol)} record-close episodes</h2>",
        f"<p>A record close after at least {st.drought} sessions without one starts an episode; 'drought' counts "
        "sessions since the prior record close; 'signal' is the entry rule's first signal in the episode. "
        "All episodes of the index's history are listed; coins have data only for the later ones: "
        f"{esc(episode_count_text(study))}.</p>",
        html.table(
            study.episodes.drop(columns=["start_pos", "end_pos"]).assign(
                **{
                    c: study.episodes[c].map(day_text)
                    for c in ("start", "prior_session", "last_record", "end", "signal")
                }
            ),
            {"close": "{:,.2f}", "prior_record": "{:,.2f}", "high": "{:,.2f}"},
            index=False,
        ),
    ]
    for asset in study.assets:
        table = study.episode_returns(asset)
        table.columns = [f"{h} d" for h in table.columns]
        eps = study.episodes.set_index("episode")
        table.insert(0, "signal", [day_text(eps.at[e, "signal"]) for e in table.index])
        sections += [
            f"<h2>{esc(asset)} after each episode's first signal</h2>",
            html.table(table, {f"{h} d": "{:+.1%}" for h in st.horizons}) if len(table) else "<p>no episode</p>",
        ]
    sections.append("<h2>Every forward return</h2>")
    sections.append(
        "<details><summary>one row per coin, signal and horizon</summary>"
        + html.table(
            study.returns.assign(
                signal=study.returns["signal"].map(day_text),
                ref_time=study.returns["ref_time"].map(day_text),
                end_time=study.returns["end_time"].map(day_text),
            ),
            {"return": "{:+.2%}", "ref_close": "{:,.6g}", "end_close": "{:,.6g}"},
            index=False,
        )
        + "</details>"
    )
    return html.page(f"Event study: {study.name}", sections, description)


def write_events_page(study: EventStudy, path: str | Path, description: str = "") -> Path:
    """Write the page (and refresh ``reports/index.html`` when it lies in the reports folder)."""
    return html.write_page(path, events_page(study, description))


# -------------------------------------------------------------------------------------------- command
