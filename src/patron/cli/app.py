"""Commands of the ``patron`` CLI. Each one parses, calls the Python API, and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from patron.cli.progress import counting_progress, spinner
from patron.errors import InputError

app = typer.Typer(
    name="patron",
    help="Manage customer relationships by what they are worth.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="DuckDB database file [default: patron.duckdb or $PATRON_DB].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of text.")]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str))


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="CSV/TSV/whitespace-separated text, Parquet, or JSON Lines file.")],
    kind: Annotated[str, typer.Option("--kind", help="transactions, customers or contacts.")] = "transactions",
    db: DbOption = None,
    mapping: Annotated[list[str] | None, typer.Option("--map", help="target=source column mapping, e.g. --map occurred_at=date (repeatable).")] = None,
    date_format: Annotated[str | None, typer.Option("--date-format", help="strftime format of text timestamps, e.g. %Y%m%d.")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Comma-separated column names for a file without a header.")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="A character, or tab/comma/semicolon/pipe/whitespace [default: sniffed].")] = None,
    rejects_file: Annotated[Path | None, typer.Option("--rejects-file", help="Where to write rejected rows as CSV.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a file against the data contract and store its good rows; bad rows go to the
    rejects table and a rejects CSV with row, column and reason."""
    from patron.ingest import ingest as run_ingest

    cols = [c.strip() for c in columns.split(",")] if columns else None
    with counting_progress(f"ingesting {path.name}", quiet=as_json) as progress:
        result = run_ingest(
            path, kind=kind, db=db, mapping=mapping, date_format=date_format, columns=cols,
            delimiter=delimiter, rejects_file=rejects_file, progress=progress,
        )
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(
        f"{result.kind}: [bold]{result.accepted:,}[/] accepted, [bold]{result.rejected:,}[/] rejected, "
        f"{result.already_present:,} already present" + (f", {result.updated:,} updated" if result.updated else "")
        + f" (from {result.rows_read:,} rows of {result.source} into {result.db})"
    )
    if result.rejects_file:
        out.print(f"rejected rows and reasons: {result.rejects_file}")


@app.command()
def summary(
    db: DbOption = None,
    period: Annotated[str, typer.Option("--period", help="Unit of recency and T: D, W or M.")] = "W",
    end: Annotated[str | None, typer.Option("--end", help="Last day of the calibration period (inclusive) [default: last transaction].")] = None,
    holdout_end: Annotated[str | None, typer.Option("--holdout-end", help="Last day of a holdout period after --end.")] = None,
    grain: Annotated[str, typer.Option("--grain", help="Orders within one D/W/M period count as one purchase.")] = "D",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the summary to a .csv or .parquet file.")] = None,
    memory_limit: Annotated[str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-customer frequency, recency, T and monetary value (lifetimes definitions), computed in SQL."""
    from patron.insights import overview
    from patron.io import write_table
    from patron.summary import summary as run_summary

    with spinner("summarising customers", quiet=as_json):
        table = run_summary(db, period=period, end=end, holdout_end=holdout_end, grain=grain, output="arrow", memory_limit=memory_limit)
    if out_file is not None:
        write_table(table, out_file)
    figures = overview(table.select(["frequency", "recency", "T", "monetary_value", "n_orders", "total_spend", "first_purchase", "last_purchase"]).to_pandas())
    if as_json:
        _print_json({"customers": table.num_rows, "out": str(out_file) if out_file else None, "overview": figures.to_dict()})
        return
    _print_overview(figures, unit=period.upper())
    if out_file is not None:
        out.print(f"summary of {table.num_rows:,} customers written to {out_file}")


def _print_overview(fig: Any, *, unit: str) -> None:
    from rich.table import Table

    t = Table(title="Customer base", show_header=False, title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("customers", f"{fig.customers:,}")
    t.add_row("repeat buyers", f"{fig.repeat_buyers:,} ({fig.repeat_share:.1%})")
    t.add_row("orders", f"{fig.orders:,}")
    t.add_row("revenue (net of refunds)", f"{fig.revenue:,.2f}")
    t.add_row("revenue per customer", f"{fig.revenue_per_customer:,.2f}")
    t.add_row("repeat purchases per customer (mean)", f"{fig.frequency_mean:.3f}")
    fq = fig.frequency_quantiles
    t.add_row("repeat purchases: median / p95 / max", f"{fq['median']:g} / {fq['p95']:g} / {fq['max']:g}")
    t.add_row(f"recency, mean ({unit})", f"{fig.recency_mean:.2f}")
    t.add_row(f"T, mean ({unit})", f"{fig.T_mean:.2f}")
    mq = fig.monetary_value_quantiles
    t.add_row("repeat order value: median / p95", f"{mq['median']:,.2f} / {mq['p95']:,.2f}")
    t.add_row("purchases from / to", f"{fig.first_purchase[:10]} / {fig.last_purchase[:10]}")
    out.print(t)


@app.command()
def fit(
    model: Annotated[str, typer.Argument(help="bgnbd, pareto, mbgnbd, bgbb, sbg or gammagamma.")],
    summary_file: Annotated[Path | None, typer.Option("--summary", help="CSV/Parquet summary (frequency, recency, T, ...; optional weight column).")] = None,
    db: DbOption = None,
    period: Annotated[str, typer.Option("--period", help="With --db: unit of recency and T (D, W, M).")] = "W",
    end: Annotated[str | None, typer.Option("--end", help="With --db: calibration end [default: last transaction].")] = None,
    penalizer: Annotated[float, typer.Option("--penalizer", help="L2 penalty on log-parameters (as lifetimes).")] = 0.0,
    save: Annotated[Path | None, typer.Option("--save", help="Write the fitted model as JSON.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fit a buy-till-you-die or spend model by maximum likelihood."""
    from patron.summary import summary as run_summary
    from patron.value import fit_model, read_summary

    if (summary_file is None) == (db is None):
        raise InputError("give exactly one of --summary FILE or --db FILE")
    with spinner(f"fitting {model}", quiet=as_json):
        if summary_file is not None:
            data, label = read_summary(summary_file), str(summary_file)
        else:
            data, label = run_summary(db, period=period, end=end), str(db)
        fitted = fit_model(model, data, penalizer=penalizer, label=label)
    if save is not None:
        fitted.save(save)
    result = {
        "model": model,
        "params": fitted.params_,
        "std_errors": fitted.std_errors_,
        "log_likelihood": fitted.log_likelihood_,
        "n_customers": fitted.n_customers_,
        "converged": bool(fitted.converged_),
    }
    if as_json:
        _print_json(result)
        return
    from rich.table import Table

    t = Table(title=f"{model}: log-likelihood {fitted.log_likelihood_:.4f}, {fitted.n_customers_:,} customers, converged={fitted.converged_}", title_justify="left")
    t.add_column("parameter")
    t.add_column("estimate", justify="right")
    t.add_column("std. error", justify="right")
    for k, v in fitted.params_.items():
        t.add_row(k, f"{v:.6g}", f"{fitted.std_errors_[k]:.4g}")
    out.print(t)
    if not fitted.converged_:
        err.print(f"warning: the optimiser did not converge: {fitted.convergence_message_}")


@app.command()
def score(
    out_file: Annotated[Path, typer.Option("--out", help="Per-customer scores (.csv or .parquet).")],
    db: DbOption = None,
    model: Annotated[str, typer.Option("--model", help="Transaction model: bgnbd, pareto or mbgnbd.")] = "bgnbd",
    period: Annotated[str, typer.Option("--period", help="Time unit of the summary and the horizon (D, W, M).")] = "W",
    end: Annotated[str | None, typer.Option("--end", help="Calibration end [default: last transaction].")] = None,
    horizon: Annotated[float, typer.Option("--horizon", help="Horizon of CLV, in --period units.")] = 52.0,
    discount_rate: Annotated[float, typer.Option("--discount-rate", help="Annual discount rate, e.g. 0.1 for 10%.")] = 0.0,
    margin: Annotated[float, typer.Option("--margin", help="Share of spend that is profit (0-1].")] = 1.0,
    n_draws: Annotated[int, typer.Option("--draws", help="Parametric bootstrap draws for the intervals.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """Score every customer: expected purchases, P(alive), expected spend, CLV with interval; and customer equity."""
    from patron.io import write_table
    from patron.summary import summary as run_summary
    from patron.value import score as run_score

    with spinner("scoring customers", quiet=as_json):
        data = run_summary(db, period=period, end=end)
        scores = run_score(data, model=model, period=period, horizon=horizon, discount_rate=discount_rate, margin=margin, n_draws=n_draws)
    import pyarrow as pa

    write_table(pa.Table.from_pandas(scores.customers, preserve_index=False), out_file)
    info = {
        "customers": len(scores.customers), "out": str(out_file), "model": model, "horizon": horizon, "period": period.upper(),
        "customer_equity": scores.equity, "customer_equity_lower": scores.equity_lower, "customer_equity_upper": scores.equity_upper,
        "level": scores.level, "interval_method": scores.method,
    }
    if as_json:
        _print_json(info)
        return
    out.print(
        f"customer equity over {horizon:g} {period.upper()}: [bold]{scores.equity:,.2f}[/] "
        f"({scores.level:.0%} interval {scores.equity_lower:,.2f} to {scores.equity_upper:,.2f}); "
        f"{len(scores.customers):,} customers scored to {out_file}"
    )


@app.command()
def evaluate(
    end: Annotated[str, typer.Option("--end", help="Calibration end (inclusive).")],
    holdout_end: Annotated[str, typer.Option("--holdout-end", help="Holdout end (inclusive).")],
    db: DbOption = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Model(s) to evaluate: bgnbd, pareto, mbgnbd (repeatable) [default: all].")] = None,
    period: Annotated[str, typer.Option("--period", help="Time unit (D, W, M).")] = "W",
    plots: Annotated[Path | None, typer.Option("--plots", help="Folder for PNG plots and evaluation.html.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fit on the calibration period and compare each model's holdout forecast with what customers did."""
    from patron.evaluation import cumulative_tracking, holdout_comparison
    from patron.models import MODELS
    from patron.summary import summary as run_summary
    from patron.value import TRANSACTION_MODELS, fit_model

    names = model or [m for m in TRANSACTION_MODELS if m in MODELS]
    with spinner("evaluating", quiet=as_json):
        data = run_summary(db, period=period, end=end, holdout_end=holdout_end)
        results = {}
        for name in names:
            fitted = fit_model(name, data)
            results[name] = (fitted, holdout_comparison(fitted, data))
    if plots is not None:
        from patron import plots as P

        start = str(data["first_purchase"].min())[:10]
        figures, tables = [], []
        for name, (fitted, comp) in results.items():
            T = float(data["T"].max())
            track = cumulative_tracking(fitted, db or "patron.duckdb", start=start, end=holdout_end, unit=period.upper())
            figures += [
                (f"{name}_holdout", P.holdout_plot(comp)),
                (f"{name}_tracking", P.tracking_plot(track, calibration_end_period=T, unit=period.upper())),
                (f"{name}_frequency_recency", P.frequency_recency_heatmap(fitted, T=T)),
                (f"{name}_probability_alive", P.probability_alive_matrix(fitted, T=T)),
            ]
            tables.append((f"{name}: calibration vs holdout", comp.by_frequency))
        P.write_figures(plots, figures)
        (plots / "evaluation.html").write_text(P.html_page("patron: model evaluation", figures, tables=tables))
    if as_json:
        _print_json({name: {"params": f.params_, "log_likelihood": f.log_likelihood_, **c.to_dict()} for name, (f, c) in results.items()})
        return
    for name, (fitted, comp) in results.items():
        out.print(f"[bold]{name}[/]: log-likelihood {fitted.log_likelihood_:.2f}; holdout purchases actual {comp.actual_total:,.0f}, "
                  f"predicted {comp.predicted_total:,.1f}; per-customer MAE {comp.mae:.4f}, RMSE {comp.rmse:.4f}")
    if plots is not None:
        out.print(f"plots written to {plots}/ (open {plots}/evaluation.html)")


@app.command()
def simulate(
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")],
    out_file: Annotated[Path, typer.Option("--out", help="Output .csv or .parquet file of transactions.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    r: Annotated[float, typer.Option(help="BG/NBD r (purchase-rate shape).")] = 0.2426,
    alpha: Annotated[float, typer.Option(help="BG/NBD alpha (purchase-rate rate, per week).")] = 4.4136,
    a: Annotated[float, typer.Option(help="BG/NBD a (dropout Beta).")] = 0.7929,
    b: Annotated[float, typer.Option(help="BG/NBD b (dropout Beta).")] = 2.4259,
    p: Annotated[float, typer.Option(help="Gamma-Gamma p (spend shape).")] = 6.25,
    q: Annotated[float, typer.Option(help="Gamma-Gamma q.")] = 3.74,
    v: Annotated[float, typer.Option(help="Gamma-Gamma v.")] = 15.44,
    start: Annotated[str, typer.Option(help="First day of the acquisition cohort.")] = "2024-01-01",
    cohort_days: Annotated[int, typer.Option(help="Days over which first purchases are spread.")] = 84,
    observation_days: Annotated[int, typer.Option(help="Days from start to the end of observation.")] = 546,
    truth: Annotated[Path | None, typer.Option("--truth", help="Also write each customer's true parameters here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Draw a customer base from BG/NBD + Gamma-Gamma with known parameters (rates per week)."""
    from patron.simulate import write_simulated

    if out_file.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"--out must end in .csv or .parquet; got {out_file}")
    with spinner(f"simulating {customers:,} customers", quiet=as_json):
        res = write_simulated(
            out_file, customers, seed=seed, truth_path=truth, r=r, alpha=alpha, a=a, b=b, p=p, q=q, v=v,
            start=start, cohort_days=cohort_days, observation_days=observation_days,
        )
    info = {"out": str(res.path), "customers": res.n_customers, "transactions": res.n_transactions, "truth": str(res.truth_path) if res.truth_path else None}
    if as_json:
        _print_json(info)
    else:
        out.print(f"{res.n_transactions:,} transactions of {res.n_customers:,} customers written to {res.path}")


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="Database file for the demo.")] = "demo.duckdb",
) -> None:
    """Ingest the bundled CDNOW sample, summarise it, and report on the customer base."""
    from patron.cli.demo import run_demo

    run_demo(db, out, err)


@app.command()
def version() -> None:
    """Print patron's version."""
    from patron import __version__

    typer.echo(__version__)
