"""The file outbox: CONTRACT.md's records, and never the same message twice, across processes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

from notification_helpers import NOW

from notifications.transports.base import OutgoingMessage
from notifications.transports.outbox import OutboxFile, OutboxTransport


def message(message_id: str = "msg_1", **overrides: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "message_id": message_id,
        "channel": "push",
        "to": "push-token-abcdef",
        "member_id": "m-1",
        "template": "welcome",
        "locale": "zh-CN",
        "title": "欢迎加入生活家",
        "body": "新人礼已到账",
        "sent_at": NOW,
    } | overrides
    return OutgoingMessage(**values)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_record_has_the_contract_fields_and_leaves_absent_ones_out(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"

    OutboxTransport(path, channel="push").send(message(campaign_id="welcome-onboarding"))

    assert lines(path) == [
        {
            "message_id": "msg_1",
            "channel": "push",
            "to": "push-token-abcdef",
            "member_id": "m-1",
            "campaign_id": "welcome-onboarding",
            "template": "welcome",
            "locale": "zh-CN",
            "title": "欢迎加入生活家",
            "body": "新人礼已到账",
            "sent_at": "2026-11-05T04:00:00+00:00",
        }
    ]


def test_the_same_message_is_never_written_twice_even_by_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    first, second = OutboxFile(path), OutboxFile(path)  # as two processes would hold them
    transport = OutboxTransport(path, channel="push")

    transport.send(message("msg_1"))
    first.append([{"message_id": "msg_1", "body": "again"}, {"message_id": "msg_2"}])
    second.append([{"message_id": "msg_2"}, {"message_id": "msg_3"}])
    transport.send_many([message("msg_3"), message("msg_4")])

    assert [line["message_id"] for line in lines(path)] == ["msg_1", "msg_2", "msg_3", "msg_4"]


def test_a_line_cut_short_by_a_crash_is_completed_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.write_text('{"message_id": "msg_1"}\n{"message_id": "msg_2", "bo', encoding="utf-8")

    OutboxTransport(path, channel="push").send_many([message("msg_1"), message("msg_2")])

    text = path.read_text(encoding="utf-8").splitlines()
    assert text[1] == '{"message_id": "msg_2", "bo'
    assert [json.loads(line)["message_id"] for line in (text[0], text[2])] == ["msg_1", "msg_2"]


def test_a_replaced_file_is_read_afresh(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    transport = OutboxTransport(path, channel="push")
    transport.send(message("msg_1"))
    path.unlink()

    transport.send(message("msg_1"))

    assert len(lines(path)) == 1


def _write_all(path: str, ids: list[str]) -> None:
    transport = OutboxTransport(Path(path), channel="sms")
    for message_id in ids:
        transport.send(message(message_id, channel="sms", to="+8613800000001"))


def test_processes_writing_the_same_messages_at_once_write_each_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    ids = [f"msg_{n}" for n in range(100)]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_all, args=(str(path), ids[::step])) for step in (1, 1, 2, -1)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    written = [line["message_id"] for line in lines(path)]
    assert sorted(written) == sorted(ids)
