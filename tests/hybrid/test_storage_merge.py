"""The background merge: it folds the commit log into a new base while searches and writes go
on, searches during it return what they returned before, writes made during it are kept,
readers follow it, ``close`` stops it, a failed merge changes nothing."""

from __future__ import annotations

import json
import threading
import time

import pytest

from hybrid import HybridRetriever
from hybrid.storage import MergePolicy
from hybrid.storage import folder as folder_module
from tests import _standins as S
from tests.hybrid.test_storage import start_readers

pytest.importorskip("faiss")

OFF = MergePolicy(max_commits=10**9, min_commits=10**9)  # never due: merges started by hand
NOW = MergePolicy(max_commits=1, min_commits=1)


def open_(path, **kw):
    return HybridRetriever.open(path, encoders=S.encoders(), parallel=False, **kw)


def merge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hybrid-merge")]


def _writes(engine, ref, rounds, seed):
    for k in range(rounds):
        t, i, m = S.docs(6, seed + k)
        for e in (engine, ref):
            e.add(t, ids=i, metadata=m)
            if k % 3 == 2:
                e.delete(i[:2])


def _base_dirs(path):
    return sorted(p.name for p in path.iterdir() if p.name.startswith("base-"))


class Gate:
    """Holds the merge inside ``write_snapshot`` (indexes loaded and replayed, nothing saved)
    until released."""

    def __init__(self, monkeypatch):
        self.entered, self.release = threading.Event(), threading.Event()
        real = folder_module.write_snapshot

        def held(*args, **kwargs):
            self.entered.set()
            assert self.release.wait(60)
            return real(*args, **kwargs)

        monkeypatch.setattr(folder_module, "write_snapshot", held)


def test_policy_thresholds_and_errors():
    p = MergePolicy(max_commits=100, min_commits=10, log_ratio=0.5)
    assert p.due(100, 0, 10**9)  # the count cap alone
    assert not p.due(99, 10**6, 10**9)
    assert p.due(10, 500, 1000) and not p.due(10, 499, 1000) and not p.due(9, 10**6, 1000)
    for bad, match in [
        ({"max_commits": 0}, "max_commits must be a positive integer, got 0"),
        ({"min_commits": 1.5}, "min_commits"),
        ({"log_ratio": -1}, "log_ratio must be a number >= 0, got -1"),
    ]:
        with pytest.raises(ValueError, match=match):
            MergePolicy(**bad)
    with pytest.raises(TypeError, match="merge must be a MergePolicy"):
        open_("nowhere", merge="often")


def test_merge_keeps_searches_unchanged_and_the_writes_made_during_it(tmp_path, monkeypatch):
    path = tmp_path / "e"
    S.engine(path, parallel=False).close()
    e = open_(path, merge=OFF)
    ref = S.engine(parallel=False)
    _writes(e, ref, 12, 10)
    before = S.state(e)
    assert e._folder.log_size[0] == 16 and _base_dirs(path) == ["base-00000001"]
    gate = Gate(monkeypatch)
    merger = e._folder.merger
    merger.policy = NOW
    merger.notify()
    assert gate.entered.wait(60)  # the merge runs: indexes loaded and replayed
    for _ in range(3):
        assert S.state(e) == before  # searches during the merge: exactly as before it
    _writes(e, ref, 2, 50)  # writes during the merge land in the log
    during = S.state(e)
    assert during == S.state(ref) and during != before
    gate.release.set()
    assert merger.wait(60) and merger.error is None and merger.merges >= 1
    merger.policy = OFF
    assert S.state(e) == during  # and after it
    assert _base_dirs(path) == [e._folder.manifest["base"]] != ["base-00000001"]
    assert e._folder.manifest["base_gen"] < e._folder.manifest["gen"]
    e.close()
    assert not merge_threads()
    for policy in (None, OFF):  # what the merge wrote opens, with the later commits replayed
        again = open_(path, merge=policy)
        assert S.state(again) == during
        again.close()


def test_repeated_merges_while_writing_and_searching(tmp_path):
    path = tmp_path / "e"
    S.engine(path, parallel=False).close()
    e = open_(path, merge=MergePolicy(max_commits=3, min_commits=1, log_ratio=0.0))
    ref = S.engine(parallel=False)
    for k in range(10):
        _writes(e, ref, 2, 100 + 2 * k)
        assert S.state(e) == S.state(ref)  # searches while merges come and go
    merger = e._folder.merger
    assert merger.wait(60) and merger.error is None
    assert merger.merges >= 3
    assert e._folder.log_size[0] < 3
    assert len(_base_dirs(path)) == 1
    e.close()
    assert not merge_threads()
    again = open_(path, merge=None)
    assert S.state(again) == S.state(ref)
    again.close()


def test_readers_follow_a_merge(tmp_path, monkeypatch):
    path = tmp_path / "e"
    S.engine(path, parallel=False).close()
    w = open_(path, merge=OFF)
    ref = S.engine(parallel=False)
    _writes(w, ref, 4, 200)
    behind = open_(path, readonly=True)  # will be behind the merged generation
    _writes(w, ref, 4, 210)
    level = open_(path, readonly=True)  # at the merged generation
    for r in (behind, level):
        r.auto_refresh = False
    gate = Gate(monkeypatch)
    w._folder.merger.policy = NOW
    w._folder.merger.notify()
    assert gate.entered.wait(60)
    _writes(w, ref, 2, 220)  # lands during the merge
    assert level.refresh() and S.state(level) == S.state(ref)  # replays, as ever
    gate.release.set()
    assert w._folder.merger.wait(60) and w._folder.merger.error is None
    w._folder.merger.policy = OFF
    _writes(w, ref, 2, 230)  # and after it
    for r in (behind, level):
        assert r.refresh()
        assert S.state(r) == S.state(ref)
        r.close()
    w.close()


def test_reader_processes_across_merges(tmp_path):
    path = tmp_path / "e"
    S.engine(path, parallel=False).close()
    w = open_(path, merge=MergePolicy(max_commits=4, min_commits=1, log_ratio=0.0))
    readers = start_readers(path, tmp_path, 2, 3 * 30)
    committed = [[]]
    for k in range(30):
        w.add([f"alpha text {k} {j}" for j in range(4)], ids=[f"b{k}-{j}" for j in range(4)])
        committed.append(w.ids())
        w.delete([f"b{k}-3"])
        committed.append(w.ids())
        time.sleep(0.01)
    for r, proc in enumerate(readers):
        proc.join(timeout=120)
        error = tmp_path / f"seen{r}.error"
        assert not error.exists(), error.read_text()
        assert proc.exitcode == 0
    assert w._folder.merger.wait(60) and w._folder.merger.merges >= 2
    states = {tuple(c) for c in committed}
    for r in range(2):
        seen = json.loads((tmp_path / f"seen{r}").read_text())
        assert len(seen) > 1 and len(seen[-1]) >= 3 * 30  # they followed to the end
        assert all(tuple(s) in states for s in seen), "a reader saw an uncommitted state"
    w.close()


def test_close_cancels_a_running_merge(tmp_path, monkeypatch):
    path = tmp_path / "e"
    S.engine(path, parallel=False).close()
    e = open_(path, merge=OFF)
    ref = S.engine(parallel=False)
    _writes(e, ref, 5, 300)
    gate = Gate(monkeypatch)
    e._folder.merger.policy = NOW
    e._folder.merger.notify()
    assert gate.entered.wait(60)
    closing = threading.Thread(target=e.close)
    closing.start()
    time.sleep(0.2)
    assert closing.is_alive()  # close waits for the merge's current step
    gate.release.set()
    closing.join(60)
    assert not closing.is_alive() and not merge_threads()
    assert _base_dirs(path) == ["base-00000001"]  # cancelled: its snapshot removed
    again = open_(path, merge=None)
    assert S.state(again) == S.state(ref)
    again.close()


def test_a_failed_merge_changes_nothing_and_is_retried_later(tmp_path):
    path = tmp_path / "e"
    S.engine(path, parallel=False).close()
    e = open_(path, merge=OFF)
    ref = S.engine(parallel=False)
    _writes(e, ref, 4, 400)
    merger = e._folder.merger
    real = merger.load

    def broken(name, folder):
        raise OSError("disk on fire (injected)")

    merger.load = broken
    merger.policy = MergePolicy(max_commits=2, min_commits=2)
    merger.notify()
    assert merger.wait(60)
    assert "injected" in str(merger.error) and merger.merges == 0
    assert _base_dirs(path) == ["base-00000001"] and S.state(e) == S.state(ref)
    merger.load = real
    _writes(e, ref, 1, 410)  # one more commit: not yet retried (waits for min_commits more)
    assert merger.wait(60) and merger.merges == 0
    _writes(e, ref, 1, 411)
    assert merger.wait(60) and merger.merges == 1
    e.close()
    again = open_(path, merge=None)
    assert S.state(again) == S.state(ref)
    again.close()


def test_optimize_waits_for_a_running_merge(tmp_path, monkeypatch):
    path = tmp_path / "e"
    S.engine(path, parallel=False).close()
    e = open_(path, merge=OFF)
    ref = S.engine(parallel=False)
    _writes(e, ref, 5, 500)
    gate = Gate(monkeypatch)
    merger = e._folder.merger
    merger.policy = NOW
    merger.notify()
    assert gate.entered.wait(60)
    _writes(e, ref, 1, 510)
    optimizing = threading.Thread(target=e.optimize)
    optimizing.start()
    time.sleep(0.2)
    assert optimizing.is_alive()  # holds the writer, waits for the merge
    gate.release.set()
    optimizing.join(60)
    # the commit made during the merge may be folded by a second merge or by optimize()
    assert merger.wait(60) and merger.error is None and merger.merges in (1, 2)
    assert e._folder.log_size == (0, 0)  # optimize folded the commit made during the merge
    assert _base_dirs(path) == [e._folder.manifest["base"]]
    assert S.state(e) == S.state(ref)
    e.close()
    again = open_(path, merge=None)
    assert S.state(again) == S.state(ref)
    again.close()
