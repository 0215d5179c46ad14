"""The nginx log follower and probe: new lines only, across rotation and truncation."""

from __future__ import annotations

import os
from pathlib import Path

from monitors.probes.nginx_log import LogFollower, NginxLogProbe
from monitors.targets import NginxLogTarget


def line(client: str, connection: int = 1) -> str:
    return f'{client} - - [21/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl" {connection}\n'


def append(path: Path, text: str) -> None:
    with path.open("a") as out:
        out.write(text)


def test_lines_before_start_are_skipped_and_new_ones_counted(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("10.0.0.1") * 5)
    follower = LogFollower(log)
    assert follower.read() == []
    append(log, line("10.0.0.2") + line("10.0.0.3"))
    assert len(follower.read()) == 2
    assert follower.read() == []


def test_a_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    follower = LogFollower(log)
    append(log, "10.0.0.1 - - [x] \"GET")
    assert follower.read() == []
    append(log, " / HTTP/1.1\" 200\n")
    assert follower.read() == [b'10.0.0.1 - - [x] "GET / HTTP/1.1" 200']


def test_rotation_by_rename_reads_the_rest_of_the_old_file_then_the_new(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    follower = LogFollower(log)
    append(log, line("10.0.0.1"))
    assert len(follower.read()) == 1
    # Given nginx wrote more, then logrotate renamed the file and nginx reopened a new one
    append(log, line("10.0.0.2") + line("10.0.0.3"))
    os.rename(log, tmp_path / "access.log.1")
    append(log, line("10.0.0.4"))
    # Then nothing is lost or counted twice
    lines = follower.read()
    assert [entry.split()[0] for entry in lines] == [b"10.0.0.2", b"10.0.0.3", b"10.0.0.4"]
    assert follower.rotations == 1


def test_log_missing_for_a_while_is_read_whole_when_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    follower = LogFollower(log)
    os.remove(log)
    assert follower.read() == []
    assert follower.read() == []
    log.write_text(line("10.0.0.9"))
    assert len(follower.read()) == 1


def test_truncation_in_place_restarts_at_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("10.0.0.1") * 3)
    follower = LogFollower(log)
    with log.open("r+") as fh:  # copytruncate
        fh.truncate(0)
    append(log, line("10.0.0.5"))
    assert [entry.split()[0] for entry in follower.read()] == [b"10.0.0.5"]
    assert follower.truncations == 1


def test_probe_reports_requests_and_distinct_clients_per_window(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    probe = NginxLogProbe(NginxLogTarget(name="nginx", kind="nginx_log", path=log, interval_s=10))
    append(log, line("10.0.0.1") * 3 + line("10.0.0.2") + "garbage line\n")
    result = probe.run()
    assert result.ok and result.event_type == "health.connections"
    assert (result.data["requests"], result.data["active"]) == (5, 3)  # "garbage" is a client token too
    assert result.data["window_s"] > 0
    assert probe.run().data["requests"] == 0


def test_connection_group_counts_connections_not_clients(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    pattern = r'^(?P<client>\S+) .* (?P<connection>\d+)$'
    probe = NginxLogProbe(NginxLogTarget(name="nginx", kind="nginx_log", path=log, pattern=pattern))
    append(log, line("10.0.0.1", 7) + line("10.0.0.1", 8) + line("10.0.0.1", 8))
    data = probe.run().data
    assert (data["requests"], data["active"]) == (3, 2)


def test_unreadable_log_fails_the_probe(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.mkdir()  # a folder where the file should be: reading fails
    probe = NginxLogProbe(NginxLogTarget(name="nginx", kind="nginx_log", path=log))
    result = probe.run()
    assert not result.ok and "cannot read" in (result.error or "")
