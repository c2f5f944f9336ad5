"""`valuelex`: the command line (DESIGN.md, "CLI"). Heavy libraries are imported inside each verb, so that
`valuelex --help` answers at once.

Bad input is one line on stderr and exit code 2; nothing already in a run dir is overwritten or lost. Every verb's
files, paths, ids and numbers go through `inputs.py` (the one input boundary) before any call or write, and no verb
but `run` writes into a run dir unless told `--force`.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import inputs
from .env import configure_env
from .errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage first otherwise)
        raise UserError(f"{self.prog}: {message}")


def _check_number(value: float | None, flag: str, lo: float, hi: float) -> None:
    """A number option within its bounds and finite (argparse's float() takes 'inf' and 'nan')."""
    if value is not None and not (lo <= value <= hi):  # NaN fails both comparisons
        shown = [str(x) if isinstance(x, int) else f"{x:g}" for x in (lo, hi)]
        raise UserError(f"{flag}: expected a number from {shown[0]} to {shown[1]}, got {value}")


def _check_outputs(args: argparse.Namespace, output_is_folder: bool = False) -> None:
    """-o (a file, or a folder for `factors`) and --cache: usable paths, and outside any run dir unless --force."""
    force = getattr(args, "force", False)
    if output_is_folder:
        inputs.writable_folder(args.output, "-o")
    else:
        inputs.output_file(args.output, "-o")
    inputs.refuse_run_dir_output(args.output, "-o", force)
    if getattr(args, "cache", None):
        inputs.writable_folder(args.cache, "--cache")
        inputs.refuse_run_dir_output(args.cache, "--cache", force)


def _cmd_models(args: argparse.Namespace) -> int:
    from .llm.models import list_models

    _check_number(args.timeout, "--timeout", 0.1, 3600)
    if args.params:
        inputs.input_file(args.params, "params file")

    return list_models(args.params, timeout=args.timeout)


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import run

    inputs.input_file(args.params, "params file")  # before run() resolves the path (a symlink loop, a NUL byte)
    if args.run_dir is not None:
        inputs.run_dir_target(args.run_dir)

    return run(params_path=args.params, steps=args.steps, run_dir=args.run_dir, dry_run=args.dry_run,
               report=not args.no_report)


def _judge_endpoint(args: argparse.Namespace, judge: str | None) -> dict | None:
    """`--api-base` / `--api-key-env` as a deployment; the judge id is checked before any input is read."""
    if not judge:
        if args.api_base or args.api_key_env or args.cache:
            raise UserError("--cache, --api-base and --api-key-env need a judge (--judge MODEL)")
        return None
    inputs.check_model_id(judge, "--judge")
    if args.api_base is not None:
        inputs.check_url(args.api_base, "--api-base")
    if args.api_key_env is not None:
        inputs.check_env_name(args.api_key_env, "--api-key-env")
    from .llm.calls import check_model_id  # registers the embedded models with LiteLLM
    from .llm.roles import cli_deployment

    check_model_id(judge)
    return cli_deployment(args.api_base, args.api_key_env)


def _cmd_extract(args: argparse.Namespace) -> int:
    from .extraction import extract_file

    inputs.check_answers_jsonl(args.input)
    _check_outputs(args)
    deployment = _judge_endpoint(args, args.judge)
    n = extract_file(args.input, args.output, model=args.judge, cache=args.cache, deployment=deployment)
    print(f"wrote {n} lines to {args.output}", file=sys.stderr)
    return 0


FACTOR_OPTIONS = ("n_factors", "k_rule", "rotation", "method", "corr", "transform", "threshold", "min_words", "pa_iter",
                  "percentile", "seed", "n_boot", "max_k", "parallel_when_fixed")


def _cmd_factors(args: argparse.Namespace) -> int:
    from .factors import run_factors_cli
    from .params import MAX_FACTORS, MAX_SEED

    _check_number(args.n_factors, "--n-factors", 1, MAX_FACTORS)
    _check_number(args.threshold, "--threshold", 0.01, 0.99)
    _check_number(args.seed, "--seed", 0, MAX_SEED)
    inputs.read_csv_rows(args.matrix, "matrix file")
    _check_outputs(args, output_is_folder=True)
    opts = {k: v for k, v in vars(args).items() if k in FACTOR_OPTIONS and v is not None}
    summary = run_factors_cli(args.matrix, args.output, **opts)
    names = ", ".join(os.path.basename(p) for p in summary["paths"].values())
    print(f"K = {summary['n_factors']} ({summary['k_rule']}); wrote {names} to {args.output}", file=sys.stderr)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .params import DEFAULT_JUDGE
    from .scoring import score_file

    if args.judge and args.scorer != "llm":
        raise UserError("--judge only applies to --scorer llm")
    inputs.check_completions_csv(args.input)
    inputs.check_path_text(args.system, "--system")
    _check_outputs(args)
    deployment = _judge_endpoint(args, (args.judge or DEFAULT_JUDGE) if args.scorer == "llm" else None)
    score_file(args.input, system=args.system, scorer=args.scorer, judge=args.judge, out_csv=args.output,
               cache=args.cache, deployment=deployment)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, shareable_report

    inputs.check_run_products(args.run_dir)
    index = build_report(args.run_dir)
    print(index)
    print(f"to share (one file, opens offline anywhere): {shareable_report(args.run_dir)}", file=sys.stderr)
    return 0


def _judge_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="folder where the judge's answers are stored and reused (rerun = no calls, a killed run "
                        "resumes); default: valuelex-cache/ beside the output")
    p.add_argument("--api-base", default=None, metavar="URL",
                   help="where the judge is served (e.g. http://localhost:8080/v1 for openai/<alias> on llama.cpp)")
    p.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="name of the environment variable holding the judge's key, if its server needs one")
    _force_option(p)


def _force_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="write -o even inside a run dir (whose products it may overwrite)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="valuelex", description="Reconstruct and measure the value systems of LLMs (ValueLex).")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    m = sub.add_parser("models", help="list embedded and configured models and whether each answers")
    m.add_argument("--params", default=None, help="also check the respondents of this params file")
    m.add_argument("--timeout", type=float, default=60.0)
    m.set_defaults(func=_cmd_models)

    r = sub.add_parser("run", help="run the notebooks of a study into a run dir (papermill)")
    r.add_argument("--params", default="params/default.yaml")
    r.add_argument("--steps", default="01-07", help="e.g. 01-07, 03, 01,02,05")
    r.add_argument("--run-dir", default=None, help="default: outputs/<run_name>")
    r.add_argument("--dry-run", action="store_true", help="print calls, tokens and cost per step and model; run nothing")
    r.add_argument("--no-report", action="store_true", help="skip the HTML report at the end")
    r.set_defaults(func=_cmd_run)

    e = sub.add_parser("extract", help="value descriptors from answers (JSONL {id, text} -> {id, descriptors})")
    e.add_argument("input", help="JSONL, one {\"id\", \"text\"} per line")
    e.add_argument("-o", "--output", required=True, help="JSONL, one {\"id\", \"descriptors\"} per line")
    e.add_argument("--judge", default=None, metavar="MODEL",
                   help="any LiteLLM model (e.g. openai/gpt-4o, local/smollm2-135m-instruct) that then keeps only the "
                        "words it judges to name a value; default: the rules alone")
    _judge_options(e)
    e.set_defaults(func=_cmd_extract)

    f = sub.add_parser("factors", help="exploratory factor analysis of a respondent x word matrix")
    f.add_argument("matrix")
    f.add_argument("-o", "--output", required=True)
    # one flag per keyword of factors.fit_factors, same names (tests check the choices against factors.py)
    f.add_argument("--n-factors", type=int, default=None, help="fix K (default: chosen by --k-rule)")
    f.add_argument("--k-rule", choices=["parallel", "deflated", "kaiser"], default=None,
                   help="parallel (Horn, default), deflated (Horn + Dobriban-Owen deflation), kaiser (eigenvalue > 1)")
    f.add_argument("--rotation", choices=["oblimin", "promax", "varimax", "none"], default=None)
    f.add_argument("--method", choices=["minres", "ml", "principal"], default=None,
                   help="minres (default), ml (maximum likelihood), principal (principal components)")
    f.add_argument("--corr", choices=["pearson", "tetrachoric"], default=None)
    f.add_argument("--transform", choices=["log1p", "none"], default=None,
                   help="log1p (default: Pearson r of log(1 + count)) or none (raw values, e.g. Likert data)")
    f.add_argument("--threshold", type=float, default=None, help="min |loading| to assign a word (default 0.30)")
    f.add_argument("--min-words", type=int, default=None,
                   help="a rule-chosen factor needs this many assigned words, else K is lowered (default 3; 1 = off)")
    f.add_argument("--pa-iter", type=int, default=None, help="parallel-analysis permutations (default 100)")
    f.add_argument("--percentile", type=float, default=None, help="parallel-analysis percentile (default 95)")
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--n-boot", type=int, default=None, help="bootstrap resamples for 95%% loading intervals (default 0)")
    f.add_argument("--max-k", type=int, default=None, help="largest K in the table of fit per candidate K (0: none)")
    f.add_argument("--no-parallel-when-fixed", dest="parallel_when_fixed", action="store_false", default=None,
                   help="with --n-factors, skip parallel analysis (no curve on the scree plot; saves its permutations)")
    _force_option(f)
    f.set_defaults(func=_cmd_factors)

    s = sub.add_parser("score", help="score completions on a value system (0-6 per dimension and subdimension)")
    s.add_argument("input")
    s.add_argument("--system", required=True, help="valuelex | schwartz | mft | path to a taxonomy YAML")
    s.add_argument("--scorer", choices=["embedding", "llm"], default="embedding")
    s.add_argument("--judge", default=None, help="LiteLLM model id of the judge (scorer llm)")
    s.add_argument("-o", "--output", required=True)
    _judge_options(s)
    s.set_defaults(func=_cmd_score)

    rp = sub.add_parser("report", help="HTML report of a run dir, viewable offline")
    rp.add_argument("run_dir")
    rp.set_defaults(func=_cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Every line printed, a traceback included, passes the scrubber (`scrub`): a provider may echo a key in an
    error that ends up in a message."""
    from .scrub import ScrubbingStream

    configure_env()
    out, err_stream = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbingStream(out), ScrubbingStream(err_stream)
    try:
        return _main(argv)
    except BaseException:  # noqa: BLE001 - printed (scrubbed) as Python would, with its exit code
        import traceback

        exc = sys.exc_info()[1]
        if isinstance(exc, SystemExit):
            raise
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err_stream


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"valuelex: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("valuelex: interrupted; everything stored so far is kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
