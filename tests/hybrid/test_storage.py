"""Folder-backed engines: kills at random moments, damaged files, failed writes, readers and a
writer in several processes, path safety, metadata validation, format-1 folders."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from hybrid import HybridRetriever
from hybrid.storage import EngineLockedError
from indexes import IndexCorruptedError, IndexFormatError
from tests import _standins as S

pytest.importorskip("faiss")


def _run_to_file(fn, out, args):  # runs in a child process
    try:
        result = {"ok": fn(*args)}
    except Exception as exc:
        result = {"error": type(exc).__name__, "message": str(exc)}
    with open(out, "w") as f:
        json.dump(result, f)


def in_child(fn, *args, out):
    """Run ``fn(*args)`` in a child process; returns ``(signal that killed it or 0, result)``
    (the result is ``{"ok": value}`` or ``{"error": name, "message": text}``)."""
    proc = S.processes().Process(target=_run_to_file, args=(fn, str(out), args))
    proc.start()
    proc.join()
    sig = -proc.exitcode if proc.exitcode and proc.exitcode < 0 else 0
    result = json.loads(out.read_text()) if out.exists() else None
    if out.exists():
        out.unlink()
    return sig, result


def reopen(path, **kw):
    return HybridRetriever.open(path, encoders=S.encoders(), parallel=False, **kw)


# -- durability and equality ------------------------------------------------------------------


def test_folder_engine_round_trips_every_write(tmp_path):
    e = S.engine(tmp_path / "e", parallel=False)
    t, i, m = S.docs(30, 1)
    e.add(t, ids=i, metadata=m)
    e.delete(i[:4])
    t2, i2, m2 = S.docs(6, 2)
    e.add(t2, ids=i2, metadata=m2)
    mem = S.engine(parallel=False)
    mem.add(t, ids=i, metadata=m)
    mem.delete(i[:4])
    mem.add(t2, ids=i2, metadata=m2)
    assert S.state(e) == S.state(mem)
    assert e.ids() == i[4:] + i2
    e.close()
    again = reopen(tmp_path / "e")
    assert S.state(again) == S.state(mem)
    again.optimize()
    again.close()
    assert S.state(reopen(tmp_path / "e")) == S.state(mem)
    loaded = HybridRetriever.load(tmp_path / "e", encoders=S.encoders(), parallel=False)
    assert loaded.path is None and S.state(loaded) == S.state(mem)


KINDS, ODDS = ["add", "delete", "optimize", "save"], [5, 3, 2, 2]


def _op(engine, rnd: random.Random, k: int, copy_path):
    """One random write (deterministic given ``rnd`` and the engine's ids)."""
    kind = rnd.choices(KINDS, ODDS)[0]
    ids = engine.ids()
    if kind == "delete" and len(ids) > 5:
        engine.delete(rnd.sample(ids, rnd.randint(1, 4)))
    elif kind == "optimize":
        if engine.path is not None:  # the in-memory reference has nothing to fold
            engine.optimize()
    elif kind == "save":
        engine.save(copy_path)
    else:
        kind = "add"
        t, i, m = S.docs(rnd.randint(1, 15), rnd.randint(0, 10**9), prefix=f"k{k}-")
        engine.add(t, ids=i, metadata=m)
    return kind


def _writer(path, log, seed, copy_path):  # pragma: no cover - runs in a killed child
    try:
        _write_forever(path, log, seed, copy_path)
    except BaseException:
        import traceback

        Path(str(log) + ".error").write_text(traceback.format_exc())
        raise


# every other writer merges in the background every few commits: kills land in merges too
KILL_MERGE = {"max_commits": 4, "min_commits": 2, "log_ratio": 0.0}


def _mark(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _traced_merges(marks: Path) -> None:  # pragma: no cover - runs in a killed child
    """Record in ``marks`` when each background merge begins and ends."""
    from hybrid.storage import merge as merge_module

    real = merge_module.merge
    merge_module.NICENESS = 0  # merges keep pace with the writes they race

    def traced(folder, load, check=lambda: None):
        _mark(marks, "begin")
        switched = real(folder, load, check)
        _mark(marks, "end")
        return switched

    merge_module.merge = traced


def _write_forever(path, log, seed, copy_path):  # pragma: no cover - runs in a killed child
    from hybrid.storage import MergePolicy

    _traced_merges(Path(str(log) + ".merges"))
    warm = S.engine(parallel=False)  # compile the write kernels first: kills land in writes
    warm.add(*S.docs(3, 0)[:2])
    warm.delete(warm.ids()[:1])
    e = reopen(path, merge=MergePolicy(**KILL_MERGE) if seed % 2 == 0 else None)
    Path(str(log) + ".ready").touch()
    k = 0
    while True:
        rnd = random.Random(seed * 1000 + k)
        with open(log, "a") as f:
            f.write(f"begin {k}\n")
            f.flush()
            os.fsync(f.fileno())
        _op(e, rnd, k, copy_path)
        with open(log, "a") as f:
            f.write(f"done {k}\n")
            f.flush()
            os.fsync(f.fileno())
        k += 1


def kill_loop(tmp_path, kills: int, seed: int = 0) -> dict[str, int]:
    """Kill a writer at random moments; after each kill the folder must open and equal the
    state after the last returned call or after the call in flight (ids, texts, metadata,
    hits). Returns counts."""
    path, copy_path = tmp_path / "e", tmp_path / "copy"
    S.engine(path, parallel=False).close()
    ref = S.engine(parallel=False)  # in memory: the same calls, never killed
    # What the copy folder may hold: the state of the last save that returned, plus that of
    # each save killed since (each may or may not have switched the copy); narrowed to the
    # state found each time the copy is checked.
    copy_states: list[dict] = []
    counts = {"kills": 0, "in_flight_committed": 0, "in_flight_lost": 0, "merges": 0}
    rng = random.Random(seed)
    ctx = S.processes()
    for round_ in range(kills):
        log = tmp_path / f"log{round_}"
        log.touch()
        proc = ctx.Process(target=_writer, args=(path, log, round_, copy_path))
        proc.start()
        ready = Path(str(log) + ".ready")
        while not ready.exists() and proc.is_alive():
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))  # kill at a random moment of its writes
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        error = Path(str(log) + ".error")
        assert not error.exists(), f"round {round_}: the writer failed:\n{error.read_text()}"
        counts["kills"] += 1
        marks = Path(str(log) + ".merges")
        merges = marks.read_text().split() if marks.exists() else []
        counts["merges"] += merges.count("end")
        if merges.count("begin") > merges.count("end"):
            counts["killed in a merge"] = counts.get("killed in a merge", 0) + 1
        lines = log.read_text().split()
        done = [int(x) for w, x in zip(lines[::2], lines[1::2], strict=True) if w == "done"]
        begun = [int(x) for w, x in zip(lines[::2], lines[1::2], strict=True) if w == "begin"]
        for k in done:
            if _op(ref, random.Random(round_ * 1000 + k), k, tmp_path / "ref-copy") == "save":
                copy_states = [S.state(ref)]
        opened = reopen(path)
        got = S.state(opened)
        S.check_sample(opened)  # the dense vector sample survives the kill with the index
        opened.close()
        pending = [k for k in begun if k not in done]
        if pending:
            kind = random.Random(round_ * 1000 + pending[0]).choices(KINDS, ODDS)[0]
            counts[f"killed in {kind}"] = counts.get(f"killed in {kind}", 0) + 1
        if got != S.state(ref):
            assert pending, f"round {round_}: the folder differs from the last returned call"
            k = pending[0]
            kind = _op(ref, random.Random(round_ * 1000 + k), k, tmp_path / "ref-copy")
            if kind == "save":
                copy_states.append(S.state(ref))
            assert got == S.state(ref), f"round {round_}: neither before nor after call {k}"
            counts["in_flight_committed"] += 1
        elif pending:
            counts["in_flight_lost"] += 1
            k = pending[0]
            if random.Random(round_ * 1000 + k).choices(KINDS, ODDS)[0] in ("save", "optimize"):
                kind = _op(ref, random.Random(round_ * 1000 + k), k, tmp_path / "ref-copy")
                if kind == "save":
                    copy_states.append(S.state(ref))
        if copy_path.exists():
            copy = HybridRetriever.load(copy_path, encoders=S.encoders(), parallel=False)
            found = S.state(copy)
            assert found in copy_states, f"round {round_}: save() left a wrong copy"
            copy_states = [found]
    return counts


def test_sigkill_at_random_moments_never_breaks_the_folder(tmp_path):
    counts = kill_loop(tmp_path, kills=50)
    assert counts["kills"] == 50
    writes = [v for key, v in counts.items() if key.startswith("killed in ") and "merge" not in key]
    inside = sum(writes)
    assert inside >= 10, counts  # kills land inside write calls
    assert counts["merges"] >= 1 and counts.get("killed in a merge", 0) >= 5, counts


# -- damage -----------------------------------------------------------------------------------


def _load_and_search(path, verify):  # runs in a forked child
    e = HybridRetriever.load(path, encoders=S.encoders(), verify=verify, parallel=False)
    return S.state(e)


def _damages(size: int, rng: random.Random, flips: int):
    yield "truncate", lambda b: b[: len(b) // 2]
    at = rng.randrange(max(1, size))
    yield "zero", lambda b: b[:at] + bytes(min(512, len(b) - at)) + b[at + 512 :]
    for _ in range(flips):
        pos = rng.randrange(max(1, size))
        yield "flip", lambda b, p=pos: b[:p] + bytes([b[p] ^ 0x5A]) + b[p + 1 :] if b else b


def corruption_loop(
    tmp_path,
    seed: int = 0,
    flips: int = 1,
    unverified: tuple[str, ...] = ("docs.npy", "indptr.npy"),
) -> dict[str, int]:
    """Damage every file of a saved engine in several ways; load + search in a forked child.
    Returns counts; crashes and silent differences must both be 0."""
    src = tmp_path / "saved"
    e = S.engine(parallel=False)
    t, i, m = S.docs(60, 3)
    e.add(t, ids=i, metadata=m)
    e.delete(i[:5])
    e.save(src)
    expected = S.state(e)
    rng = random.Random(seed)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    counts = {"cases": 0, "crashes": 0, "silent": 0, "errors": 0, "unchanged": 0, "unnamed": 0}
    for file in files:
        data = file.read_bytes()
        for how, damage in _damages(len(data), rng, flips):
            work = tmp_path / "work"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(src, work)
            target = work / file.relative_to(src)
            damaged = damage(data)
            if damaged == data:
                continue
            target.write_bytes(damaged)
            counts["cases"] += 1
            sig, out = in_child(_load_and_search, work, True, out=tmp_path / "out.json")
            if sig or out is None:
                counts["crashes"] += 1
            elif "error" in out:
                counts["errors"] += 1
                named = file.name in out["message"] or file.parent.name in out["message"]
                counts["unnamed"] += not named
                if not named:
                    print("unnamed", file, how, out["message"])
            elif out["ok"] != json.loads(json.dumps(expected)):
                counts["silent"] += 1
                print("silent", file, how)
            else:
                counts["unchanged"] += 1
            if sig == 0 and (file.name in unverified or "*" in unverified):
                # unverified: the bounds checks alone must keep the kernels safe
                sig2, _ = in_child(_load_and_search, work, False, out=tmp_path / "o.json")
                counts["crashes"] += bool(sig2)
                counts["unverified"] = counts.get("unverified", 0) + 1
    return counts


def test_every_damaged_file_gives_a_clear_error_never_a_crash(tmp_path):
    counts = corruption_loop(tmp_path)
    assert counts["cases"] >= 50
    assert counts["crashes"] == 0 and counts["silent"] == 0 and counts["unnamed"] == 0, counts
    assert counts["errors"] >= counts["cases"] * 0.8


def test_unverified_bm25_damage_out_of_range_is_refused(tmp_path):
    e = S.engine(parallel=False)
    e.add(*S.docs(20, 4)[:1])
    e.save(tmp_path / "s")
    docs = next((tmp_path / "s").rglob("bm25/index/seg0_docs.npy"))  # BM25 format 2
    arr = np.load(docs)
    arr[3] = 10**6
    np.save(docs, arr)
    with pytest.raises(IndexCorruptedError, match="docs.npy"):
        HybridRetriever.load(tmp_path / "s", encoders=S.encoders(), verify=False)
    with pytest.raises(IndexCorruptedError, match="docs.npy"):
        HybridRetriever.load(tmp_path / "s", encoders=S.encoders())


# -- failed writes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["splade", "dense", "bm25"])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("folder", [False, True])
def test_a_retriever_failing_inside_add_leaves_the_engine_as_before(
    tmp_path, monkeypatch, name, when, folder
):
    e = S.engine(tmp_path / "e" if folder else None, parallel=False)
    t, i, m = S.docs(25, 5)
    e.add(t, ids=i, metadata=m)
    e.delete(i[:2])
    before = S.state(e)
    index = e.retrievers[name].index
    real = index.add

    def failing(x, *a, **kw):
        if when == "after":
            real(x, *a, **kw)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(index, "add", failing)
    t2, i2, m2 = S.docs(5, 6)
    with pytest.raises(RuntimeError, match=f"retriever '{name}'.*{i2[0]}.*injected"):
        e.add(t2, ids=i2, metadata=m2)
    monkeypatch.setattr(index, "add", real)
    assert S.state(e) == before
    e.add(t2, ids=i2, metadata=m2)  # and the engine still takes writes
    ref = S.engine(parallel=False)
    ref.add(t, ids=i, metadata=m)
    ref.delete(i[:2])
    ref.add(t2, ids=i2, metadata=m2)
    assert S.state(e) == S.state(ref)
    if folder:
        e.close()
        assert S.state(reopen(tmp_path / "e")) == S.state(ref)


def test_bad_encodings_and_untrainable_index_leave_the_engine_as_before(tmp_path):
    from hybrid.engine.retrievers import BM25Retriever, DenseRetriever

    enc = S.encoders()
    e = HybridRetriever(
        {
            "bm25": BM25Retriever("whitespace"),
            "dense": DenseRetriever(enc["dense"], factory="IVF16,Flat"),
        },
        path=tmp_path / "ivf",
        parallel=False,
    )
    t, i, _ = S.docs(5, 7)
    with pytest.raises(ValueError, match="needs at least 16"):
        e.add(t, ids=i)
    assert len(e) == 0 and len(e.retrievers["bm25"]) == 0
    e2 = S.engine(parallel=False)
    e2.add(t, ids=i)
    before = S.state(e2)
    t2, i2, _ = S.docs(3, 8)
    vec = S.hash_dense(t2)
    vec[1, 2] = np.nan
    with pytest.raises(ValueError, match=repr(i2[1])):
        e2.add(t2, ids=i2, encoded={"dense": vec})
    with pytest.raises(ValueError, match="dimension"):
        e2.add(t2, ids=i2, encoded={"dense": np.ones((3, 5), np.float32)})
    neg = S.HashSplade().encode_documents(t2)
    neg.data[-1] = -1.0
    with pytest.raises(ValueError, match=repr(i2[2])):
        e2.add(t2, ids=i2, encoded={"splade": neg})
    assert S.state(e2) == before


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"when": __import__("datetime").date(2024, 1, 1)}, "date"),
        ({"s": {1, 2}}, "set"),
        ({"b": b"x"}, "bytes"),
        ({"x": np.float32(1.0)}, "float32"),
        ({1: "one"}, "key 1"),
        ({"x": float("nan")}, "finite"),
        ({"x": "\ud800"}, "surrogate"),
    ],
)
def test_metadata_that_cannot_be_stored_is_refused_naming_document_and_key(meta, match):
    e = S.engine(parallel=False)
    with pytest.raises(ValueError, match=match) as info:
        e.add(["alpha", "beta"], ids=["ok", "bad"], metadata=[{}, meta])
    assert "'bad'" in str(info.value)
    assert len(e) == 0


def test_lone_surrogates_in_texts_and_ids_are_refused():
    e = S.engine(parallel=False)
    with pytest.raises(ValueError, match="surrogate"):
        e.add(["alpha \udc80"], ids=["x"])
    with pytest.raises(ValueError, match="surrogate"):
        e.add(["alpha"], ids=["x\ud800"])
    assert len(e) == 0


# -- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "..", ".hidden", "", "x" * 65, "a\\b"])
def test_retriever_names_that_could_leave_the_folder_are_refused(name):
    with pytest.raises(ValueError, match="not allowed"):
        HybridRetriever({name: S.retrievers()["bm25"]})


def test_a_manifest_naming_paths_outside_the_folder_is_refused(tmp_path):
    import sqlite3
    import zlib

    e = S.engine(tmp_path / "e", parallel=False)
    e.add(*S.docs(5, 9)[:1])
    e.close()
    (tmp_path / "other").mkdir()
    conn = sqlite3.connect(tmp_path / "e" / "engine.sqlite")
    (body,) = conn.execute("SELECT body FROM manifest").fetchone()
    for evil in (
        {"base": "../other"},
        {"retrievers": ["../../other/bm25"]},
        {"files": {"../other/x": [1, 1]}},
    ):
        new = json.dumps({**json.loads(body), **evil})
        conn.execute("UPDATE manifest SET body=?, crc=?", (new, zlib.crc32(new.encode())))
        conn.commit()
        with pytest.raises((IndexCorruptedError, ValueError), match="outside|not allowed"):
            reopen(tmp_path / "e")
    conn.close()


# -- several processes ----------------------------------------------------------------------


def _reader(path, seen_file, stop_at):  # runs in a child process
    try:
        _read_until(path, seen_file, stop_at)
    except BaseException:
        import traceback

        Path(str(seen_file) + ".error").write_text(traceback.format_exc())
        raise


def start_readers(path, tmp_path, n: int, stop_at: int) -> list:
    """``n`` reader processes on the folder at ``path`` (each records the states it sees in
    ``tmp_path / f"seen{r}"`` until it sees ``stop_at`` documents), started and ready."""
    ctx = S.processes()
    readers = [
        ctx.Process(target=_reader, args=(path, tmp_path / f"seen{r}", stop_at)) for r in range(n)
    ]
    for proc in readers:
        proc.start()
    deadline = time.time() + 120
    while not all((tmp_path / f"seen{r}.ready").exists() for r in range(n)):
        assert time.time() < deadline, "the readers did not start"
        time.sleep(0.05)
    return readers


def _read_until(path, seen_file, stop_at):
    e = HybridRetriever.open(path, encoders=S.encoders(), readonly=True, parallel=False)
    e.auto_refresh = False  # ids() and search() below must see one state
    Path(str(seen_file) + ".ready").touch()
    seen = []
    while True:
        ids = e.ids()
        hits = e.search("alpha", k=100)
        assert {h.id for h in hits} <= set(ids)
        seen.append(ids)
        if len(ids) >= stop_at:
            break
        e.refresh()
        time.sleep(0.005)
    with open(seen_file, "w") as f:
        json.dump(seen, f)
    return len(seen)


def test_one_writer_and_four_reader_processes(tmp_path):
    path = tmp_path / "e"
    w = S.engine(path, parallel=False)
    with pytest.raises(EngineLockedError):
        reopen(path)  # a second writer
    readers = start_readers(path, tmp_path, 4, 4 * 40)
    committed = [[]]
    for k in range(60):
        ids = [f"b{k}-{j}" for j in range(4)]
        w.add([f"alpha text {k} {j}" for j in range(4)], ids=ids)
        committed.append(w.ids())
        if k % 3 == 2:
            w.delete([f"b{k - 1}-0"])
            committed.append(w.ids())
        if k == 30:
            w.optimize()
        time.sleep(0.01)
    for r, proc in enumerate(readers):
        proc.join(timeout=120)
        error = tmp_path / f"seen{r}.error"
        assert not error.exists(), error.read_text()
        assert proc.exitcode == 0
    states = {tuple(c) for c in committed}
    for r in range(4):
        seen = json.loads((tmp_path / f"seen{r}").read_text())
        assert len(seen) > 1
        assert all(tuple(s) in states for s in seen), "a reader saw an uncommitted state"
    w.close()
    reopen(path).close()  # the lock is free again


# -- format 1 ---------------------------------------------------------------------------------


def test_format_1_folders_load_and_upgrade_on_open(tmp_path):
    e = S.engine(parallel=False)
    t, i, m = S.docs(15, 11)
    e.add(t, ids=i, metadata=m)
    e.delete(i[:2])
    S.write_v1(e, tmp_path / "v1")
    assert S.state(HybridRetriever.load(tmp_path / "v1", encoders=S.encoders())) == S.state(e)
    with pytest.raises(IndexFormatError, match="format-1"):
        reopen(tmp_path / "v1", readonly=True)
    opened = reopen(tmp_path / "v1")
    assert S.state(opened) == S.state(e)
    assert not (tmp_path / "v1" / "meta.json").exists()
    opened.add(*S.docs(2, 12)[:1], ids=["new1", "new2"])
    opened.close()
    assert reopen(tmp_path / "v1").ids()[-2:] == ["new1", "new2"]


def test_save_over_a_saved_engine_replaces_it_and_refuses_other_folders(tmp_path):
    e = S.engine(parallel=False)
    e.add(*S.docs(10, 13)[:1])
    e.save(tmp_path / "s")
    e.add(["omega psi"], ids=["late"])
    e.save(tmp_path / "s")
    assert HybridRetriever.load(tmp_path / "s", encoders=S.encoders()).ids()[-1] == "late"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(IndexFormatError, match="not a saved engine"):
        e.save(tmp_path / "mine")
    with pytest.raises(IndexFormatError, match="already holds files"):
        S.engine(tmp_path / "mine")


@pytest.mark.parametrize("folder", [False, True])
def test_upsert_and_metadata_updates_as_write_batches_persist(tmp_path, folder):
    from hybrid.engine import WriteBatch

    e = S.engine(tmp_path / "e" if folder else None, parallel=False)
    t, i, m = S.docs(8, 14)
    e.add(t, ids=i, metadata=m)
    row = int(e.store.rows_of([i[1]])[0])
    e._commit(WriteBatch(metadata_updates={row: {"new": [1, "two"]}}))
    enc = {n: r.encode_documents(["omega psi chi"]) for n, r in e.retrievers.items()}
    old = e.store.rows_of([i[2]])
    e._commit(
        WriteBatch(
            delete_rows=old, texts=["omega psi chi"], ids=[i[2]], metadata=[{"v": 2}], encoded=enc
        )
    )  # an upsert of i[2]
    assert e.store.metadata[row] == {"new": [1, "two"]}
    assert e.ids() == [i[0], i[1], *i[3:], i[2]]
    assert e.search("omega psi chi", k=1)[0].id == i[2]
    with pytest.raises(KeyError, match="not a live"):
        e._commit(WriteBatch(delete_rows=old))
    with pytest.raises(ValueError, match="deleted twice"):
        e._commit(WriteBatch(delete_rows=np.array([row, row])))
    with pytest.raises(ValueError, match="more than once"):  # issue #18: an id given twice
        e.delete([i[3], i[3]])  # is refused before anything changes
    e.delete([i[3]])
    assert i[3] not in e.ids()
    if folder:
        before = S.state(e)
        e.close()
        again = reopen(tmp_path / "e")
        assert S.state(again) == before
        assert again.store.metadata[row] == {"new": [1, "two"]}
        assert dict(again.store.iter_metadata())[row] == {"new": [1, "two"]}
