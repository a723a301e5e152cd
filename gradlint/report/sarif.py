"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning (docs/output.md).

One run whose driver lists every rule (documentation from the rule's README.md) and one result
per diagnostic, GL9xx failures included, located by a repository-relative URI under
``%SRCROOT%`` (a file name that is not UTF-8 percent-encodes its bytes there, and shows them as
``\\xe9`` escapes in message texts). Valid against the OASIS schema
(tests/data/sarif-schema-2.1.0.json).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from gradlint.core.repo_paths import file_uri, relative_uri, repo_relative, repo_root
from gradlint.core.surrogates import escape_json_surrogates
from gradlint.core.values import Diagnostic, Location, Report
from gradlint.core.version import __version__
from gradlint.lint.registry import discover_rules
from gradlint.report.emitter import Settings
from gradlint.report.json import summary_json

SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
              "sarif-schema-2.1.0.json")
INFORMATION_URI = "https://github.com/gradlint/gradlint"
SRCROOT = "%SRCROOT%"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def readme_section(readme: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading, stripped."""
    lines = readme.splitlines()
    out: list[str] | None = None
    for line in lines:
        if out is None:
            if line.strip().lower() == f"## {heading}".lower():
                out = []
            continue
        if re.match(r"#{1,2} ", line):
            break
        out.append(line)
    return "\n".join(out or []).strip()


def _tags(code: str, name: str) -> list[str]:
    kind = "tool-failure" if code.startswith("GL9") else "gradient-flow"
    return ["pytorch", kind, name]


def rule_descriptor(info: Any) -> dict[str, Any]:
    rule = info.rule
    readme = info.readme
    full = readme_section(readme, "What it does") or rule.summary
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary or rule.name},
        "fullDescription": {"text": full},
        "help": {"text": readme, "markdown": readme},
        "defaultConfiguration": {"level": LEVELS.get(rule.severity, "warning"),
                                 "enabled": bool(rule.enabled_by_default)},
        "properties": {"tags": _tags(rule.code, rule.name)},
    }


def region(loc: Location) -> dict[str, Any]:
    """startLine/startColumn/endLine/endColumn; ``endColumn`` is exclusive (as in Location)."""
    start = max(1, loc.line or 1)
    end_line = max(start, loc.end_line or start)
    out: dict[str, Any] = {"startLine": start}
    col = loc.col if loc.col and loc.col >= 1 else None
    if col is not None:
        out["startColumn"] = col
    out["endLine"] = end_line
    if loc.end_col is not None and loc.end_col >= 1:
        end_col = loc.end_col
        if end_line == start and col is not None:
            end_col = max(end_col, col + 1)
        out["endColumn"] = end_col
    return out


def physical_location(loc: Location, root: str) -> dict[str, Any]:
    rel = repo_relative(loc.file, root)
    artifact: dict[str, Any] = ({"uri": relative_uri(rel), "uriBaseId": SRCROOT}
                                if rel is not None else {"uri": file_uri(loc.file)})
    return {"artifactLocation": artifact, "region": region(loc)}


def result(d: Diagnostic, index: dict[str, int], root: str) -> dict[str, Any]:
    text = d.message if d.fix is None else f"{d.message}\nhelp: {d.fix.message}"
    out: dict[str, Any] = {"ruleId": d.code}
    if d.code in index:
        out["ruleIndex"] = index[d.code]
    out["level"] = LEVELS.get(d.severity, "warning")
    out["message"] = {"text": text}
    out["locations"] = [{"physicalLocation": physical_location(d.location, root)}]
    if d.related:
        out["relatedLocations"] = [
            {"id": i, "physicalLocation": physical_location(r, root),
             "message": {"text": f"defined at {r.file}:{r.line}"}}
            for i, r in enumerate(d.related, start=1)]
    props: dict[str, Any] = {}
    if d.target:
        props["target"] = d.target
    if d.module:
        props["module"] = d.module
    if props:
        out["properties"] = props
    return out


def to_sarif(report: Report, diagnostics: Sequence[Diagnostic]) -> str:
    root = repo_root()
    infos = discover_rules()
    index = {info.rule.code: i for i, info in enumerate(infos)}
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "gradlint",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": [rule_descriptor(info) for info in infos],
        }},
        "originalUriBaseIds": {SRCROOT: {"uri": file_uri(root)}},
        "results": [result(d, index, root) for d in diagnostics],
        "properties": {"summary": summary_json(report, diagnostics)},  # as in --format json
    }
    doc = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return escape_json_surrogates(json.dumps(doc, indent=2, ensure_ascii=False),
                                  ensure_ascii=False)


def emit(report: Report, diagnostics: Sequence[Diagnostic], settings: Settings) -> str:
    return to_sarif(report, diagnostics) + "\n"
