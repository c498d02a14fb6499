"""Reading the local Maildir: newest first, paging, parts, raw source, erasure."""

from __future__ import annotations

from pathlib import Path

import pytest

from emails import MaildirSender, RenderedEmail, build_message, message_bytes
from emails.mailbox import LocalMailbox


def deliver(folder: Path, count: int, to: str = "reader@example.org") -> None:
    with MaildirSender(folder) as sender:
        for index in range(count):
            rendered = RenderedEmail(
                subject=f"Письмо {index}", html=f"<p>HTML {index}</p>", text=f"Text {index}\n"
            )
            message = build_message(
                rendered,
                sender="Review <news@review.example>",
                to=to,
                headers=None,
                message_id_domain="review.example",
            )
            sender.send("news@review.example", [to], message_bytes(message))


def test_a_missing_folder_is_an_empty_mailbox(tmp_path: Path) -> None:
    box = LocalMailbox(tmp_path / "nothing")
    page = box.list()
    assert (page.entries, page.total, page.page, page.pages) == ([], 0, 1, 1)
    assert box.count() == 0
    with pytest.raises(KeyError):
        box.get("1.M1P1Q1.host")
    assert not (tmp_path / "nothing").exists()


def test_newest_first_with_paging(tmp_path: Path) -> None:
    deliver(tmp_path / "box", 7)
    box = LocalMailbox(tmp_path / "box")
    first = box.list(page=1, per_page=3)
    assert [e.subject for e in first.entries] == ["Письмо 6", "Письмо 5", "Письмо 4"]
    assert (first.total, first.pages, first.has_previous, first.has_next) == (7, 3, False, True)
    last = box.list(page=3, per_page=3)
    assert [e.subject for e in last.entries] == ["Письмо 0"]
    assert box.list(page=99, per_page=3).page == 3
    assert box.list(page=-5, per_page=3).page == 1
    entry = first.entries[0]
    assert entry.to == "reader@example.org"
    assert entry.sender == "Review <news@review.example>"
    assert entry.date is not None


def test_one_message_with_its_parts(tmp_path: Path) -> None:
    deliver(tmp_path / "box", 1)
    box = LocalMailbox(tmp_path / "box")
    (key,) = box.keys_newest_first()
    message = box.get(key)
    assert message.subject == "Письмо 0"
    assert message.html is not None and "<p>HTML 0</p>" in message.html
    assert message.text is not None and message.text.replace("\r\n", "\n") == "Text 0\n"
    assert message.raw_text.startswith("Return-Path: <news@review.example>")
    assert ("Delivered-To", "reader@example.org") in message.headers
    with pytest.raises(KeyError):
        box.get("../../etc/passwd")


def test_remove_messages_to_one_address(tmp_path: Path) -> None:
    deliver(tmp_path / "box", 2, to="Ann@example.org")
    deliver(tmp_path / "box", 1, to="nann@example.org")
    box = LocalMailbox(tmp_path / "box")
    assert box.remove_messages_to("ann@EXAMPLE.org") == 2
    assert [e.to for e in box.list().entries] == ["nann@example.org"]
