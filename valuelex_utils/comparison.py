"""LLM values next to human value systems (paper Sec. 4.1 "Differences between LLM and Human Values", Sec. 4.2
"Orientations Measured in Different Systems", Fig. 4).

The same projective completions are scored under Schwartz's basic values, the ValueLex system and Moral Foundations
Theory. Three questions: how do models look under each system (Fig. 4), which human values live inside which LLM
dimension (the paper: Achievement and Power inside Competence, Benevolence and Universalism inside Character), and
which human dimensions carry little signal for LLMs (the paper: Sanctity, Loyalty, Hedonism, Tradition).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import captioned
from .profiles import value_profiles

SYSTEM_ORDER = ("run", "schwartz", "valuelex", "mft")  # panels of Fig. 4: this run's own system first, then the paper's
SYSTEM_TITLES = {"run": "This run's system", "schwartz": "Schwartz basic values",
                 "valuelex": "ValueLex (the paper's)", "mft": "Moral Foundations"}


def system_title(key: str) -> str:
    return SYSTEM_TITLES.get(key, key)


def ordered_systems(keys) -> list[str]:
    """Known systems in `SYSTEM_ORDER`, others (custom files) after them in their given order."""
    keys = list(dict.fromkeys(keys))
    return [s for s in SYSTEM_ORDER if s in keys] + [s for s in keys if s not in SYSTEM_ORDER]


def comparison_table(scores: dict[str, pd.DataFrame], leaves: dict[str, Sequence[str]], n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """Long table for comparison.csv: system, model, training, column, w, lo, hi, n (model-level profiles)."""
    frames = []
    for system in scores:
        prof = value_profiles(scores[system], leaves[system], n_boot=n_boot, seed=seed, levels=("model",))
        frames.append(prof.drop(columns="level").rename(columns={"id": "model"}).assign(system=system))
    out = pd.concat(frames, ignore_index=True)
    return out[["system", "model", "training", "column", "w", "lo", "hi", "n", "neutral_share"]]


def signals(comparison: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Per system of Fig. 4, in its panel order: (title, "signal" or "little signal", how much its bars say)."""
    from .profiles import profile_signal

    prof = comparison.rename(columns={"model": "id"}).assign(level="model")
    if "neutral_share" not in prof.columns:  # a comparison.csv written before the column existed
        prof["neutral_share"] = float("nan")
    out = []
    for system in ordered_systems(prof["system"]):
        head, body = profile_signal(prof, level="model", system=system).parts(brackets=False)
        out.append((system_title(system), head.rstrip(".").lower(), body[0]))
    return out


def signal_lines(comparison: pd.DataFrame) -> str:
    """`signals` as a markdown list, for under Fig. 4."""
    return "\n".join(f"- **{title}**: {head}; {words}" for title, head, words in signals(comparison))


def figure4(comparison: pd.DataFrame) -> go.Figure:
    """Paper Fig. 4: one panel per system (this run's own | Schwartz | ValueLex | MFT), one trace per model, 95%
    intervals as error bars. Bars grow from the neutral 0.5 (up: the value is expressed, down: its opposite) and
    the axis spans the data, so differences of a few hundredths stay visible; the caption says what is drawn."""
    systems = ordered_systems(comparison["system"])
    widths = [max(1, comparison.loc[comparison.system == s, "column"].nunique()) for s in systems]
    fig = make_subplots(rows=1, cols=len(systems), shared_yaxes=True, column_widths=widths,
                        subplot_titles=[system_title(s) for s in systems], horizontal_spacing=0.03)
    palette = ["#4c78a8", "#e45756", "#54a24b", "#f58518", "#b279a2", "#72b7b2", "#9d755d", "#bab0ac"]
    for m_i, model in enumerate(sorted(comparison["model"].unique())):
        for s_i, system in enumerate(systems, start=1):
            d = comparison[(comparison.system == system) & (comparison.model == model)]
            fig.add_trace(go.Bar(
                x=d["column"], y=d["w"] - 0.5, base=0.5, name=model, legendgroup=model, showlegend=s_i == 1,
                marker_color=palette[m_i % len(palette)], customdata=d[["w", "lo", "hi"]].to_numpy(),
                hovertemplate="%{x}: w = %{customdata[0]:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}]",
                error_y=dict(type="data", symmetric=False, array=(d["hi"] - d["w"]).fillna(0),
                             arrayminus=(d["w"] - d["lo"]).fillna(0), thickness=1.5, width=3)), row=1, col=s_i)
    lo = float(np.nanmin(comparison[["lo", "w"]].to_numpy(float))) if len(comparison) else 0.0
    hi = float(np.nanmax(comparison[["hi", "w"]].to_numpy(float))) if len(comparison) else 1.0
    pad = max(0.01, 0.1 * (max(hi, 0.5) - min(lo, 0.5)))
    y_range = [max(0.0, min(lo, 0.5) - pad), min(1.0, max(hi, 0.5) + pad)]
    fig.update_yaxes(range=y_range, title_text="orientation w (score / 6)", row=1, col=1)
    fig.update_xaxes(tickangle=-40)
    fig.update_annotations(yshift=8)  # panel titles clear of the top tick label
    n = comparison.groupby("model")["n"].max() if "n" in comparison.columns else pd.Series(dtype=float)
    count = ("; n = " + ", ".join(f"{int(v)} completions of {m}" for m, v in n.items() if pd.notna(v))) if len(n) else ""
    fig.update_layout(barmode="group", height=560, legend_title="model",
                      title=f"The same completions under {len(systems)} value systems")
    return captioned(fig, "Bar: mean orientation w (score / 6) of a model's completions on a (sub)dimension, drawn "
                         "from the neutral 0.5 (up: the value expressed, down: its opposite); whisker: its 95% "
                         f"interval (stem bootstrap); the axis spans {y_range[0]:.2f}-{y_range[1]:.2f}, the data's "
                         f"range, not 0-1{count}.")


def cross_system_correlations(ours: pd.DataFrame, ours_cols: Sequence[str], human: pd.DataFrame,
                              human_cols: Sequence[str]) -> pd.DataFrame:
    """Spearman correlations across completions between our (sub)dimensions (rows) and human dimensions (columns).

    Rows of both frames must be the same completions in the same order."""
    import warnings

    a = ours[list(ours_cols)].astype(float).reset_index(drop=True)
    b = human[list(human_cols)].astype(float).reset_index(drop=True)
    with warnings.catch_warnings():  # a constant column has no correlation: NaN, said in the table, not a warning
        warnings.simplefilter("ignore")
        return pd.DataFrame({h: [a[o].corr(b[h], method="spearman") for o in ours_cols] for h in human_cols},
                            index=list(ours_cols))


def correlation_heatmap(corr: pd.DataFrame, title: str) -> go.Figure:
    z = corr.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z]  # no correlation: an empty cell, not "NaN"
    fig = go.Figure(go.Heatmap(z=z, x=corr.columns, y=corr.index, zmin=-1, zmax=1,
                               colorscale="RdBu", reversescale=True, text=text, texttemplate="%{text}"))
    return fig.update_layout(title=title, height=120 + 40 * len(corr.index))


def where_human_values_live(corr: pd.DataFrame) -> pd.DataFrame:
    """For each human dimension, the LLM (sub)dimension it correlates with most, and how strongly."""
    rows = []
    for h in corr.columns:
        col = corr[h].dropna()
        if col.empty:  # a human dimension scored constant on these completions: nothing to correlate
            rows.append({"human": h, "closest_llm_dimension": None, "spearman": float("nan")})
        else:
            rows.append({"human": h, "closest_llm_dimension": col.idxmax(), "spearman": float(col.max())})
    return pd.DataFrame(rows)


def signal_table(scores: pd.DataFrame, columns: Sequence[str], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """How much signal each dimension carries: mean normalised score with a stem-bootstrap 95% interval, the share of
    neutral (3) scores, and the standard deviation across completions. Little signal = a mean near 0.5 whose interval
    covers it, mostly neutral scores, low spread."""
    rng = np.random.default_rng(seed)
    stems = scores["stem_id"].to_numpy()
    uniq = np.unique(stems)
    rows = []
    for col in columns:
        x = scores[col].astype(float) / 6.0
        per_stem = x.groupby(stems).mean().reindex(uniq).to_numpy()
        boots = np.nanmean(per_stem[rng.integers(0, len(uniq), size=(n_boot, len(uniq)))], axis=1)
        rows.append({"column": col, "mean": float(x.mean()), "lo": float(np.nanpercentile(boots, 2.5)),
                     "hi": float(np.nanpercentile(boots, 97.5)), "neutral_share": float(((scores[col].astype(float) - 3).abs() < 0.5).mean()),
                     "sd": float(x.std())})
    out = pd.DataFrame(rows)
    out["covers_neutral"] = (out["lo"] <= 0.5) & (out["hi"] >= 0.5)
    return out.sort_values(["neutral_share", "sd"], ascending=[False, True]).reset_index(drop=True)
