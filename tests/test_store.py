"""The raw response store: append-only, resumable, safe under kills and concurrent writers."""
import json
import multiprocessing as mp
import os

from valuelex_utils.llm.store import ResponseStore, request_key

MSG = [{"role": "user", "content": "List your values."}]


def _rec(key, text="accuracy"):
    return {"key": key, "model": "m", "response": {"choices": [{"message": {"content": text}}]}}


def test_sample_index_gives_distinct_keys():
    keys = {request_key("local/x", MSG, {"temperature": 0.7}, s) for s in range(5)}
    assert len(keys) == 5


def test_key_ignores_non_decoding_params_and_order():
    a = request_key("m", MSG, {"temperature": 0.7, "top_p": 0.9, "api_base": "http://a"}, 0)
    b = request_key("m", MSG, {"top_p": 0.9, "temperature": 0.7, "api_base": "http://b"}, 0)
    assert a == b
    assert a != request_key("m", MSG, {"temperature": 0.8, "top_p": 0.9}, 0)


def test_reopened_store_serves_answers(tmp_path):
    store = ResponseStore(tmp_path / "r.jsonl")
    store.put(_rec("k1"))
    again = ResponseStore(tmp_path / "r.jsonl")
    assert "k1" in again and again.get("k1")["response"]["choices"][0]["message"]["content"] == "accuracy"


def test_torn_last_line_is_ignored_and_fenced(tmp_path):
    path = tmp_path / "r.jsonl"
    store = ResponseStore(path)
    store.put(_rec("k1"))
    with open(path, "ab") as fh:
        fh.write(b'{"key": "k2", "response": {"cho')  # a kill in the middle of a write
    store = ResponseStore(path)
    assert store.keys() == {"k1"} and store.torn_lines == 1
    store.put(_rec("k2"))
    lines = path.read_bytes().splitlines()
    assert json.loads(lines[-1])["key"] == "k2"
    assert ResponseStore(path).keys() == {"k1", "k2"}


def test_second_answer_for_a_key_is_not_written(tmp_path):
    store = ResponseStore(tmp_path / "r.jsonl")
    store.put(_rec("k1", "first"))
    kept = store.put(_rec("k1", "second"))
    assert kept["response"]["choices"][0]["message"]["content"] == "first"
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1


def test_errors_are_kept_but_do_not_count_as_answered(tmp_path):
    store = ResponseStore(tmp_path / "r.jsonl")
    store.put({"key": "k1", "error": "RateLimitError", "response": None})
    assert "k1" not in store and len(store.records()) == 1


def _writer(path, start, n):
    store = ResponseStore(path)
    for i in range(start, start + n):
        store.put(_rec(f"k{i}", "x" * (1 + i % 200)))  # never empty: an empty content is no answer


def test_concurrent_writers_leave_whole_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, i * 200, 200)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 800
    assert {json.loads(line)["key"] for line in lines} == {f"k{i}" for i in range(800)}


def test_concurrent_writers_of_the_same_keys_store_each_once(tmp_path):
    path = tmp_path / "r.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, 0, 100)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    keys = [json.loads(line)["key"] for line in path.read_text().splitlines()]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 100
    assert os.path.getsize(path) > 0
