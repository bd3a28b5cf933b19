"""Accuracy of the offline (no model) post-call analyzer on the labelled transcript sets.

    .venv/bin/python bench/analyzer_accuracy.py [--json bench/results/analyzer_accuracy.json]
        [--tenants-dir tenants] [--data-dir tests/data/transcripts] [--show-errors]

For each ``tests/data/transcripts/<tenant>.jsonl`` (one labelled call per line: ``transcript``,
``now``, ``expected: {call_type, details}``) it runs ``analyze_offline`` and reports:

- call-type accuracy;
- per field (by field name, over all call types of the tenant): precision = correct values /
  values the analyzer gave, recall = correct values / values the label has. "Correct" is an
  exact match after normalisation (see :func:`normalise`). For free-text fields (string, list)
  a lenient figure is also given: an answer counts if its words overlap the label's by half or
  more (Jaccard on word sets; lists item by item);
- the same figures pooled over all fields and all tenants.

Side by side, in the same run, a trivial baseline: "always the set's most common call type"
(which peeks at the labels, so it is generous) with "no details" (precision undefined, recall 0).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))
sys.path.insert(0, str(REPO_ROOT))

from bench._common import git_commit  # noqa: E402

from receptionist.language.hindi import transliterate  # noqa: E402
from receptionist.postcall.analyzers.offline import analyze_offline  # noqa: E402
from receptionist.postcall.analyzers.schema import validate_details  # noqa: E402
from receptionist.tenants.loading import load_tenant  # noqa: E402
from receptionist.tenants.model import Tenant  # noqa: E402

TENANTS = ("bakery", "saloon", "clinic")


# --------------------------------------------------------------------------- normalisation


def _norm_text(value: str) -> str:
    s = transliterate(value).lower()
    s = s.replace("+", " and ").replace("&", " and ")
    s = re.sub(r"\bdr\b\.?", "dr", s)
    s = re.sub(r"[^\w\s]", " ", s)
    return " ".join(s.split())


def normalise(type_name: str, value: Any) -> Any:
    """Canonical form of a detail value for comparison."""
    if value is None:
        return None
    if type_name == "phone":
        digits = re.sub(r"\D", "", str(value))
        return digits[-10:]
    if type_name in ("number", "integer"):
        try:
            return round(float(value), 3)
        except (TypeError, ValueError):
            return str(value)
    if type_name == "boolean":
        return bool(value) if isinstance(value, bool) else str(value).lower()
    if type_name in ("date", "time", "datetime"):
        return str(value).strip()
    if type_name == "list":
        items = value if isinstance(value, list) else [value]
        return tuple(sorted(_norm_text(str(v)) for v in items))
    return _norm_text(str(value))


def _jaccard(a: str, b: str) -> float:
    wa, wb = set(a.split()), set(b.split())
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def lenient_equal(type_name: str, got: Any, want: Any) -> bool:
    if got == want:
        return True
    if type_name == "list":
        if not got or not want:
            return False
        matched = sum(1 for w in want if any(_jaccard(g, w) >= 0.5 for g in got))
        return matched == len(want) and len(got) == len(want)
    if type_name == "string":
        return _jaccard(str(got), str(want)) >= 0.5
    return False


# --------------------------------------------------------------------------- scoring


class FieldCounts:
    def __init__(self) -> None:
        self.predicted = 0
        self.expected = 0
        self.correct = 0
        self.correct_lenient = 0

    def add(self, other: FieldCounts) -> None:
        self.predicted += other.predicted
        self.expected += other.expected
        self.correct += other.correct
        self.correct_lenient += other.correct_lenient

    def figures(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 3) if b else None

        return {
            "predicted": self.predicted,
            "expected": self.expected,
            "correct": self.correct,
            "precision": ratio(self.correct, self.predicted),
            "recall": ratio(self.correct, self.expected),
            "precision_lenient": ratio(self.correct_lenient, self.predicted),
            "recall_lenient": ratio(self.correct_lenient, self.expected),
        }


@dataclass
class Pooled:
    fields: FieldCounts = field(default_factory=FieldCounts)
    correct: int = 0
    calls: int = 0


def _field_types(tenant: Tenant) -> dict[str, str]:
    types: dict[str, str] = {}
    for ct in tenant.call_types:
        for f in ct.fields:
            types.setdefault(f.name, f.type)
    return types


def score(
    tenant: Tenant,
    records: list[dict[str, Any]],
    predictions: list[tuple[str, dict[str, Any]]],
) -> dict[str, Any]:
    types = _field_types(tenant)
    per_field: dict[str, FieldCounts] = {}
    correct_type = 0
    confusion: Counter[str] = Counter()
    for rec, (got_type, got_details) in zip(records, predictions, strict=True):
        want_type = rec["expected"]["call_type"]
        want = rec["expected"]["details"]
        if got_type == want_type:
            correct_type += 1
        else:
            confusion[f"{want_type} -> {got_type}"] += 1
        for name in set(want) | set(got_details):
            ftype = types.get(name, "string")
            c = per_field.setdefault(name, FieldCounts())
            g = normalise(ftype, got_details.get(name))
            w = normalise(ftype, want.get(name))
            if g is not None:
                c.predicted += 1
            if w is not None:
                c.expected += 1
            if g is not None and w is not None:
                if g == w:
                    c.correct += 1
                    c.correct_lenient += 1
                elif lenient_equal(ftype, g, w):
                    c.correct_lenient += 1
    total = FieldCounts()
    for c in per_field.values():
        total.add(c)
    n = len(records)
    return {
        "calls": n,
        "call_type_accuracy": round(correct_type / n, 3) if n else None,
        "call_type_correct": correct_type,
        "call_type_confusions": dict(confusion.most_common()),
        "fields": {k: per_field[k].figures() for k in sorted(per_field)},
        "details_overall": total.figures(),
        "_total": total,
    }


def load_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run(tenants_dir: Path, data_dir: Path, show_errors: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"offline": {}, "baseline": {}}
    pooled = {"offline": Pooled(), "baseline": Pooled()}
    label_problems: list[str] = []
    elapsed = 0.0
    for tid in TENANTS:
        path = data_dir / f"{tid}.jsonl"
        if not path.is_file():
            continue
        tenant, problems = load_tenant(tenants_dir, tid)
        if tenant is None:
            raise SystemExit(f"tenant {tid} does not load: {problems}")
        records = load_records(path)
        for rec in records:
            exp = rec["expected"]
            for p in validate_details(tenant, exp["call_type"], exp["details"]):
                label_problems.append(f"{rec['id']}: {p}")
        preds = []
        t0 = time.perf_counter()
        for rec in records:
            a = analyze_offline(tenant, rec["transcript"], now=datetime.fromisoformat(rec["now"]))
            preds.append((a.call_type, a.details))
        elapsed += time.perf_counter() - t0
        if show_errors:
            for rec, (ct, det) in zip(records, preds, strict=True):
                exp = rec["expected"]
                if ct != exp["call_type"] or det != exp["details"]:
                    print(f"--- {rec['id']}: want {exp['call_type']} got {ct}")
                    for k in sorted(set(det) | set(exp["details"])):
                        if det.get(k) != exp["details"].get(k):
                            print(f"    {k}: want {exp['details'].get(k)!r} got {det.get(k)!r}")
        majority = Counter(r["expected"]["call_type"] for r in records).most_common(1)[0][0]
        base_preds: list[tuple[str, dict[str, Any]]] = [(majority, {}) for _ in records]
        for kind, pr in (("offline", preds), ("baseline", base_preds)):
            s = score(tenant, records, pr)
            pooled[kind].fields.add(s.pop("_total"))
            pooled[kind].correct += s["call_type_correct"]
            pooled[kind].calls += s["calls"]
            if kind == "baseline":
                s["description"] = f"always {majority!r}, no details"
            results[kind][tid] = s
    for kind, pool in pooled.items():
        results[kind]["overall"] = {
            "calls": pool.calls,
            "call_type_accuracy": round(pool.correct / pool.calls, 3) if pool.calls else None,
            "details_overall": pool.fields.figures(),
        }
    results["label_problems"] = label_problems
    results["offline_ms_per_call"] = round(
        elapsed * 1000 / max(1, results["offline"]["overall"]["calls"]), 3
    )
    return results


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.3f}"


def print_report(results: dict[str, Any]) -> None:
    off, base = results["offline"], results["baseline"]
    for tid in [*TENANTS, "overall"]:
        if tid not in off:
            continue
        o, b = off[tid], base[tid]
        print(f"\n== {tid} ({o['calls']} calls)")
        print(
            f"call type accuracy: offline {_fmt(o['call_type_accuracy'])}   "
            f"baseline {_fmt(b['call_type_accuracy'])}"
            + (f" ({b['description']})" if "description" in b else "")
        )
        if "fields" in o:
            print(f"  {'field':<20} {'P':>5} {'R':>5}  {'P~':>5} {'R~':>5}  (pred/exp/correct)")
            for name, f in o["fields"].items():
                print(
                    f"  {name:<20} {_fmt(f['precision'])} {_fmt(f['recall'])}  "
                    f"{_fmt(f['precision_lenient'])} {_fmt(f['recall_lenient'])}  "
                    f"({f['predicted']}/{f['expected']}/{f['correct']})"
                )
        od, bd = o["details_overall"], b["details_overall"]
        print(
            f"details: offline P {_fmt(od['precision'])} R {_fmt(od['recall'])} "
            f"(lenient P {_fmt(od['precision_lenient'])} R {_fmt(od['recall_lenient'])})   "
            f"baseline P {_fmt(bd['precision'])} R {_fmt(bd['recall'])}"
        )
        if o.get("call_type_confusions"):
            print(f"confusions: {o['call_type_confusions']}")
    if results["label_problems"]:
        print("\nLABEL PROBLEMS:", *results["label_problems"], sep="\n  ")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/analyzer_accuracy.py", description=__doc__)
    ap.add_argument("--json", default=str(REPO_ROOT / "bench/results/analyzer_accuracy.json"))
    ap.add_argument("--tenants-dir", default=str(REPO_ROOT / "tenants"))
    ap.add_argument("--data-dir", default=str(REPO_ROOT / "tests/data/transcripts"))
    ap.add_argument("--show-errors", action="store_true", help="print every wrong answer")
    args = ap.parse_args(argv)
    import os
    import platform

    results = run(Path(args.tenants_dir), Path(args.data_dir), args.show_errors)
    print_report(results)
    out = {
        "bench": "analyzer_accuracy",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "nproc": os.cpu_count(),
        },
        "git_commit": git_commit(),
        "parameters": {"tenants_dir": args.tenants_dir, "data_dir": args.data_dir},
        "method": (
            "exact match after normalisation (phone: last 10 digits; text: Devanagari "
            "transliterated, lower-case, punctuation removed, '+'/'&' -> 'and'; list: sorted "
            "normalised items; number: float). Lenient (~): free-text word-set Jaccard >= 0.5. "
            "Baseline: the set's most common call type (peeks at labels) and no details."
        ),
        "figures": results,
    }
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
