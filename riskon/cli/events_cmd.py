"""``riskon events CONFIG``: the event study, printed as tables and written as ``reports/<name>/events.html``.

The numbers come from ``riskon.analysis.episodes``; this module prints them as rich tables and has
``riskon.pages.events_page`` write the offline HTML page.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

import riskon.config as config_mod
from riskon.analysis.episodes import EventStudy, event_study, settings_from, shown_episodes
from riskon.cli.console import console, styled
from riskon.pages import html
from riskon.pages.events_page import ci_text, day_text, episode_count_text, headline, pct_text, write_events_page


# -------------------------------------------------------------------------------------------- terminal
def summary_table(study: EventStudy) -> Table:
    """Per coin and horizon: episodes against every signal day and all days, with the bootstrap intervals."""
    c = f"{study.settings.confidence:.0%}"
    t = Table(title=f"forward returns after the first signal of each episode vs all days ({c} intervals)")
    for col, just in (("asset", "left"), ("days", "right"), ("n ep", "right"), ("mean", "right"),
                      ("median", "right"), (f"{c} CI", "right"), ("up", "right"), ("n sig", "right"),
                      ("every signal", "right"), ("n days", "right"), ("all days", "right"), (f"{c} CI ", "right"),
                      ("excess", "right"), (f"{c} CI  ", "right")):  # fmt: skip
        t.add_column(col, justify=just)
    for r in study.summary.itertuples():
        t.add_row(
            r.asset, str(r.horizon), str(r.episodes), pct_text(r.mean), pct_text(r.median),
            ci_text(r.ci_low, r.ci_high),
            pct_text(r.hit_rate, False), str(r.signals), pct_text(r.signals_mean), str(r.days), pct_text(r.all_mean),
            ci_text(r.all_ci_low, r.all_ci_high), pct_text(r.excess), ci_text(r.excess_ci_low, r.excess_ci_high),
        )  # fmt: skip
    return t


def episodes_table(study: EventStudy) -> Table:
    """The index's record-close episodes (within the coins' data) and their first signal."""
    t = Table(title=f"{study.index_symbol} record-close episodes (a record after >= {study.settings.drought} "
                    "sessions without one)")  # fmt: skip
    for col in ("#", "start", "close", "prior record", "set on", "drought", "records", "high", "signal", "signals"):
        t.add_column(col, justify="left" if col in ("start", "set on", "signal") else "right")
    for e in shown_episodes(study).itertuples():
        t.add_row(
            str(e.episode), day_text(e.start), f"{e.close:,.2f}", f"{e.prior_record:,.2f}", day_text(e.prior_session),
            str(e.drought), str(e.records), f"{e.high:,.2f}", day_text(e.signal), str(e.signals),
        )  # fmt: skip
    return t


def asset_table(study: EventStudy, asset: str) -> Table:
    """One coin's forward return after each episode's first signal, per horizon (- = past the data or no price)."""
    t = Table(title=f"{asset} after each episode's first signal")
    t.add_column("#", justify="right")
    t.add_column("signal")
    t.add_column("reference close", justify="left")
    for h in study.settings.horizons:
        t.add_column(f"{h} d", justify="right")
    table = study.episode_returns(asset)
    refs = study.returns[(study.returns["asset"] == asset) & study.returns["first"]].drop_duplicates("episode")
    refs = refs.set_index("episode")
    for ep in table.index:
        e = study.episodes[study.episodes["episode"] == ep].iloc[0]
        ref = refs.loc[ep]
        where = f"{day_text(ref.ref_time)} {ref.ref_close:,.6g}" if pd.notna(ref.ref_time) else f"{ref.coins:.0f} coins"
        t.add_row(
            str(ep), day_text(e.signal), where,
            *(pct_text(table.at[ep, h]) for h in study.settings.horizons),
        )  # fmt: skip
    return t


# -------------------------------------------------------------------------------------------- charts
def events_cmd(
    config: Path = typer.Argument(..., help="A run config (TOML), e.g. runs/seed.toml."),
    drought: int = typer.Option(None, help="Sessions without a record close before one starts an episode (60)."),
    assets: list[str] = typer.Option(None, "--assets", help="More coins to study (repeat or comma-separate)."),
    bootstrap: int = typer.Option(None, help="Bootstrap draws per interval (2000)."),
    seed: int = typer.Option(None, help="Seed of the bootstraps (0)."),
    out: Path = typer.Option(None, help="HTML file (default reports/<name>/events.html)."),
) -> None:
    """Event study: the index's record-close episodes, the entry rule's signals, forward returns vs all days."""
    cfg = config_mod.load(config)
    extra = [a.strip() for item in (assets or []) for a in item.split(",") if a.strip()]
    settings = settings_from(cfg, drought=drought, assets=extra or None, bootstrap=bootstrap, seed=seed)
    out_c, err_c = console(), console(stderr=True)
    t0 = time.perf_counter()
    study = event_study(cfg, settings, announce=lambda m: err_c.print(m, highlight=False))
    elapsed = time.perf_counter() - t0
    out_c.print(
        styled(
            (cfg.name, "bold"),
            f": {episode_count_text(study)}; {len(study.signals)} signals, coins {', '.join(study.assets)} "
            f"({elapsed:.2f} s)",
        ),
        highlight=False,
    )
    out_c.print(episodes_table(study))
    for asset in study.assets:
        out_c.print(asset_table(study, asset))
    out_c.print(summary_table(study))
    focus = 90 if 90 in settings.horizons else settings.horizons[0]
    for line in headline(study, focus):
        out_c.print(line, highlight=False, markup=False)
    out_c.print(f"how: {study.how}", highlight=False, markup=False)
    for note in study.notes:
        out_c.print(f"note: {note}", highlight=False, markup=False)
    path = out or html.reports_dir() / cfg.name / "events.html"
    write_events_page(study, path, cfg.description)
    out_c.print(f"   events: {path}", highlight=False, markup=False)
