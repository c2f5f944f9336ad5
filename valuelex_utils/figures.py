"""Plotly figures of the step notebooks and the report, one function per figure, so notebooks stay one line a plot
and the report can rebuild the key figures from the run dir alone."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

TRAINING_COLORS = {"pretrained": "#8c8c8c", "instruction-tuned": "#4c78a8", "aligned": "#e45756"}


def answers_per_respondent(answers: pd.DataFrame) -> go.Figure:
    """Answers per respondent, split into fresh calls and cache hits."""
    counts = (answers.assign(source=answers["cached"].map({True: "cached", False: "called"}))
              .groupby(["respondent", "source"]).size().reset_index(name="answers"))
    fig = px.bar(counts, x="respondent", y="answers", color="source", title="Answers per respondent",
                 color_discrete_map={"called": "#4c78a8", "cached": "#bab0ac"})
    fig.update_xaxes(tickangle=-40)
    return captioned(fig, f"Bars: answers of each respondent (a model at one temperature/top-p setting), split into "
                          f"fresh calls and answers served from the run's cache; n = {len(answers)} answers of "
                          f"{answers['respondent'].nunique()} respondents.")


def length_distribution(answers: pd.DataFrame, text_col: str = "text") -> go.Figure:
    """Answer length in words per training type: base models ramble, tiny chat models repeat themselves."""
    df = answers.assign(words=answers[text_col].fillna("").str.split().str.len())
    fig = px.histogram(df, x="words", color="training", barmode="overlay", nbins=30, opacity=0.7,
                       color_discrete_map=TRAINING_COLORS, title="Answer length (words) by training type")
    per = ", ".join(f"{t} {k}" for t, k in df.groupby("training").size().items())
    return captioned(fig.update_layout(yaxis_title="answers"),
                     f"Histogram of answer length in words (whitespace-separated), one colour per training type, "
                     f"overlaid; n = {len(df)} ({per}).")


def top_words_by_training(lexicon: pd.DataFrame, n: int = 20) -> go.Figure:
    """Top words per training type by the share of that type's respondents using them (paper appendix A.3)."""
    shares = [c for c in lexicon.columns if c.startswith("share_")]
    frames = []
    for col in shares:
        top = lexicon.nlargest(n, col)[["word", col]].rename(columns={col: "share"})
        frames.append(top.assign(training=col.removeprefix("share_")))
    df = pd.concat(frames) if frames else pd.DataFrame(columns=["word", "share", "training"])
    fig = px.bar(df, x="share", y="word", color="training", facet_col="training", orientation="h",
                 color_discrete_map=TRAINING_COLORS, title=f"Top {n} value words per training type",
                 facet_col_spacing=0.12)  # room for the next panel's word labels beside a full bar
    fig.update_yaxes(matches=None, showticklabels=True, categoryorder="total ascending")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    fig.update_xaxes(range=[0, 1.02], title_text="share of respondents")
    fig.update_layout(height=max(400, 22 * n + 160), showlegend=False)
    return captioned(fig, f"Bars: the share of a training type's respondents who used the word at least once (0-1, "
                          f"so the axis spans 0-1); the {n} most shared words per type; n = {len(lexicon)} words "
                          "in the lexicon.")


def growth(curve: pd.DataFrame) -> go.Figure:
    """Lexicon size as respondents are added (random orders): a flattening curve means the lexicon saturates."""
    fig = go.Figure([  # lines only: plotly draws markers on short traces, dots on the band's invisible edges
        go.Scatter(x=curve["respondents"], y=curve["hi"], mode="lines", line=dict(width=0), showlegend=False,
                   hoverinfo="skip"),
        go.Scatter(x=curve["respondents"], y=curve["lo"], mode="lines", fill="tonexty", line=dict(width=0),
                   name="5-95%", fillcolor="rgba(76,120,168,0.25)"),
        go.Scatter(x=curve["respondents"], y=curve["mean"], mode="lines+markers", name="mean",
                   line=dict(color="#4c78a8")),
    ])
    fig.update_layout(title="Lexicon growth as respondents are added", xaxis_title="respondents",
                      yaxis_title="unique words")
    return captioned(fig, "Unique value words (y) after the first x respondents, respondents added in random "
                          "orders: line = mean over the orders, band = their 5-95% range; a flattening line means "
                          f"the lexicon saturates; n = {int(curve['respondents'].max())} respondents.")


def profile_heatmap(profiles: pd.DataFrame, level: str = "model", system: str | None = None,
                    title: str | None = None) -> go.Figure:
    """Paper Fig. 3: orientation w of each model (or respondent) on each (sub)dimension, 0.5 = neutral.

    A cell whose 95% interval includes 0.5 shows its value in brackets: the test cannot tell it from neutral.
    `system` picks one system of a table that holds several (value_profiles.csv)."""
    from .profiles import covers_neutral, one_system

    sub = one_system(profiles, system)
    sub = sub[sub["level"] == level].assign(_cover=lambda d: covers_neutral(d))
    order = list(dict.fromkeys(sub["column"]))
    w = sub.pivot(index="id", columns="column", values="w")[order]
    lo = sub.pivot(index="id", columns="column", values="lo")[order]
    hi = sub.pivot(index="id", columns="column", values="hi")[order]
    cover = sub.pivot(index="id", columns="column", values="_cover")[order].fillna(False).astype(bool)
    n = sub["n"].astype(float) if "n" in sub.columns else None
    with_ci = len(order) <= 12  # the interval fits under the value in a cell this wide

    def cell(i: int, j: int) -> str:
        v = f"({w.iat[i, j]:.2f})" if cover.iat[i, j] else f"{w.iat[i, j]:.2f}"
        if with_ci and pd.notna(lo.iat[i, j]) and pd.notna(hi.iat[i, j]):
            v += f"<br>[{lo.iat[i, j]:.2f}, {hi.iat[i, j]:.2f}]"
        return v

    text = [[cell(i, j) for j in range(w.shape[1])] for i in range(w.shape[0])]
    hover = [[f"{w.index[i]} · {order[j]}<br>w = {w.iat[i, j]:.3f} [{lo.iat[i, j]:.3f}, {hi.iat[i, j]:.3f}]"
              + ("<br>interval includes 0.5" if cover.iat[i, j] else "")
              for j in range(w.shape[1])] for i in range(w.shape[0])]
    fig = go.Figure(go.Heatmap(z=w.to_numpy(), x=order, y=w.index, zmin=0, zmax=1, zmid=0.5, colorscale="RdBu",
                               text=text, texttemplate="%{text}", hovertext=hover, hoverinfo="text",
                               colorbar=dict(title="w", tickvals=[0, 0.5, 1], ticktext=["0", "0.5", "1"],
                                             len=1, thickness=14)))
    if "parent" in sub.columns:  # dimensions in bold, a line before each: which subdimensions belong to which
        dims = set(sub.loc[sub["parent"].isna() | (sub["parent"] == ""), "column"])
        fig.update_xaxes(tickmode="array", tickvals=order,
                         ticktext=[f"<b>{c}</b>" if c in dims else c for c in order])
        for i, c in enumerate(order):
            if c in dims and i > 0:
                fig.add_vline(x=i - 0.5, line_color="#333", line_width=2)
    head = title or f"Value orientation per {level}"
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=dict(text=head), height=230 + (56 if with_ci else 40) * len(w.index))
    count = "" if n is None or n.isna().all() else (
        f"; n = {int(n.min())} completions per cell" if n.min() == n.max()
        else f"; n = {int(n.min())}-{int(n.max())} completions per cell")
    return captioned(fig, f"Cell: mean orientation w (score / 6) of each {level}'s completions on a (sub)dimension; "
                          "0.5 = neutral, colour scale fixed at 0-1 (the range of w) so colours compare across "
                          + ("systems; under it, the 95% interval (stem bootstrap); " if with_ci else
                             "systems; 95% intervals (stem bootstrap) on hover; ")
                          + "(brackets): the interval includes 0.5"
                          + ("; bold: a dimension, followed by its subdimensions" if "parent" in sub.columns else "")
                          + count + ".")


def effects_forest(effects: pd.DataFrame) -> go.Figure:
    """Coefficients with 95% intervals per (sub)dimension and term: effects of training and size on orientation."""
    fig = go.Figure()
    for term, d in effects.groupby("term", sort=False):
        fig.add_trace(go.Scatter(x=d["coef"], y=d["column"], mode="markers", name=term,
                                 error_x=dict(type="data", symmetric=False, array=d["hi"] - d["coef"],
                                              arrayminus=d["coef"] - d["lo"])))
    fig.add_vline(x=0, line_dash="dot", line_color="#888")
    fig.update_layout(title="Effects on orientation w (OLS, SE clustered by stem, 95% CI)",
                      xaxis_title="change in w", height=220 + 28 * effects["column"].nunique())
    return captioned(fig, "Dot: the OLS coefficient of each term (training type vs the reference, size) on a "
                          "(sub)dimension's w; bar: its 95% confidence interval with standard errors clustered by "
                          "sentence stem; dotted line: no effect"
                          + (f"; n = {int(effects['n'].max())} completions." if "n" in effects.columns else "."))


CAPTION_CHARS = 150  # characters a caption line holds at the report's width (about 1,100 px at 12 px)


def captioned(fig: go.Figure, caption: str, chars: int = CAPTION_CHARS) -> go.Figure:
    """Put `caption` (what is plotted, what bars/intervals are, n) under the figure's title, wrapped to lines, as
    plotly's title subtitle: it then travels with the figure into notebooks, the report and static images alike."""
    import textwrap

    lines = textwrap.wrap(caption, chars)
    title = fig.layout.title.text or ""
    top = 50 + (18 if title else 0) * (title.count("<br>") + 1) + 16 * len(lines)
    fig.update_layout(title=dict(subtitle=dict(text="<br>".join(lines), font=dict(size=12, color="#555")),
                                 yref="container", y=0.99, yanchor="top"),
                      margin=dict(t=max(top, (fig.layout.margin.t or 0))))
    return fig
