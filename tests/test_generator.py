import gzip
import json

from lakehouse.scenario.app_events import BAD_LINE_KINDS, write_app_event_logs


def read_lines(path):
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode().split("\n")[:-1]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    first = write_app_event_logs(tmp_path / "a", seed=7, scale=0.05, days=2)
    again = write_app_event_logs(tmp_path / "b", seed=7, scale=0.05, days=2)
    other = write_app_event_logs(tmp_path / "c", seed=8, scale=0.05, days=2)
    assert [p.read_bytes() for p in first.files] == [p.read_bytes() for p in again.files]
    assert [p.read_bytes() for p in first.files] != [p.read_bytes() for p in other.files]


def test_counts_add_up_and_old_days_are_rotated_to_gzip(tmp_path):
    logs = write_app_event_logs(tmp_path, seed=1, scale=0.2, days=3, bad_line_rate=0.05, duplicate_rate=0.05)
    lines = [line for path in logs.files for line in read_lines(path)]
    assert len(lines) == logs.lines == logs.valid_events + logs.duplicate_lines + logs.total_bad_lines
    assert set(logs.bad_lines) == set(BAD_LINE_KINDS) and logs.total_bad_lines > 0
    events = [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]
    ids = [e["event_id"] for e in events if "event_id" in e]
    assert len(ids) - len(set(ids)) == logs.duplicate_lines
    gz = [p for p in logs.files if p.suffix == ".gz"]
    assert len(gz) == 8 and all("2026-11-03" not in p.name for p in gz)


def test_a_later_day_adds_files_with_fresh_event_ids(tmp_path):
    first = write_app_event_logs(tmp_path, seed=1, scale=0.05, days=1)
    later = write_app_event_logs(tmp_path, seed=1, scale=0.05, days=1, first_day=1)
    assert not set(first.files) & set(later.files)

    def ids(logs):
        return {
            json.loads(line)["event_id"]
            for p in logs.files
            for line in read_lines(p)
            if line.startswith('{"event_id"') and line.endswith("}")
        }

    assert not ids(first) & ids(later)
