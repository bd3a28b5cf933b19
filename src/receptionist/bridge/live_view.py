"""One call as its owner's live view sees it: `call_started`, each turn once committed, and
`call_ended` (store/live.py carries them to the dashboard).

Published per turn, never per frame. Nothing goes out before `begin` (the call's row is written
while the model connects, and the page must not show turns of a call it cannot load); turns
committed before it are sent then, in speaking order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receptionist.store.live import LiveEvent, LiveFeed


class LiveView:
    def __init__(self, feed: LiveFeed) -> None:
        self._feed = feed
        self._call_sid = ""
        self._tenant_id = ""
        self.started = False  # call_started went out
        self._sent = 0  # transcript turns already published

    def begin(self, call_sid: str, tenant_id: str, data: dict[str, Any]) -> None:
        self._call_sid, self._tenant_id = call_sid, tenant_id
        self.started = True
        self._publish("call_started", data)

    def turns(self, turns: Sequence[dict[str, Any]]) -> None:
        """Publish the turns committed since the last call (a no-op before `begin`)."""
        if not self.started:
            return
        for turn in turns[self._sent :]:
            self._publish(
                "turn",
                {
                    "speaker": turn["speaker"],
                    "text": turn["text"],
                    "start_ms": turn["start_ms"],
                    "end_ms": turn["end_ms"],
                    "interrupted": bool(turn.get("interrupted")),
                },
            )
        self._sent = len(turns)

    def end(self, turns: Sequence[dict[str, Any]], status: str, end_reason: str) -> None:
        """The last turns and `call_ended`: after the row is final, so a page that reloads it
        sees the end (a no-op before `begin`)."""
        if not self.started:
            return
        self.turns(turns)
        self._publish("call_ended", {"status": status, "end_reason": end_reason})

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        self._feed.publish(LiveEvent(kind, self._call_sid, self._tenant_id, data))
