#!/usr/bin/env python3
"""Utility of the research desk's differentially private answers, measured (issue 13).

Generates a labour-market population, imports it, then runs a benign workload of realistic queries
(at least 60) under one project with the default budget, through the `iris` binary exactly as an
operator's `iris research --project P --format json` would. The truth of every cell is computed by the
operator's own exact SQL (`iris sql`) on the same store. Reports:

- the median relative error of released person counts on cells of >= 100 persons;
- the median relative error of released wage medians on cells of >= 100 persons;
- how many queries of the workload the default budget answered, and how many were refused;
- rho spent per query.

Usage: python3 benches/research_utility.py [--iris target/release/iris] [--persons 20000] [--out FILE]
It appends its figures to benches/RESULTS.md under a dated heading when --results is given.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = "LM-2025-01"
AGE_CLASS = (
    "CASE WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 25 THEN '15-24' "
    "WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 35 THEN '25-34' "
    "WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 45 THEN '35-44' "
    "WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 55 THEN '45-54' "
    "WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 65 THEN '55-64' ELSE '65+' END"
)


def run(iris, data, *args):
    out = subprocess.run([iris, "--data", data, *args], capture_output=True, text=True)
    return out


def workload():
    """(table, dims, filter, with_median) — a researcher's day of questions."""
    q = []
    last = "quarter = '2025-Q4'"
    for dims in [["region"], ["sector"], ["gender"], ["age_class"], ["worker_class"],
                 ["region", "gender"], ["sector", "gender"], ["age_class", "gender"],
                 ["region", "worker_class"], ["joint_committee"], ["region", "age_class"],
                 ["sector", "region"], ["nace"], ["arrondissement"]]:
        q.append(("declarations", dims, last, False))
    for dims in [["quarter"], ["quarter", "region"], ["quarter", "gender"], ["quarter", "sector"]]:
        q.append(("declarations", dims, None, False))
    for dims in [["region"], ["gender"], ["age_class"], ["sector"], ["worker_class"],
                 ["region", "gender"], ["age_class", "gender"], ["sector", "gender"]]:
        q.append(("declarations", dims, last, True))
    for quarter in ["2025-Q1", "2025-Q2", "2025-Q3", "2024-Q4"]:
        q.append(("declarations", ["region"], f"quarter = '{quarter}'", True))
        q.append(("declarations", ["sector"], f"quarter = '{quarter}'", False))
    for dims in [["quarter"], ["kind"], ["quarter", "kind"], ["region"], ["sector"],
                 ["gender", "kind"], ["age_class"], ["quarter", "region"]]:
        q.append(("relations", dims, None, False))
    for dims in [["position"], ["position", "region"], ["position", "gender"],
                 ["position", "age_class"], ["region", "gender"], ["arrondissement"],
                 ["age_class", "gender"], ["region"]]:
        q.append(("positions", dims, last, False))
    for dims in [["quarter", "position"], ["quarter", "region"]]:
        q.append(("positions", dims, None, False))
    for f in ["fte >= 1", "worker_class = 'white'", "region = 'VLA'", "gender = 'F'"]:
        q.append(("declarations", ["sector"], f"{last} AND {f}", False))
    for quarter in ["2024-Q1", "2024-Q2", "2024-Q3", "2025-Q1"]:
        q.append(("positions", ["position"], f"quarter = '{quarter}'", False))
    for f in ["position = 'UNE'", "position = 'SAL'"]:
        q.append(("positions", ["region", "age_class"], f"{last} AND {f}", False))
    return q


def unit(table):
    return "person" if table == "positions" else "worker"


def sql_of(table, dims, where, median):
    lead = ", ".join(dims) + ", " if dims else ""
    extra = ", MEDIAN(wage) AS median_wage" if median else ""
    w = f" WHERE {where}" if where else ""
    g = f" GROUP BY {', '.join(dims)}" if dims else ""
    return f"SELECT {lead}COUNT(DISTINCT {unit(table)}) AS persons{extra} FROM {table}{w}{g}"


def truth(iris, data, table, dims, where, median):
    cols = [f"COALESCE(CAST({d} AS VARCHAR), '(none)') AS d{i}" for i, d in enumerate(dims)]
    cols.append(f"COUNT(DISTINCT {unit(table)}) AS n")
    if median:
        cols.append("median(LEAST(GREATEST(wage, 0.0), 60000.0)) AS med")
    w = f" WHERE {where}" if where else ""
    g = f" GROUP BY {', '.join(dims)}" if dims else ""
    sql = f"SELECT {', '.join(cols)} FROM (SELECT *, {AGE_CLASS} AS age_class FROM {table}) AS t{w}{g}"
    out = run(iris, data, "sql", "--format", "json", sql)
    if out.returncode != 0:
        sys.exit(f"truth query failed: {sql}\n{out.stderr}")
    rows = json.loads(out.stdout)
    if isinstance(rows, dict):
        rows = rows.get("rows", [])
    return {tuple(r.get(f"d{i}") for i in range(len(dims))): r for r in rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iris", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "iris"))
    ap.add_argument("--persons", type=int, default=20000)
    ap.add_argument("--results", action="store_true", help="append the figures to benches/RESULTS.md")
    args = ap.parse_args()
    iris = os.path.abspath(args.iris)
    tmp = tempfile.mkdtemp(prefix="iris-utility-")
    data = os.path.join(tmp, "data")
    try:
        t0 = time.time()
        for step in (["keygen", "--id", "k1"],
                     ["labour", "gen", "--persons", str(args.persons), "--out", os.path.join(tmp, "gen")],
                     ["labour", "import", os.path.join(tmp, "gen")]):
            out = run(iris, data, *step)
            if out.returncode != 0:
                sys.exit(f"{step}: {out.stderr}")
        shutil.copytree(os.path.join(REPO, "data-samples", "access"), os.path.join(data, "access"))
        print(f"population of {args.persons} persons imported in {time.time() - t0:.1f} s", file=sys.stderr)
        work = workload()
        count_err, median_err, spent = [], [], []
        answered = refused_budget = refused_shape = 0
        for table, dims, where, median in work:
            sql = sql_of(table, dims, where, median)
            out = run(iris, data, "research", "--project", PROJECT, "--format", "json", sql)
            if out.returncode != 0:
                if "privacy budget" in out.stderr:
                    refused_budget += 1
                else:
                    refused_shape += 1
                    print(f"refused: {sql}\n  {out.stderr.strip()}", file=sys.stderr)
                continue
            answered += 1
            a = json.loads(out.stdout)
            spent.append(a["privacy"]["rho_query"])
            exact = truth(iris, data, table, dims, where, median)
            d = len(dims)
            for row, margin in zip(a["rows"], a["margin"]):
                if margin:
                    continue
                t = exact.get(tuple(row[:d]))
                if not t or t["n"] < 100:
                    continue
                if isinstance(row[d], (int, float)):
                    count_err.append(abs(row[d] - t["n"]) / t["n"])
                if median and isinstance(row[d + 1], (int, float)) and t.get("med"):
                    median_err.append(abs(row[d + 1] - t["med"]) / t["med"])
        left = json.loads(run(iris, data, "research", "--project", PROJECT, "--format", "json",
                              "SELECT COUNT(*) AS n FROM positions WHERE quarter = '2025-Q4'").stdout or "{}")
        figures = {
            "persons": args.persons,
            "queries": len(work),
            "answered": answered,
            "refused_budget": refused_budget,
            "refused_shape": refused_shape,
            "count_cells": len(count_err),
            "count_median_rel_err": statistics.median(count_err) if count_err else None,
            "median_cells": len(median_err),
            "median_median_rel_err": statistics.median(median_err) if median_err else None,
            "rho_spent": sum(spent),
            "rho_per_query_median": statistics.median(spent) if spent else None,
            "rho_left_after": left.get("privacy", {}).get("rho_left"),
        }
        print(json.dumps(figures, indent=2))
        if args.results:
            lines = [
                "",
                f"## Research utility (differential privacy), {time.strftime('%Y-%m-%d')}",
                "",
                f"`python3 benches/research_utility.py --persons {args.persons}` — default budget of project {PROJECT}.",
                "",
                "| measure | value | target |",
                "|---|---:|---|",
                f"| benign queries in the workload | {len(work)} | ≥ 60 |",
                f"| answered within the default budget | {answered} | ≥ 60 |",
                f"| refused (shape / budget) | {refused_shape} / {refused_budget} | ≤ 5 % |",
                f"| median relative error, person counts, cells ≥ 100 persons ({len(count_err)} cells) | {100 * (figures['count_median_rel_err'] or 0):.2f} % | ≤ 5 % |",
                f"| median relative error, wage medians, cells ≥ 100 persons ({len(median_err)} cells) | {100 * (figures['median_median_rel_err'] or 0):.2f} % | ≤ 5 % |",
                f"| ρ spent by the workload (median per query) | {sum(spent):.3f} ({figures['rho_per_query_median'] or 0:.3f}) | |",
                "",
            ]
            with open(os.path.join(REPO, "benches", "RESULTS.md"), "a") as f:
                f.write("\n".join(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
