"""Time the embedded LLM server: GGUF conversion (first time only), start-up to a healthy /health,
and generation speed (tokens/s) through the openai client, and write reports/bench/llm.json.

    .venv/bin/python -m bench.llm [--tokens 48] [--requests 3] [--base-url URL --model NAME]
    .venv/bin/python -m bench.llm --grounding [--resamples 500]

With --base-url the same requests go to another OpenAI-compatible endpoint (no server is started).
The cache is bypassed: every request is generated.

--grounding starts no LLM: it scores the grounder on the labelled phrases (threshold chosen on validation,
test reported) and repeats the choice on bootstrap resamples of the validation phrases, to show how much the
chosen threshold and the test accuracy it gives depend on which validation phrases were written
(reports/bench/llm_grounding.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from phenoface.benchmarks import results_path
from phenoface.config import write_json


def grounding(resamples: int, out: Path) -> int:
    import numpy as np

    from phenoface.llm.agreement import evaluate_grounding, threshold_stability

    t = time.perf_counter()
    ev = evaluate_grounding("auto")
    stab = threshold_stability(ev["table"], n=resamples)
    q = lambda col: [round(float(x), 4) for x in np.quantile(stab[col], [0.05, 0.5, 0.95])]
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "metrics": ev["metrics"],
              "resamples": resamples, "threshold_q05_q50_q95": q("threshold"),
              "test_accuracy_q05_q50_q95": q("test_accuracy"), "seconds": round(time.perf_counter() - t, 2)}
    write_json(out, result)
    print(json.dumps(result, indent=2))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=48, help="max tokens per reply")
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--base-url", default="embedded")
    ap.add_argument("--model", default="")
    ap.add_argument("--out", type=Path, default=results_path("bench", "llm"))
    ap.add_argument("--grounding", action="store_true", help="score the grounder on the labelled phrases instead")
    ap.add_argument("--resamples", type=int, default=500, help="bootstrap resamples of the validation phrases")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.grounding:
        out = args.out if args.out != ap.get_default("out") else args.out.with_name("llm_grounding.json")
        return grounding(args.resamples, out)
    from phenoface.llm import feature_messages, open_llm
    from phenoface.llm.server import convert_gguf

    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "max_tokens": args.tokens}
    if args.base_url == "embedded":
        t = time.perf_counter()
        convert_gguf()
        result["convert_or_cached_seconds"] = round(time.perf_counter() - t, 2)
    llm = open_llm(args.base_url, args.model, cache_dir=None, timeout=600)
    result["model_id"] = llm.model_id
    runs = []
    with llm:
        t = time.perf_counter()
        llm._ensure_client()
        result["server_start_seconds"] = round(llm.server.startup_seconds, 2) if llm.server else None
        result["ready_seconds"] = round(time.perf_counter() - t, 2)
        diseases = ["Down syndrome", "Williams syndrome", "Noonan syndrome", "Kabuki syndrome", "Angelman syndrome"]
        for i in range(args.requests):
            msgs = feature_messages(diseases[i % len(diseases)], ["child", "adult", "infant"][i % 3])
            r = llm.chat(msgs, max_tokens=args.tokens)
            runs.append({"seconds": round(r.seconds, 2), "completion_tokens": r.completion_tokens,
                         "prompt_tokens": r.prompt_tokens, "tokens_per_s": round((r.completion_tokens or 0) / r.seconds, 2)})
            print(runs[-1], flush=True)
    tokens = sum(r["completion_tokens"] or 0 for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    result.update(requests=runs, tokens_per_s=round(tokens / seconds, 2) if seconds else None,
                  load_average=os.getloadavg())
    write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
