"""Bugs the fuzz test (tests/integration/test_fuzz_frames.py) found in the Exotel parser, each
pinned here on its own."""

from __future__ import annotations

import pytest

from receptionist.telephony import exotel


@pytest.mark.parametrize("payload", ["\u00e9\u00e9\u00e9\u00e9", "AAA\u2028", "\U0001f600AAA"])
def test_a_media_payload_that_is_not_ascii_is_bad_base64_not_a_crash(payload: str) -> None:
    # binascii raises a plain ValueError (not binascii.Error) for non-ASCII text: it escaped the
    # parser and ended the whole call as a bridge error.
    frame = '{"event":"media","media":{"payload":"' + payload + '"}}'
    with pytest.raises(exotel.ProtocolError) as err:
        exotel.parse_frame(frame)
    assert err.value.kind == "bad_base64"
