"""`valuelex`: the command line (DESIGN.md, "CLI"). Heavy libraries are imported inside each verb, so that
`valuelex --help` answers at once.

Bad input is one line on stderr and exit code 2; nothing already in a run dir is overwritten or lost.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .errors import UserError

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage first otherwise)
        raise UserError(f"{self.prog}: {message}")


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models

    return list_models(args.params, timeout=args.timeout)


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import run

    return run(params_path=args.params, steps=args.steps, run_dir=args.run_dir, dry_run=args.dry_run,
               report=not args.no_report)


def _judge_endpoint(args: argparse.Namespace, judge: str | None) -> dict | None:
    """`--api-base` / `--api-key-env` as a deployment; the judge id is checked before any input is read."""
    if not judge:
        if args.api_base or args.api_key_env or args.cache:
            raise UserError("--cache, --api-base and --api-key-env need a judge (--judge MODEL)")
        return None
    from .llm import check_model_id  # registers the embedded models with LiteLLM
    from .roles import cli_deployment

    check_model_id(judge)
    return cli_deployment(args.api_base, args.api_key_env)


def _cmd_extract(args: argparse.Namespace) -> int:
    from .extraction import extract_file

    deployment = _judge_endpoint(args, args.judge)
    n = extract_file(args.input, args.output, model=args.judge, cache=args.cache, deployment=deployment)
    print(f"wrote {n} lines to {args.output}", file=sys.stderr)
    return 0


def _cmd_factors(args: argparse.Namespace) -> int:
    from .factors import run_factors_cli

    opts = {k: v for k, v in dict(n_factors=args.n_factors, k_rule=args.k_rule, rotation=args.rotation,
                                  method=args.method, corr=args.corr, threshold=args.threshold, seed=args.seed).items()
            if v is not None}
    run_factors_cli(args.matrix, args.output, **opts)
    print(f"wrote {args.output}/factors.json, loadings.csv, scree.html", file=sys.stderr)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .params import DEFAULT_JUDGE
    from .scoring import score_file

    if args.judge and args.scorer != "llm":
        raise UserError("--judge only applies to --scorer llm")
    deployment = _judge_endpoint(args, (args.judge or DEFAULT_JUDGE) if args.scorer == "llm" else None)
    score_file(args.input, system=args.system, scorer=args.scorer, judge=args.judge, out_csv=args.output,
               cache=args.cache, deployment=deployment)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, shareable_report

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
    f.add_argument("--n-factors", type=int, default=None)
    f.add_argument("--k-rule", choices=["parallel", "kaiser"], default=None)
    f.add_argument("--rotation", choices=["oblimin", "promax", "varimax", "none"], default=None)
    f.add_argument("--method", choices=["minres", "ml", "principal"], default=None)
    f.add_argument("--corr", choices=["pearson", "tetrachoric"], default=None)
    f.add_argument("--threshold", type=float, default=None)
    f.add_argument("--seed", type=int, default=None)
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
