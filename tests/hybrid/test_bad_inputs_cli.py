"""Bad inputs at the command line: ``error: <message>`` on stderr and exit code 2, never a Python
traceback; bad input files name the file and line (issue #18). No model is loaded here: the
index is BM25-only, and ``hybrid index`` builds its engine through a BM25-only stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hybrid
from hybrid import HybridRetriever
from hybrid.cli import main
from hybrid.engine.retrievers import BM25Retriever
from tests._junk import odd_text

SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def bm25_engine(*_args, **_kwargs) -> HybridRetriever:
    return HybridRetriever({"bm25": BM25Retriever("whitespace")}, preset="bm25-stand-in")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    engine = bm25_engine()
    engine.add(["ocean satellite data", "defense imagery", "space economy"], ids=["a", "b", "c"])
    return engine.save(tmp_path_factory.mktemp("cli18") / "idx")


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout, stderr of ``hybrid argv`` (argparse's own exits included)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage + "error: ..." and exit code 2
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error:", "hybrid"))]
    assert lines and "error:" in lines[-1], err
    return lines[-1]


# ---------------------------------------------------------------- one test per row of the issue


def test_limit_0_is_an_error_not_one_document(tmp_path, capsys):
    docs = tmp_path / "d.jsonl"
    docs.write_text('{"id": "a", "text": "x"}\n')
    code, _, err = run(["index", str(docs), "--out", str(tmp_path / "o"), "--limit", "0"], capsys)
    assert code == 2 and "--limit" in err and "at least 1" in one_line_error(err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "content, where, says",
    [
        (b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n', 2, "not UTF-8"),
        (b'{"id": "a", "text": "ok"}\n\n{"id": "b", "text": \n', 3, "not valid JSON"),
        (b'["a", "text"]\n', 1, "JSON object"),
        (b'{"id": {"x": 1}, "text": "t"}\n', 1, "id must be"),
        (b'{"id": "a"}\n', 1, "text field"),
    ],
)
def test_bad_document_files_name_the_file_and_line(tmp_path, capsys, content, where, says):
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes(content)
    code, _, err = run(["index", str(docs), "--out", str(tmp_path / "o")], capsys)
    line = one_line_error(err)
    assert code == 2 and f"{docs}:{where}:" in line and says in line


def test_out_under_a_regular_file_is_a_clear_error(tmp_path, capsys):
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "x"}\n')
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in (blocker / "idx", blocker):
        code, _, err = run(["index", str(docs), "--out", str(out)], capsys)
        assert code == 2 and "--out" in one_line_error(err) and "file" in err


def test_config_holding_a_json_list_is_a_clear_error(tmp_path, index_dir, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text("[1, 2]")
    code, _, err = run(["search", str(index_dir), "ocean", "--config", str(cfg)], capsys)
    line = one_line_error(err)
    assert code == 2 and str(cfg) in line and "JSON object" in line
    cfg.write_bytes(b'{"method": "rrf\xff"}')
    code, _, err = run(["search", str(index_dir), "ocean", "--config", str(cfg)], capsys)
    assert code == 2 and str(cfg) in one_line_error(err)


def test_eval_on_a_missing_folder_says_so(tmp_path, capsys):
    code, _, err = run(["eval", str(tmp_path / "nope"), "--preset", "lexical"], capsys)
    line = one_line_error(err)
    assert code == 2 and "no such file or folder" in line and "nope" in line


def test_eval_qrels_that_are_not_utf8_name_file_and_line(tmp_path, capsys):
    docs, queries, qrels = tmp_path / "d.jsonl", tmp_path / "q.jsonl", tmp_path / "r.tsv"
    docs.write_text('{"_id": "d1", "text": "x"}\n')
    queries.write_text('{"_id": "q1", "text": "x"}\n')
    qrels.write_bytes(b"query-id\tcorpus-id\tscore\nq1\td\xe91\t1\n")
    argv = ["eval", str(docs), "--queries", str(queries), "--qrels", str(qrels)]
    code, _, err = run([*argv, "--preset", "lexical", "--no-cache"], capsys)
    assert code == 2 and f"{qrels}:2:" in one_line_error(err)


@pytest.mark.parametrize("option", ["--depth", "--k", "--rerank-top"])
def test_zero_counts_name_their_option(index_dir, capsys, option):
    code, _, err = run(["search", str(index_dir), "ocean", option, "0"], capsys)
    assert code == 2 and option in one_line_error(err) and "at least 1" in err


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--weight", "bm25"], "NAME=VALUE"),
        (["--weight", "bm25=x"], "not a number"),
        (["--weight", "nope=1"], "nope"),
        (["--fusion", "nope"], "nope"),
        (["--config", "/nonexistent/c.json"], "c.json"),
    ],
)
def test_search_mistakes_are_one_line(index_dir, capsys, extra, says):
    code, _, err = run(["search", str(index_dir), "ocean", *extra], capsys)
    assert code == 2 and says in one_line_error(err)


def test_not_an_index_and_the_debug_switch(tmp_path, capsys, monkeypatch):
    code, _, err = run(["search", str(tmp_path), "q"], capsys)
    assert code == 2 and "not a saved index" in one_line_error(err)
    with pytest.raises(ValueError, match="not a saved index"):
        main(["--debug", "search", str(tmp_path), "q"])
    monkeypatch.setenv("HYBRID_DEBUG", "1")
    with pytest.raises(ValueError, match="not a saved index"):
        main(["search", str(tmp_path), "q"])


def test_search_still_works(index_dir, capsys):
    code, out, _ = run(["search", str(index_dir), "ocean data", "--k", "10", "--json"], capsys)
    assert code == 0 and [h["id"] for h in json.loads(out)["hits"]] == ["a"]


# ---------------------------------------------------------------- generated junk

_value = st.one_of(odd_text, st.integers(-3, 10**12).map(str), st.sampled_from(["1e3", "nan"]))
_option = st.tuples(
    st.sampled_from(["--k", "--depth", "--fusion", "--weight", "--rerank-top", "--config"]),
    _value,
)


@SETTINGS
@given(query=odd_text, options=st.lists(_option, max_size=3))
def test_search_argument_junk(index_dir, capsys, query, options):
    argv = ["search", str(index_dir), query] + [x for pair in options for x in pair]
    code, _, err = run(argv, capsys)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        one_line_error(err)


_line = st.one_of(
    st.fixed_dictionaries({"id": st.one_of(odd_text, st.integers()), "text": odd_text}).map(
        lambda d: json.dumps(d).encode()
    ),
    st.binary(max_size=12),
    odd_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'{"id": null, "text": "x"}', b"\xff\xfe"]),
)


@SETTINGS
@given(lines=st.lists(_line, max_size=4), limit=st.one_of(st.none(), _value))
def test_index_file_junk(tmp_path, capsys, lines, limit):
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes(b"\n".join(lines) + b"\n")
    argv = ["index", str(docs), "--out", str(tmp_path / "out")]
    if limit is not None:
        argv += ["--limit", limit]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hybrid.HybridRetriever, "from_preset", classmethod(bm25_engine))
        code, out, err = run(argv, capsys)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        one_line_error(err)
    else:
        assert "Indexed" in out
