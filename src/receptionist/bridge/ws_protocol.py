"""uvicorn's sans-I/O WebSocket protocol, with one fix: frames that arrived whole before a frame
the parser refuses still reach the app, in order, before the disconnect.

uvicorn 0.55 (`websockets_sansio_impl.WebSocketsSansIOProtocol.data_received`) checks the
parser's error before handing over the frames parsed from the same read, so those frames are
dropped. An Exotel `start` followed at once by a frame over the WebSocket cap (1009) lost the
`start` with it: the call left no row at all (found by tests/integration/test_fuzz_frames.py).
The override keeps uvicorn's steps and only delivers the parsed frames first.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

#: for uvicorn's `ws` option (a "module:attribute" path, importable in every worker process)
WS_PROTOCOL = "receptionist.bridge.ws_protocol:FramesBeforeAFaultProtocol"


class FramesBeforeAFaultProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        if self.conn.parser_exc is not None:
            self.handle_events()  # the frames that came before the faulty one, in order
            if not self.close_sent:  # (a frame among them may have closed already: bad UTF-8)
                self.handle_parser_exception()
            return
        if self.conn.handshake_exc is not None and not self.handshake_initiated:
            self.handle_handshake_exception()
            return
        self.handle_events()
