"""Messages after a gap (issue #18): read with VoicemailBoxSummary, matched
to their callbacks by msg_id or by when they were complete and who left
them, never by position."""

from __future__ import annotations

from pbxwatch.core.gaps import VoicemailMessage
from pbxwatch.settings import Settings
from tests.unit.test_callbacks import T0, _book, _message

BOX = "1001@default"


def _msg(
    folder: str, caller: str, origtime: float, n: int, seconds: float = 8.0
) -> VoicemailMessage:
    return VoicemailMessage.from_item({"Folder": folder, "CallerID": caller,
                                       "ID": f"{origtime:.0f}-{n:08d}",
                                       "Duration": f"{seconds:.0f}"})  # fmt: skip


def test_a_message_left_while_blind_becomes_a_callback_found_at_resync(
    lab_settings: Settings,
) -> None:
    book = _book(lab_settings)
    blind_from = T0 - 60
    counts = book.reconcile_messages(BOX, (_msg("INBOX", "0709876543", T0, 1),), T0 + 30,
                                     blind_from)  # fmt: skip
    assert counts["messages_left_unseen"] == 1
    [cb] = book.callbacks.values()
    assert cb.found_at_resync
    assert cb.message_id == f"{T0:.0f}-00000001"
    assert cb.left_at == T0 + 8  # the end of the recording, as an MWI event would say
    assert cb.number == "+46709876543"
    assert cb.owner == "1001"
    assert cb.listened_at is None


def test_older_unknown_messages_are_only_counted(lab_settings: Settings) -> None:
    book = _book(lab_settings)
    counts = book.reconcile_messages(BOX, (_msg("INBOX", "0709876543", T0 - 86400, 1),),
                                     T0, blind_from=T0 - 60)  # fmt: skip
    assert counts["messages_older_unknown"] == 1
    assert book.callbacks == {}


def test_the_message_heard_is_the_one_listed_in_old_not_the_oldest(
    lab_settings: Settings,
) -> None:
    book = _book(lab_settings)
    book.on_message_waiting(BOX, 0, T0 - 100)
    first = book.on_call(_message("0701111111", T0))
    second = book.on_call(_message("0702222222", T0 + 60))
    assert first is not None
    assert second is not None
    book.on_message_waiting(BOX, 2, T0 + 61)
    book.on_message_waiting(BOX, 1, T0 + 300)  # one heard: the guess is the oldest
    assert book.callbacks[first.callback_id].listened_at == T0 + 300
    assert book.to_check == {BOX: None}
    listed = (_msg("INBOX", "0701111111", T0 - 8, 1), _msg("Old", "0702222222", T0 + 52, 2))
    book.reconcile_messages(BOX, listed, T0 + 301, None)
    assert book.callbacks[first.callback_id].listened_at is None  # corrected
    assert book.callbacks[second.callback_id].listened_at == T0 + 300
    assert book.callbacks[second.callback_id].message_id == f"{T0 + 52:.0f}-00000002"
    # the next fall is matched by id too
    book.on_message_waiting(BOX, 0, T0 + 400)
    book.reconcile_messages(BOX, (_msg("Old", "0701111111", T0 - 8, 1), listed[1]), T0 + 401,
                            None)  # fmt: skip
    assert book.callbacks[first.callback_id].listened_at == T0 + 400


def test_a_message_deleted_unheard_is_recorded_and_still_owed(lab_settings: Settings) -> None:
    book = _book(lab_settings)
    cb = book.on_call(_message("0701111111", T0))
    assert cb is not None
    counts = book.reconcile_messages(BOX, (), T0 + 600, blind_from=T0 + 100)
    assert counts["messages_deleted_unseen"] == 1
    gone = book.callbacks[cb.callback_id]
    assert gone.deleted_at == T0 + 600
    assert gone.resolved_at is None  # deleting a message is not calling back
    assert gone.state(T0 + 600) == "pending"
