"""Paper scale: steps 02-04 on a planted paper-sized study, and steps 01 and 05 against a simulated fleet.

(a) **Analysis** (`--respondents 50 525 2000`): a study of N respondents x 15 prompts x 3 samples whose answers are
    generated from a planted factor structure (`tests.support.planted.make_planted`: 8 factors of 40 words and noise
    words, ~2,000 words in all; each respondent's word counts are spread over its 45 answers as numbered lists). Steps
    02 (`lexicon.run_lexicon`), 03 (`factors.fit_factors` + outputs) and 04 (`taxonomy.build_taxonomy`, the
    per-training taxonomies and the bootstrap, as the notebook runs them; no namer: medoid names) each run in a fresh
    process: its seconds (the step's own calls, imports apart) and its peak resident memory (`wait4`).
(b) **Fleet** (`--fleet`): 32 model aliases on real OpenAI-compatible HTTP servers on localhost (4 server processes
    of 8 aliases, `tests.support.testing_servers`, fixed latency `--latency`), 525 respondents (the aliases x 16-17
    decoding configs). Step 01 (`elicitation.run_elicitation`, 525 x 15 x 3 = 23,625 calls) and step 05
    (`projective.run_projective`, 525 x 50 stems x 1 sample = 26,250 calls) at 64 and 256 calls in flight, through
    the real path (BatchRunner, LiteLLM, the store, worker processes when it decides so); ideal = calls x latency /
    in flight.

    python benchmarks/bench_scale.py [--respondents 50 525 2000] [--fleet/--no-fleet] [--latency 0.25]

Writes `outputs/bench/scale.json`: {"analysis": [{"respondents", "answers", "words", "seconds": {"02", "03", "04"},
"peak_mb": {...}, ...}], "fleet": [{"step", "calls", "in_flight", "seconds", "ideal"}, ...], "machine": ...}.
Timings are under whatever else the machine runs: the load average is recorded with each figure.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "none")  # the instrument servers take any key
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._machine import finish, load_avg, machine_info  # noqa: E402

PROMPTS, SAMPLES = 15, 3
N_FACTORS, WORDS_PER_FACTOR, N_WORDS = 8, 40, 2000
TRAININGS = ("pretrained", "instruction-tuned", "aligned")


# -- (a) the planted study ---------------------------------------------------------------------------------------------
def vocabulary(n: int, seed: int = 0) -> list[str]:
    """The shipped value words, then pronounceable made-up words until there are n (the paper's lexicon has ~2,000
    distinct words; the extraction rules take any list item's head word, so made-up words behave like real ones)."""
    words = [w.strip() for w in (REPO / "valuelex_utils" / "data" / "value_words.txt").read_text().splitlines()
             if w.strip() and w.strip().isalpha() and not w.startswith("#")]
    rng = random.Random(seed)
    cons, vows = "bcdfglmnprstvz", "aeiou"
    seen = set(words)
    while len(words) < n:
        w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.randint(2, 4))) + rng.choice(
            ("ness", "ity", "ance", "dom", "ism"))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words[:n]


def study_params(n: int) -> dict[str, Any]:
    """n respondents (one model id each, one config), trainings in turn; no LLM judge, namer or scorer calls."""
    return {"run_name": f"scale{n}", "seed": 0,
            "respondents": [{"model": f"openai/m{i:04d}", "training": TRAININGS[i % 3], "family": f"f{i % 7}"}
                            for i in range(n)],
            "elicitation": {"prompts": "all", "samples": SAMPLES},
            # K fixed at the planted 8: at 50 respondents x ~1,700 words parallel analysis finds no factor (too few
            # rows for the noise), and a fixed K keeps the work comparable across sizes (parallel analysis still runs)
            "factors": {"n_factors": N_FACTORS}}


def write_planted_study(n: int, run_dir: Path) -> dict[str, Any]:
    """params.yaml and elicitation.parquet of a planted study (what step 01 would have written)."""
    import pandas as pd
    import yaml

    from valuelex_utils.params import parse_params
    from tests.support.planted import make_planted
    from valuelex_utils.responses import respondent_table

    run_dir.mkdir(parents=True, exist_ok=True)
    raw = study_params(n)
    (run_dir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = parse_params(raw)
    counts, _truth = make_planted(n_respondents=n, n_factors=N_FACTORS, words_per_factor=WORDS_PER_FACTOR,
                                  n_noise_words=N_WORDS - N_FACTORS * WORDS_PER_FACTOR, model="poisson",
                                  mean_count=(0.05, 0.25), count_scale=1.2, seed=n)
    names = vocabulary(counts.shape[1])
    people = respondent_table(params)
    rng = random.Random(n)
    rows = []
    for i, (who, row) in enumerate(zip(people.itertuples(index=False), counts.to_numpy())):
        uses = [names[j] for j in range(len(names)) for _ in range(int(row[j]))]
        rng.shuffle(uses)
        answers: list[list[str]] = [[] for _ in range(PROMPTS * SAMPLES)]
        for k, word in enumerate(uses):
            answers[k % len(answers)].append(word)
        for a, words in enumerate(answers):
            text = "\n".join(f"{m + 1}. {w.capitalize()}" for m, w in enumerate(words)) or "I have no values to list."
            rows.append({"respondent": who.respondent, "model": who.model, "family": who.family, "size": who.size,
                         "training": who.training, "config": who.config, "temperature": who.temperature,
                         "top_p": who.top_p, "prompt_id": a // SAMPLES + 1, "sample": a % SAMPLES,
                         "key": f"planted-{i}-{a}", "text": text, "error": None, "prompt_tokens": 20,
                         "completion_tokens": 3 * len(words), "latency": 0.0, "cached": False})
    table = pd.DataFrame(rows)
    table.to_parquet(run_dir / "elicitation.parquet", index=False)
    return {"answers": len(table), "planted_words": len(names), "word_uses": int(counts.to_numpy().sum())}


def child(step: str, run_dir: str) -> dict[str, Any]:
    """One step in this (fresh) process; prints its seconds as JSON."""
    t0 = time.perf_counter()
    from valuelex_utils import factors, taxonomy
    from valuelex_utils.extraction import extract_descriptors
    from valuelex_utils.lexicon import run_lexicon
    from valuelex_utils.params import load_params
    from valuelex_utils.responses import respondent_table
    from valuelex_utils.rundir import RunDir

    params = load_params(Path(run_dir) / "params.yaml")
    rd = RunDir.at(run_dir)
    out: dict[str, Any] = {"import_s": round(time.perf_counter() - t0, 2), "parts": {}}
    started = time.perf_counter()
    if step == "02":
        lex = run_lexicon(params, run_dir, extract_descriptors)
        out["words"] = int(lex.counts["unique_words"])
        out["kept_words"] = int(lex.counts["kept_words"])
        out["matrix"] = list(lex.matrix.shape)
    elif step == "03":
        import cProfile
        import pstats

        matrix = factors.load_matrix(rd.matrix)
        prof = cProfile.Profile()
        prof.enable()
        result = factors.fit_factors(matrix, **params.factors.fit_kwargs(params.seed))
        prof.disable()
        factors.write_factor_outputs(result, run_dir)
        out["n_factors"] = int(result.n_factors)
        out["matrix"] = list(matrix.shape)
        # where the time goes: cumulative seconds of the fit's stages (cProfile: numpy's work is inside them)
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        for (_file, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.items():
            if fn in ("_parallel", "_extract", "_minres", "_rotate", "rotate", "_tetrachoric", "fit_factors"):
                out["parts"][fn] = round(max(out["parts"].get(fn, 0.0), ct), 2)
    elif step == "04":
        tp = params.taxonomy
        assignment, loadings, meta = taxonomy.read_factor_outputs(rd.factors_json, rd.loadings)
        t = time.perf_counter()
        result = taxonomy.build_taxonomy(assignment, loadings, k_min=tp.k_min, k_max=tp.k_max, seed=params.seed,
                                         call=None, model=None, name="scale_taxonomy", method={"factors": meta})
        result.write(run_dir)
        out["parts"]["build_taxonomy"] = round(time.perf_counter() - t, 2)
        matrix = factors.load_matrix(rd.matrix)
        fit_opts = params.factors.fit_kwargs(params.seed)
        t = time.perf_counter()
        taxonomy.taxonomies_by_training(matrix, respondent_table(params), seed=params.seed, fit_opts=fit_opts,
                                        k_min=tp.k_min, k_max=tp.k_max)
        out["parts"]["by_training"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        if tp.bootstrap > 0:
            taxonomy.taxonomy_stability(matrix, n_boot=tp.bootstrap, seed=params.seed, fit_opts=fit_opts,
                                        k_min=tp.k_min, k_max=tp.k_max)
        out["parts"]["bootstrap"] = round(time.perf_counter() - t, 2)
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def run_child(step: str, run_dir: Path) -> dict[str, Any]:
    """The step in a fresh process; its own peak RSS from wait4 (not the parent's, not another child's)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", step, str(run_dir)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"step {step} failed in {run_dir} (exit {proc.returncode})")
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_mb"] = round(usage.ru_maxrss / 1024, 1)
    return res


def analysis(sizes: list[int], tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        run_dir = tmp / f"scale{n}"
        load0 = load_avg()
        made = write_planted_study(n, run_dir)
        steps = {}
        for s in ("02", "03", "04"):
            steps[s] = run_child(s, run_dir)
            print(f"  {n} respondents, step {s}: {json.dumps(steps[s])}", flush=True)
        row = {"respondents": n, "answers": made["answers"], "words": steps["02"]["words"],
               "kept_words": steps["02"]["kept_words"], "planted_words": made["planted_words"],
               "seconds": {s: r["seconds"] for s, r in steps.items()},
               "seconds_02_04": round(sum(r["seconds"] for r in steps.values()), 2),
               "import_s": {s: r["import_s"] for s, r in steps.items()},
               "peak_mb": {s: r["peak_mb"] for s, r in steps.items()},
               "parts_03": steps["03"]["parts"], "parts_04": steps["04"]["parts"],
               "n_factors": steps["03"]["n_factors"], "matrix": steps["03"]["matrix"],
               "load_avg_before": load0, "load_avg_after": load_avg()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# -- (b) the fleet ----------------------------------------------------------------------------------------------------
ALIASES, SERVERS = 32, 4


def fleet_params(bases: list[str], in_flight: int, respondents: int = 525) -> dict[str, Any]:
    """`respondents` respondents over 32 aliases (16-17 decoding configs each), every alias on one of the servers."""
    per = [respondents // ALIASES + (1 if a < respondents % ALIASES else 0) for a in range(ALIASES)]
    grid = [(round(0.1 * t, 1), p) for t in range(1, 15) for p in (1.0, 0.9)]
    return {"run_name": "fleet", "seed": 0, "concurrency": in_flight, "retries": 2, "timeout": 60,
            "respondents": [{"model": f"openai/alias{a:02d}", "training": TRAININGS[a % 3], "family": f"f{a % 8}",
                             "api_base": bases[a % len(bases)],
                             "configs": [{"temperature": t, "top_p": p} for t, p in grid[:per[a]]]}
                            for a in range(ALIASES)],
            "elicitation": {"prompts": "all", "samples": SAMPLES},
            "projective": {"stems": "all", "samples": 1}}


def fleet(latency: float, in_flights: list[int], tmp: Path, steps: tuple[str, ...] = ("01", "05")
          ) -> list[dict[str, Any]]:
    from valuelex_utils.llm import shards
    from valuelex_utils.elicitation import run_elicitation
    from valuelex_utils.params import parse_params
    from valuelex_utils.projective import run_projective
    from tests.support.testing_servers import start_server

    rows = []
    servers = [start_server(delay=latency) for _ in range(SERVERS)]
    try:
        bases = [s.api_base for s in servers]
        runs = [(s, f) for s, f in (("01", run_elicitation), ("05", run_projective)) if s in steps]
        for (step, fn), c in itertools.product(runs, in_flights):
            params = parse_params(fleet_params(bases, c))
            run_dir = tmp / f"fleet-{step}-{c}"
            run_dir.mkdir(parents=True)
            load0 = load_avg()
            started = time.perf_counter()
            table, tally = asyncio.run(fn(params, str(run_dir), progress=False))
            wall = time.perf_counter() - started
            calls = len(table)
            answered = int(table["text" if "text" in table else "completion"].notna().sum())  # 05 renames it
            row = {"step": step, "calls": calls, "in_flight": c, "seconds": round(wall, 1),
                   "ideal": round(calls * latency / c, 1), "efficiency": round(calls * latency / c / wall, 3),
                   "latency_s": latency, "answered": answered, "retries": int(tally.total("retries")),
                   "worker_processes": shards.auto_processes(c, calls) if params.processes == 0 else params.processes,
                   "aliases": ALIASES, "servers": SERVERS, "load_avg_before": load0, "load_avg_after": load_avg()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shards.stop_pool()
        for s in servers:
            s.stop()
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--respondents", type=int, nargs="*", default=[50, 525, 2000])
    p.add_argument("--fleet", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--latency", type=float, default=0.25, help="seconds each fleet server takes to answer")
    p.add_argument("--in-flight", type=int, nargs="*", default=[64, 256])
    p.add_argument("--fleet-steps", nargs="*", default=["01", "05"], choices=["01", "05"])
    p.add_argument("--out", default=str(REPO / "outputs" / "bench" / "scale.json"))
    p.add_argument("--child", nargs=2, metavar=("STEP", "RUN_DIR"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(*a.child)), flush=True)
        return {}
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine_info(llama=False), "analysis": [], "fleet": []}
    with tempfile.TemporaryDirectory() as tmp:
        result["analysis"] = analysis(a.respondents, Path(tmp))
        if a.fleet:
            result["fleet"] = fleet(a.latency, a.in_flight, Path(tmp), tuple(a.fleet_steps))
    finish(result["machine"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["target_02_04_le_60s"] = {str(r["respondents"]): r["seconds_02_04"] <= 60 for r in result["analysis"]}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out} in {result['seconds']} s")
    return result


if __name__ == "__main__":
    main()
