"""Every AQL text in `src/` takes its values through bind parameters.

AQL strings must be plain constants: never an f-string, a `%`/`+` composition or a `.format()`,
so no value can ever be spliced into a query. Collections are bind parameters too (`@@coll`).
The store's list queries are assembled at import from constant fragments, so the assembled
texts are checked as well, as the module holds them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import queue_manager
from queue_manager.adapters.arango_store import queries

SRC = Path(queue_manager.__file__).parent

AQL_KEYWORDS = re.compile(
    r"\bFOR\s+\w+\s+IN\b|\bFILTER\b|\bRETURN\b|\bUPDATE\b|\bINSERT\b|\bREPLACE\b|\bREMOVE\b"
    r"|\bUPSERT\b|\bCOLLECT\b"
)
# SQL shares some keywords; these forms exist only in SQL.
SQL_ONLY = re.compile(
    r"\bSELECT\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\bCREATE\s+(TABLE|INDEX)\b"
    r"|\bPRAGMA\b|\bBEGIN\b|\bCOMMIT\b|\bROLLBACK\b"
)
# A collection operand: `FOR x IN <coll>`, `INSERT … INTO <coll>`, `UPDATE … IN <coll>`…
# (`COLLECT … INTO var` / `WITH COUNT INTO var` name variables, not collections.)
COLLECTION_OPERAND = re.compile(
    r"\bFOR\s+\w+\s+IN\s+([A-Za-z_@][\w@]*)"
    r"|\b(?:INSERT|UPDATE|REPLACE|REMOVE|UPSERT)\b.*?\b(?:IN|INTO)\s+([A-Za-z_@][\w@]*)",
    re.DOTALL,
)
STRING_LITERAL = re.compile(r"\"[^\"]*\"|'[^']*'")


def looks_like_aql(text: str) -> bool:
    return bool(AQL_KEYWORDS.search(text)) and not SQL_ONLY.search(text)


@dataclass
class Finding:
    where: str
    text: str


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def text_violations(text: str, where: str) -> list[str]:
    """What is wrong with one AQL text, wherever it came from."""
    bad = []
    for match in COLLECTION_OPERAND.finditer(text):
        operand = match.group(1) or match.group(2)
        if not operand.startswith("@"):
            bad.append(f"{where}: collection `{operand}` named in the text, not as @@param")
    if STRING_LITERAL.search(text):
        bad.append(f"{where}: a string value written into the AQL text")
    return bad


def scan(source: str, filename: str) -> tuple[list[Finding], list[str]]:
    """(AQL constants found, violations) for one module's source."""
    tree = ast.parse(source, filename)
    skip = _docstrings(tree)
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    found: list[Finding] = []
    bad: list[str] = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if looks_like_aql(text):
                bad.append(f"{where}: AQL built with an f-string")
            continue
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skip or not looks_like_aql(node.value):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.JoinedStr):
            continue  # reported above
        found.append(Finding(where, node.value))
        bad += text_violations(node.value, where)
        if isinstance(parent, ast.BinOp):
            bad.append(f"{where}: AQL composed with an operator ({type(parent.op).__name__})")
        if isinstance(parent, ast.Attribute) and parent.attr in (
            "format",
            "format_map",
            "replace",
            "join",
        ):
            bad.append(f"{where}: AQL passed through .{parent.attr}()")
    # Compositions whose parts are AQL held in names (`_PAGE + extra`, `"%s" % q`).
    aql_names = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and looks_like_aql(node.value.value)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.BinOp | ast.AugAssign):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if names & aql_names and not isinstance(getattr(node, "op", None), ast.BitOr):
                bad.append(f"{where}: AQL constant {sorted(names & aql_names)} composed")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("format", "format_map")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in aql_names
        ):
            bad.append(f"{where}: AQL constant {node.func.value.id} formatted")
    return found, bad


def scan_tree() -> tuple[list[Finding], list[str]]:
    found: list[Finding] = []
    bad: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        f, b = scan(path.read_text(), str(path.relative_to(SRC.parent)))
        found += f
        bad += b
    return found, bad


def test_every_aql_string_in_src_is_a_constant_with_bind_parameters() -> None:
    found, bad = scan_tree()
    assert bad == []
    # the scanner does see the store's queries (it would pass vacuously otherwise)
    in_store = [f for f in found if f.where.startswith("queue_manager/adapters/arango_store/")]
    assert len(in_store) >= 8, [f.where for f in found]
    for finding in in_store:
        if "FOR " in finding.text:
            assert "@@coll" in finding.text, finding.where


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ('q = f"FOR d IN queue_state FILTER d.status == {status} RETURN d"', "f-string"),
        ('q = "FOR d IN @@coll FILTER d.symbol == \'" + symbol + "\' RETURN d"', "operator"),
        ('q = "FOR d IN @@coll FILTER d.symbol == %s RETURN d" % symbol', "operator"),
        ('q = "FOR d IN @@coll FILTER d.x == {} RETURN d".format(x)', ".format"),
        ('Q = "FOR d IN @@coll RETURN d"\nq = Q + " LIMIT 10"', "composed"),
        ('q = "FOR d IN queue_state RETURN d"', "collection `queue_state`"),
        ('q = "INSERT @doc INTO queue_state"', "collection `queue_state`"),
        ('q = "FOR d IN @@c UPDATE d WITH @p IN queue_state"', "collection `queue_state`"),
        ("q = \"FOR d IN @@coll FILTER d.status == 'error' RETURN d\"", "string value"),
    ],
)
def test_the_scanner_catches_spliced_values(source: str, complaint: str) -> None:
    _, bad = scan(source, "sample.py")
    assert any(complaint in b for b in bad), bad


def test_sql_is_not_mistaken_for_aql() -> None:
    found, bad = scan('q = "UPDATE queue_state SET status = ? WHERE id = ?"', "sample.py")
    assert (found, bad) == ([], [])


# -- the assembled queries, as the store module holds them -----------------------------------


def _assembled() -> dict[str, str]:
    texts = {f"PAGE_QUERIES[{key}]": text for key, text in queries.PAGE_QUERIES.items()}
    for name in dir(queries):
        value = getattr(queries, name)
        if isinstance(value, str) and looks_like_aql(value):
            texts[name] = value
    return texts


def test_assembled_queries_keep_the_rules() -> None:
    texts = _assembled()
    # one distinct list query per combination of filters, plus the others
    assert len(set(queries.PAGE_QUERIES.values())) == 2 ** len(queries.PAGE_FILTERS)
    assert {"LIST_ACTIVE", "COUNT_BY_STATUS"} <= set(texts)
    for where, text in texts.items():
        assert text_violations(text, where) == []
        if "FOR " in text:
            # over the bound collection, or over a bound list of documents to insert
            assert "FOR d IN @@coll" in text or "FOR d IN @events INSERT" in text, where
        assert "OFFSET" not in text and "fullCount" not in text, where


# -- every bind parameter a query names is supplied, and nothing else ------------------------


def _placeholders(query: str) -> set[str]:
    return {m.group(0)[1:] for m in re.finditer(r"@@?\w+", query)}


@pytest.mark.parametrize(
    "created", [(None, None), ("2024-06-01T00:00:00.000000Z", "2024-06-02T00:00:00.000000Z")]
)
@pytest.mark.parametrize("top_level", [False, True])
@pytest.mark.parametrize("id_prefix", [None, "223746ea"])
@pytest.mark.parametrize("parent", [None, "parent-id"])
@pytest.mark.parametrize("status", [None, "loading"])
@pytest.mark.parametrize("symbol", [None, "BTCUSDT"])
@pytest.mark.parametrize("after", [None, ("2024-06-01T00:00:00.000000Z", "some-id")])
def test_page_binds_exactly_what_its_query_names(
    parent: str | None,
    status: str | None,
    symbol: str | None,
    after: tuple[str, str] | None,
    id_prefix: str | None,
    top_level: bool,
    created: tuple[str | None, str | None],
) -> None:
    query, bind = queries.page(
        status=status,
        symbol=symbol,
        limit=6,
        after=after,
        parent=parent,
        id_prefix=id_prefix,
        top_level=top_level,
        created_from=created[0],
        created_to=created[1],
    )
    assert ("d.parent == null" in query) is top_level
    assert (bind.get("created_from"), bind.get("created_to")) == created
    assert _placeholders(query) == set(bind), query
    assert bind["@coll"] == queries.QUEUE_COLLECTION
    assert bind["limit"] == 6
    assert (bind.get("status"), bind.get("symbol"), bind.get("parent")) == (status, symbol, parent)
    assert bind.get("id_prefix") == id_prefix
    assert ("@status" in query, "@symbol" in query, "@parent" in query, "@id_prefix" in query) == (
        status is not None,
        symbol is not None,
        parent is not None,
        id_prefix is not None,
    )
    if after is not None:
        assert (bind["created"], bind["key"]) == after
    else:
        assert not re.search(r"@created\b", query)


def test_the_other_queries_bind_exactly_what_they_name() -> None:
    for query, bind in (queries.list_active(["pending", "loading"]), queries.count_by_status()):
        assert _placeholders(query) == set(bind), query
        assert bind["@coll"] == queries.QUEUE_COLLECTION
    busy = {"parent-id": 2}
    last = (0, "2024-06-01T00:00:00.000000Z", "some-id")
    built = (
        queries.admission_lock(),
        queries.parent_lock("parent-id"),
        queries.running_by_parent(["pending", "loading"]),
        queries.queued_next("queued", 5, busy),
        queries.queued_next("queued", 5, busy, last),
        queries.children("parent-id"),
        queries.delete_parent_locks(["a", "b"]),
        queries.schedules(),
        queries.schedule_delete("nightly"),
        queries.runs_delete("nightly"),
        queries.last_ticks(),
        queries.runs_of("nightly", None, 10),
        queries.runs_of("nightly", "2026-01-02T00:15:00.000000Z", 10),
        queries.active_runs("nightly", ["queued", "pending"]),
        queries.running_jobs(),
        queries.heartbeat(),
        queries.events_insert([{"_key": "q:1", "queue_id": "q", "seq": 1}]),
        queries.events_of("q", 0, 10),
        queries.delete_events_of(["q"]),
        queries.delete_keys_of(["q"]),
        queries.delete_ended(["finished"], "2026-01-02T00:15:00.000000Z", 0, 10),
        queries.token_by_hash("ab" * 32),
        queries.tokens(),
        queries.token_delete("ci"),
        queries.token_hash_delete("ab" * 32),
        queries.token_touch("ci", "2026-01-02T00:15:00+00:00"),
        queries.session_end({"_key": "s", "until": 1.0}),
        queries.sessions_ended(1.0),
        queries.sessions_purge(1.0),
        queries.migrate_jobs(["launching", "loading", "started"]),
        queries.migrate_token_hashes(),
    )
    for query, bind in built:
        assert _placeholders(query) == set(bind), query


def test_admission_pages_on_from_the_last_row_read() -> None:
    first, bind = queries.queued_next("queued", 5, {"p": 1})
    assert first == queries.QUEUED_NEXT and bind["busy"] == {"p": 1}
    after, bind = queries.queued_next("queued", 5, {}, (3, "2024-06-01T00:00:00.000000Z", "k"))
    assert after == queries.QUEUED_AFTER
    assert (bind["priority"], bind["created"], bind["key"]) == (
        3,
        "2024-06-01T00:00:00.000000Z",
        "k",
    )
    # a backfill's recount lock never takes the admission lock's key
    assert queries.parent_lock("admission")[1]["key"] != queries.admission_lock()[1]["key"]
