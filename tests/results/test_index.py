"""The results root's index: append, read, rebuild, find, and its environment fingerprint."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.index import (
    INDEX_NAME,
    UnknownRun,
    append_to_index,
    environment_fingerprint,
    find_run,
    index_run,
    read_index,
    rebuild_index,
    record_of,
)

LOGITS = np.eye(4, dtype=np.float32)


def test_records_round_trip_through_the_index(runs_factory):
    late = runs_factory("run-b", LOGITS, np.arange(4), run_id="bbbb2222", started=10)
    early = runs_factory("run-a", LOGITS, np.arange(4), run_id="aaaa1111", started=0)
    root = runs_factory.root
    append_to_index(root, record_of(late, root, label="late", sweep_id="s1"))
    append_to_index(root, record_of(early, root, label="early", sweep_id="s1"))
    records = read_index(root)
    assert [r.run_id for r in records] == ["aaaa1111", "bbbb2222"]  # oldest first
    first = records[0]
    assert first.path == "run-a" and first.label == "early" and first.sweep_id == "s1"
    assert first.ref("model") == "net@1.0.0" and first.task["dataset"]["version"] == "1.0.0"
    assert first.accuracy["top1"] == 1.0 and first.samples == 4 and first.batch_size == 4


def test_the_fingerprint_follows_the_software_not_the_place():
    env = {"kind": "inline", "python": "3.11", "framework": {"name": "rt", "version": "1.0"}}
    moved = {**env, "interpreter": "/elsewhere/python", "nodes": ["n1", "n2"]}
    upgraded = {**env, "framework": {"name": "rt", "version": "1.1"}}
    assert environment_fingerprint(env) == environment_fingerprint(moved)
    assert environment_fingerprint(env) != environment_fingerprint(upgraded)
    assert len(environment_fingerprint(env)) == 12


def test_concurrent_appends_never_interleave(runs_factory):
    run = runs_factory("run", LOGITS)
    root = runs_factory.root
    record = record_of(run, root)
    threads = [threading.Thread(target=append_to_index, args=(root, record)) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(read_index(root)) == 32


def test_rebuild_recreates_the_index_and_keeps_labels(runs_factory):
    a = runs_factory("a", LOGITS, run_id="aaaa")
    runs_factory("b", LOGITS, run_id="bbbb", started=5)
    root = runs_factory.root
    append_to_index(root, record_of(a, root, label="first"))
    (root / ".staging-c").mkdir()  # a run in progress is not a run
    records = rebuild_index(root)
    assert [(r.run_id, r.label) for r in records] == [("aaaa", "first"), ("bbbb", "")]
    assert len(read_index(root)) == 2


def test_find_run_by_path_id_prefix_and_label(runs_factory):
    a = runs_factory("a", LOGITS, run_id="abc123")
    b = runs_factory("b", LOGITS, run_id="abd456")
    root = runs_factory.root
    append_to_index(root, record_of(a, root, label="fast"))
    append_to_index(root, record_of(b, root, label="slow"))
    assert find_run(a) == a
    assert find_run("abc123", root) == root / "a"
    assert find_run("abd", root) == root / "b"
    assert find_run("slow", root) == root / "b"
    assert find_run("a", root) == root / "a"  # a folder name under the root


@pytest.mark.parametrize(
    ("ref", "use_root", "message"),
    [
        ("ab", True, r"matches 2 runs.*give more of the id"),
        ("zzz", True, r"no run with that id or label.*dlspec-ray runs"),
        ("zzz", False, r"no run directory there.*--root RESULTS_ROOT"),
    ],
)
def test_find_run_explains_what_it_could_not_find(runs_factory, ref, use_root, message):
    root = runs_factory.root
    for name, run_id in (("a", "abc123"), ("b", "abd456")):
        append_to_index(root, record_of(runs_factory(name, LOGITS, run_id=run_id), root))
    with pytest.raises(UnknownRun, match=message):
        find_run(ref, root if use_root else None)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("garbage", rf"{INDEX_NAME}:2: not an index record.*--rebuild"),
        ("missing-root", "no such results root"),
    ],
)
def test_a_broken_index_names_the_line_and_the_fix(runs_factory, setup, message):
    root = runs_factory.root
    if setup == "missing-root":
        root = root / "nope"
    else:
        run = runs_factory("a", LOGITS)
        append_to_index(root, record_of(run, root))
        with open(root / INDEX_NAME, "a") as f:
            f.write("{not json\n")
    with pytest.raises(DLSpecError, match=message):
        read_index(root)


def test_a_finished_run_is_added_to_the_index_of_the_folder_that_holds_it(runs_factory):
    run = runs_factory("single", LOGITS, run_id="cafe0001")
    assert index_run(run, label="solo") is None
    (record,) = read_index(runs_factory.root)
    assert (record.run_id, record.path, record.label) == ("cafe0001", "single", "solo")
    assert find_run("solo", runs_factory.root) == runs_factory.root / "single"


def test_an_index_file_that_is_not_ours_is_left_alone(runs_factory):
    run = runs_factory("single", LOGITS)
    foreign = runs_factory.root / INDEX_NAME
    foreign.write_text('{"someone": "else"}\n')
    why_not = index_run(run)
    assert why_not is not None and "is not a dlspec-ray index; not added there" in why_not
    assert foreign.read_text() == '{"someone": "else"}\n'
