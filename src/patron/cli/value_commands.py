"""Commands about value: ``patron fit``, ``patron score`` and ``patron evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, err, get_settings, out
from patron.cli.choices import Engine, IntervalMethod, Model, Period, TransactionModel, choice
from patron.cli.progress import spinner
from patron.cli.value_options import default_value, period_name, print_value_lines, value_flags
from patron.data.engines import resolve_engine
from patron.errors import InputError

if TYPE_CHECKING:
    from patron.value.settings import ValueSettings

EngineOption = Annotated[Engine | None, typer.Option("--engine", help="duckdb (the --db file) or spark (--transactions Parquet) [default: $PATRON_ENGINE or duckdb].", **choice())]
TransactionsOption = Annotated[str | None, typer.Option("--transactions", help="With --engine spark: Parquet file or folder of transactions.")]


@app.command()
def fit(
    model: Annotated[Model, typer.Argument(help="The model to fit (BG/NBD, Pareto/NBD, MBG/NBD, BG/BB, sBG, Gamma-Gamma).", **choice())],
    summary_file: Annotated[Path | None, typer.Option("--summary", help="CSV/Parquet summary (frequency, recency, T, ...; optional weight column).")] = None,
    db: DbOption = None,
    period: Annotated[Period, typer.Option("--period", help="With --db: unit of recency and T (D, W, M).", **choice())] = "W",
    end: Annotated[str | None, typer.Option("--end", help="With --db: calibration end [default: last purchase].")] = None,
    penalizer: Annotated[float, typer.Option("--penalizer", help="L2 penalty on log-parameters (as lifetimes).")] = 0.0,
    save: Annotated[Path | None, typer.Option("--save", help="Write the fitted model as JSON.")] = None,
    engine: EngineOption = None,
    transactions: TransactionsOption = None,
    covariates: Annotated[str | None, typer.Option("--covariates", help="Comma-separated covariates of both processes (bgnbd, pareto): summary columns, or with --db customer attributes; categorical ones one-hot encoded.")] = None,
    purchase_covariates: Annotated[str | None, typer.Option("--purchase-covariates", help="Covariates of the purchase process only.")] = None,
    dropout_covariates: Annotated[str | None, typer.Option("--dropout-covariates", help="Covariates of the dropout process only.")] = None,
    constrained: Annotated[str | None, typer.Option("--constrained", help="Covariates with one coefficient shared by both processes.")] = None,
    regularization: Annotated[str | None, typer.Option("--regularization", help="L2 weight on the covariate effects: one number, or purchase,dropout (as CLVTools' reg.lambdas).")] = None,
    dynamic_covariates: Annotated[Path | None, typer.Option("--dynamic-covariates", help="With pareto and --db: CSV/Parquet of time-varying covariates (customer_id, period_start, covariates...).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fit a buy-till-you-die or spend model by maximum likelihood.

    With --engine spark the compressed statistics are aggregated by Spark and only the distinct
    rows come to this process, where the model is fitted. With --covariates (or
    --purchase-covariates / --dropout-covariates) BG/NBD and Pareto/NBD are fitted with
    time-invariant covariates; with --dynamic-covariates, the Pareto/NBD with time-varying ones."""
    from patron.value.covariate_data import parse_names
    from patron.value.scoring import fit_model, read_summary
    from patron.value.summary import summary as run_summary

    cov_spec = (parse_names(covariates), parse_names(purchase_covariates), parse_names(dropout_covariates), parse_names(constrained))
    if any(cov_spec) or dynamic_covariates is not None or regularization is not None:
        _fit_with_covariates(model, summary_file, db, period, end, penalizer, save, cov_spec, regularization, dynamic_covariates,
                             engine, as_json)
        return
    engine = resolve_engine(engine)
    if engine is Engine.SPARK:
        if summary_file is not None or db is not None:
            raise InputError("with --engine spark give --transactions PATH (not --summary or --db)")
    elif (summary_file is None) == (db is None):
        raise InputError("give exactly one of --summary FILE or --db FILE")
    with spinner(f"fitting {model} ({engine})", quiet=as_json):
        if engine is Engine.SPARK:
            # without pyspark: MissingExtraError, one line naming the spark extra
            from patron.value.spark_fit import fit_spark

            fitted = fit_spark(model, None, transactions, period=period, end=end, penalizer=penalizer)
        elif summary_file is not None:
            data, label = read_summary(summary_file), str(summary_file)
        else:
            from patron.value.scoring import MODEL_DATA

            columns = MODEL_DATA.get(model)
            data, label = run_summary(db, period=period, end=end, compressed=columns), str(db)
        if engine is not Engine.SPARK:
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
    left_out = _spend_left_out(data) if model == "gammagamma" and engine is not Engine.SPARK else 0
    if left_out:
        result["left_out"] = left_out
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
    if left_out:
        print_value_lines([f"{left_out:,} {'customer' if left_out == 1 else 'customers'} with repeat purchases totalling 0 or less left out of the fit "
                           "(no information on spend; valued at the population mean spend when scored)"])
    if not fitted.converged_:
        err.print(f"warning: the optimiser did not converge: {fitted.convergence_message_}")


def _regularization(text: str | None) -> tuple[float, float]:
    """``--regularization``: one lambda for both processes, or ``purchase,dropout``."""
    if text is None:
        return 0.0, 0.0
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise InputError(f"--regularization must be a number or two numbers purchase,dropout; got {text!r}") from None
    if len(parts) not in (1, 2) or any(not (p >= 0) for p in parts):
        raise InputError(f"--regularization must be one or two numbers >= 0; got {text!r}")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _fit_with_covariates(model: str, summary_file: Path | None, db: str | None, period: str, end: str | None, penalizer: float,
                         save: Path | None, spec: tuple, regularization: str | None, dynamic: Path | None, engine: str | None,
                         as_json: bool) -> None:
    """``patron fit`` with covariates (docs/models.md, "Covariates")."""
    from patron.value.covariate_data import join_covariates
    from patron.value.scoring import COVARIATE_MODELS, fit_covariate_model, read_summary
    from patron.value.summary import summary as run_summary

    both, purchase, dropout, constrained = spec
    lambdas = _regularization(regularization)
    if model not in COVARIATE_MODELS:
        raise InputError(f"covariates need model {' or '.join(COVARIATE_MODELS)}; got {model!r}")
    if resolve_engine(engine) is not Engine.DUCKDB:
        raise InputError("covariates are fitted on the DuckDB engine (--summary or --db)")
    if (summary_file is None) == (db is None):
        raise InputError("give exactly one of --summary FILE or --db FILE")
    purchase, dropout = purchase or both, dropout or both
    notes: list[str]
    with spinner(f"fitting {model} with covariates", quiet=as_json):
        if dynamic is not None:
            fitted, notes, label = _fit_dynamic(model, db, dynamic, period, end, purchase, dropout, constrained, penalizer, lambdas)
        else:
            if summary_file is not None:
                data, label = read_summary(summary_file), str(summary_file)
            else:
                data, label = run_summary(db, period=period, end=end), str(db)
            names = tuple(dict.fromkeys(purchase + dropout + constrained))
            if not names:
                raise InputError("name the covariates: --covariates a,b (or --purchase-covariates / --dropout-covariates)")
            encoded = join_covariates(data, names, db=db, label=label)
            x, tx, T = (data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
            weights = data["weight"].to_numpy(dtype=float) if "weight" in data.columns else None
            fitted = fit_covariate_model(model, x, tx, T, encoded, purchase=purchase, dropout=dropout, constrained=constrained,
                                         penalizer=penalizer, regularization=lambdas, weights=weights, label=label)
            notes = encoded.notes
    if save is not None:
        fitted.save(save)
    result = {
        "model": model, "params": fitted.params_, "std_errors": fitted.std_errors_,
        "covariate_effects": fitted.coefficients_, "covariate_std_errors": fitted.coefficient_std_errors_,
        "time_varying": dynamic is not None, "constrained": list(fitted.design_.constrained),
        "regularization": {"purchase": lambdas[0], "dropout": lambdas[1]},
        "log_likelihood": fitted.log_likelihood_, "n_customers": fitted.n_customers_, "converged": bool(fitted.converged_),
        "notes": notes,
    }
    if as_json:
        _print_json(result)
        return
    from rich.table import Table

    t = Table(title=f"{model} with {'time-varying ' if dynamic is not None else ''}covariates: log-likelihood "
                    f"{fitted.log_likelihood_:.4f}, {fitted.n_customers_:,} customers, converged={fitted.converged_}", title_justify="left")
    for col in ("parameter", "estimate", "std. error"):
        t.add_column(col, justify="left" if col == "parameter" else "right")
    for k, v in fitted.params_.items():
        t.add_row(k, f"{v:.6g}", f"{fitted.std_errors_[k]:.4g}")
    out.print(t)
    effects = fitted.covariate_effects()
    e = Table(title="covariate effects (rate multiplier = exp(effect) per unit; 95% intervals)", title_justify="left")
    for col in ("process", "covariate", "effect", "std. error", "interval", "rate multiplier"):
        e.add_column(col, justify="left" if col in ("process", "covariate") else "right")
    for row in effects.itertuples():
        e.add_row(row.process, row.covariate, f"{row.effect:+.4f}", f"{row.std_error:.4f}", f"{row.lower:+.3f} to {row.upper:+.3f}",
                  f"{row.rate_multiplier:.3f} ({row.rate_multiplier_lower:.3f}-{row.rate_multiplier_upper:.3f})")
    out.print(e)
    print_value_lines(notes)
    if not fitted.converged_:
        err.print(f"warning: the optimiser did not converge: {fitted.convergence_message_}")


def _fit_dynamic(model: str, db: str | None, path: Path, period: str, end: str | None, purchase: tuple, dropout: tuple,
                 constrained: tuple, penalizer: float, lambdas: tuple[float, float]) -> tuple[Any, list[str], str]:
    """The time-varying Pareto/NBD on ``db``'s customers and the covariate file ``path``."""
    from patron.value.dynamic_covariates import dynamic_inputs
    from patron.value.scoring import fit_dynamic_model

    if model != "pareto" or db is None:
        raise InputError("--dynamic-covariates fits the Pareto/NBD on a database: patron fit pareto --db FILE --dynamic-covariates FILE")
    names = tuple(dict.fromkeys(purchase + dropout + constrained)) or None
    data = dynamic_inputs(db, path, period=period, end=end, names=names)
    fitted = fit_dynamic_model(data, purchase=purchase, dropout=dropout, constrained=constrained, penalizer=penalizer,
                               regularization=lambdas, label=str(path))
    return fitted, data.notes, str(path)


def _spend_left_out(data: Any) -> int:
    """Customers (weighted rows of a compressed summary) with repeat purchases whose mean value is
    0 or less: Gamma-Gamma leaves them out (docs/models.md)."""
    import numpy as np

    x, m = data["frequency"].to_numpy(dtype=float), data["monetary_value"].to_numpy(dtype=float)
    weight = data["weight"].to_numpy(dtype=float) if "weight" in data.columns else np.ones(len(data))
    return int(weight[(x > 0) & ~(m > 0)].sum())


@app.command()
@value_flags
def score(
    out_file: Annotated[Path, typer.Option("--out", help="Per-customer scores (.csv or .parquet).")],
    db: DbOption = None,
    end: Annotated[str | None, typer.Option("--end", help="Calibration end [default: last purchase].")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file whose [value] section sets the flags' defaults [default: $PATRON_CONFIG or ./patron.toml].")] = None,
    interval_method: Annotated[IntervalMethod, typer.Option("--interval-method", help="delta (fast) or bootstrap (parametric, --draws draws).", **choice())] = "delta",
    n_draws: Annotated[int, typer.Option("--draws", help="Draws of the parametric bootstrap.")] = 200,
    engine: EngineOption = None,
    transactions: TransactionsOption = None,
    partition_by: Annotated[str | None, typer.Option("--partition-by", help="With --engine spark: a summary column to partition the Parquet output by.")] = None,
    as_json: JsonOption = False,
    value: ValueSettings | None = None,
) -> None:
    """Score every customer: expected purchases, P(alive), expected spend, CLV with interval; and customer equity.

    CLV follows the [value] section of the rules file; the flags override it for this command.
    With --engine spark, customers are scored on the executors and --out is a Parquet folder
    (partitioned by --partition-by); customer equity and its interval are aggregated by Spark."""
    value = value or default_value()
    if resolve_engine(engine) is Engine.SPARK:
        info = _score_on_spark(out_file, transactions, value, end=end, interval_method=interval_method, partition_by=partition_by, quiet=as_json)
    else:
        if partition_by is not None:
            raise InputError("--partition-by applies to --engine spark (Parquet folders)")
        info = _score_on_duckdb(out_file, db, value, end=end, interval_method=interval_method, n_draws=n_draws, quiet=as_json)
    if as_json:
        _print_json(info)
        return
    out.print(
        f"customer equity over {value.horizon:g} {period_name(value.period)}: [bold]{info['customer_equity']:,.2f}[/] "
        f"({info['level']:.0%} interval {info['customer_equity_lower']:,.2f} to {info['customer_equity_upper']:,.2f}); "
        f"{info['customers']:,} customers scored to {out_file}"
    )
    print_value_lines(info["notes"])


def _score_info(out_file: Path, value: ValueSettings, customers: int, equity: tuple[float, float, float], level: float, method: str,
                spend: dict[str, int], notes: list[str], currencies: tuple[str, ...]) -> dict:
    return {
        "customers": customers, "out": str(out_file), "model": value.model, "horizon": value.horizon, "period": value.period,
        "customer_equity": equity[0], "customer_equity_lower": equity[1], "customer_equity_upper": equity[2],
        "level": level, "interval_method": method, "value_settings": value.to_dict(currencies), "spend_basis": spend, "notes": notes,
    }


_SCORED_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value")
"""Summary columns :func:`patron.value.scoring.score` reads without covariates."""


def _score_on_duckdb(out_file: Path, db: str | None, value: ValueSettings, *, end: str | None, interval_method: str, n_draws: int,
                     quiet: bool) -> dict:
    import pyarrow as pa

    from patron.data.io import write_table
    from patron.data.store import release_reader
    from patron.value.scoring import score as run_score
    from patron.value.settings import db_currencies
    from patron.value.summary import summary as run_summary

    with spinner("scoring customers", quiet=quiet):
        # Only the columns scoring reads (covariates may name any summary column), kept from each
        # bucket as it is finished: the summary of 10M customers holds half the memory.
        plain = not (value.all_covariates or value.dynamic_covariates)
        table = run_summary(db, period=value.period, end=end, output="arrow", columns=_SCORED_COLUMNS if plain else None)
        data = table.to_pandas()
        del table
        release_reader()
        scores = run_score(data, settings=value, interval_method=interval_method, n_draws=n_draws, db=db)
        del data
    scored = pa.Table.from_pandas(scores.customers, preserve_index=False)
    # Dictionaries only where values repeat (the rest are nearly all distinct numbers and ids).
    write_table(scored, out_file, dictionary=[c for c in ("frequency", "T", "spend_basis") if c in scored.column_names])
    currencies = db_currencies(db)
    return _score_info(out_file, value, len(scores.customers), (scores.equity, scores.equity_lower, scores.equity_upper), scores.level,
                       scores.method, scores.spend_bases, scores.notes(currencies), currencies)


def _score_on_spark(out_file: Path, transactions: str | None, value: ValueSettings, *, end: str | None, interval_method: str,
                    partition_by: str | None, quiet: bool) -> dict:
    # without pyspark: MissingExtraError, one line naming the spark extra
    from patron.value.spark_score import score_on_spark

    with spinner("scoring customers on Spark", quiet=quiet):
        res = score_on_spark(transactions, out_file, end=end, settings=value, interval_method=interval_method,  # type: ignore[arg-type]
                             partition_by=partition_by)
    info = _score_info(out_file, value, res.customers, (res.equity, res.equity_lower, res.equity_upper), res.level, res.method,
                       res.spend_bases, res.notes, ())
    return info | {"engine": "spark"}


@app.command()
def evaluate(
    end: Annotated[str, typer.Option("--end", help="Calibration end (inclusive).")],
    holdout_end: Annotated[str, typer.Option("--holdout-end", help="Holdout end (inclusive).")],
    db: DbOption = None,
    model: Annotated[list[TransactionModel] | None, typer.Option("--model", help="Model(s) to evaluate: bgnbd, pareto, mbgnbd (repeatable) [default: all].", **choice())] = None,
    period: Annotated[Period, typer.Option("--period", help="Time unit (D, W, M).", **choice())] = "W",
    out_file: Annotated[Path, typer.Option("--out", help="HTML page of the evaluation figures (Plotly, opens offline).")] = Path("evaluation.html"),
    png: Annotated[Path | None, typer.Option("--png", "--plots", help="Also write each figure as a PNG file (Matplotlib) into this folder.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fit on the calibration period and compare each model's holdout forecast with what customers did.

    Writes the figures (calibration vs holdout, cumulative tracking, expected purchases and P(alive)
    by frequency and recency) as one HTML page with Plotly (``--out``, default evaluation.html);
    ``--png DIR`` also writes them as PNG files with Matplotlib."""
    from patron.extras import require
    from patron.value.evaluation import cumulative_tracking, holdout_comparison
    from patron.value.models import MODELS
    from patron.value.scoring import TRANSACTION_MODELS, fit_model
    from patron.value.summary import summary as run_summary

    require("report", "patron evaluate", modules=("plotly",))
    if png is not None:
        require("report", "patron evaluate --png", modules=("matplotlib",))
    if out_file.suffix.lower() not in (".html", ".htm"):
        from patron.errors import InputError

        raise InputError(f"--out must end in .html; got {out_file}", parameters=("out",))
    names = model or [m for m in TRANSACTION_MODELS if m in MODELS]
    with spinner("evaluating", quiet=as_json):
        data = run_summary(db, period=period, end=end, holdout_end=holdout_end)
        results = {}
        for name in names:
            fitted = fit_model(name, data)
            results[name] = (fitted, holdout_comparison(fitted, data))
    from patron.report.evaluation_section import evaluation_page, model_figures
    from patron.report.html import Section

    start = str(data["first_purchase"].min())[:10]
    T = float(data["T"].max())
    sections, png_figures = [], []
    for name, (fitted, comp) in results.items():
        track = cumulative_tracking(fitted, db or get_settings().db, start=start, end=holdout_end, unit=period.upper())
        figs = model_figures(name, fitted, comp, track, T=T, unit=period.upper())
        sections.append(Section(name, name, intro=(
            f"Fitted on the purchases up to {end}; holdout to {holdout_end}. Log-likelihood {fitted.log_likelihood_:,.2f}; "
            f"holdout purchases actual {comp.actual_total:,.0f}, predicted {comp.predicted_total:,.1f}; per-customer MAE "
            f"{comp.mae:.4f}, RMSE {comp.rmse:.4f}."), figures=[f for _, f in figs],
            tables=[(f"{name}: calibration vs holdout", comp.by_frequency)]))
        if png is not None:
            from patron.value import plots as P

            png_figures += [
                (f"{name}_holdout", P.holdout_plot(comp)),
                (f"{name}_tracking", P.tracking_plot(track, calibration_end_period=T, unit=period.upper())),
                (f"{name}_frequency_recency", P.frequency_recency_heatmap(fitted, T=T)),
                (f"{name}_probability_alive", P.probability_alive_matrix(fitted, T=T)),
            ]
    from patron.data.outputs import atomic_output, check_output

    check_output(out_file, parents=True)
    page = evaluation_page("patron: model evaluation", sections, subtitle=f"calibration to {end}, holdout to {holdout_end}, period {period}")
    with atomic_output(out_file, parents=True) as target:
        target.write_text(page, encoding="utf-8")
    if png is not None:
        from patron.value import plots as P

        P.write_figures(png, png_figures)
    if as_json:
        _print_json({name: {"params": f.params_, "log_likelihood": f.log_likelihood_, **c.to_dict()} for name, (f, c) in results.items()})
        return
    for name, (fitted, comp) in results.items():
        out.print(f"[bold]{name}[/]: log-likelihood {fitted.log_likelihood_:.2f}; holdout purchases actual {comp.actual_total:,.0f}, "
                  f"predicted {comp.predicted_total:,.1f}; per-customer MAE {comp.mae:.4f}, RMSE {comp.rmse:.4f}")
    out.print(f"figures written to {out_file} (Plotly; opens offline)" + (f"; PNG files in {png}/" if png is not None else ""))
