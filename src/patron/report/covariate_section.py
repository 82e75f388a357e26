"""Report section "Who buys more, who leaves sooner": the covariate effects of the transaction
model, shown only when ``[value] covariates`` (or ``dynamic_covariates``) is configured
(docs/models.md, "Covariates")."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from patron.report.html import Section
from patron.report.registry import ReportContext, register_section


def effects_figure(effects) -> go.Figure:
    """Rate multipliers exp(effect) with their 95% intervals, one marker per (process, covariate),
    on a log axis with the no-effect line at 1."""
    labels = [f"{p}: {c}" for p, c in zip(effects["process"], effects["covariate"], strict=True)]
    fig = go.Figure(go.Scatter(
        x=effects["rate_multiplier"], y=labels, mode="markers",
        error_x=dict(type="data", symmetric=False, array=effects["rate_multiplier_upper"] - effects["rate_multiplier"],
                     arrayminus=effects["rate_multiplier"] - effects["rate_multiplier_lower"]),
        hovertemplate="%{y}: x%{x:.3f}<extra></extra>"))
    fig.add_vline(x=1.0, line_dash="dot")
    from patron.display import log_ticks, tick_text

    ends = np.concatenate([np.asarray(effects[c], dtype=float) for c in ("rate_multiplier_lower", "rate_multiplier_upper", "rate_multiplier")])
    ends = ends[np.isfinite(ends) & (ends > 0)]
    ticks = log_ticks(float(min(ends.min(), 1.0)), float(max(ends.max(), 1.0))) if ends.size else []
    if len(ticks) >= 3:  # 1-2-5 steps of each decade, as plain numbers (else Plotly's own)
        fig.update_xaxes(tickvals=ticks, ticktext=tick_text(ticks))
    fig.update_layout(xaxis_type="log", xaxis_title="rate multiplier per unit of the covariate (95% interval)",
                      height=max(260, 60 + 40 * len(labels)), margin=dict(l=10, r=10, t=30, b=40))
    return fig


@register_section("covariate_effects", order=55, title="Covariate effects")
def covariate_section(db: str, ctx: ReportContext) -> Section | None:
    """The effects table and figure of the covariate model fitted with the report's settings."""
    value = ctx.value()
    if not (value.all_covariates or value.dynamic_covariates):
        return None
    from patron.value.covariate_data import join_covariates
    from patron.value.scoring import dynamic_model, fit_covariate_model
    from patron.value.summary import summary

    def fit():
        data = summary(db, period=value.period, end=ctx.as_of)
        if value.dynamic_covariates:
            model, _, dynamic_notes = dynamic_model(data, value, db=db)
            return model, dynamic_notes
        encoded = join_covariates(data, value.all_covariates, db=db)
        x, tx, T = (data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        model = fit_covariate_model(value.model, x, tx, T, encoded, purchase=value.purchase_covariates or value.covariates,
                                    dropout=value.dropout_covariates or value.covariates)
        return model, encoded.notes

    model, notes = ctx.memo("covariate_model", fit)
    effects = model.covariate_effects()
    table = effects[["process", "covariate", "effect", "std_error", "lower", "upper", "rate_multiplier", "multiplies"]]
    significant = effects[(effects["lower"] > 0) | (effects["upper"] < 0)]
    kind = "time-varying covariates" if value.dynamic_covariates else "customer covariates"
    intro = (f"The {value.model} model fitted with {kind}: each effect multiplies what the last column "
             "names by exp(effect) per unit of the covariate (a level against the most common one for categories). "
             "These are associations in the data, not the effect of changing a customer's attributes.")
    lines = [f"{len(significant)} of {len(effects)} effects have a 95% interval that excludes 0.",
             f"Log-likelihood {model.log_likelihood_:,.2f} on {model.n_customers_:,} customers.", *notes]
    return Section("covariate_effects", "Covariate effects", intro=intro, figures=[effects_figure(effects)],
                   tables=[("Covariate effects", table)], notes=lines)
