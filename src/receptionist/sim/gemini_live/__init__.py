"""A protocol-faithful Gemini Live API double (``BidiGenerateContent`` over TLS WebSocket).

The *unmodified* ``google-genai`` SDK talks to :class:`FakeGeminiLive` over a real TLS
WebSocket on 127.0.0.1. The SDK always forces ``wss://`` for Live and always passes an SSL
context to ``websockets.connect``, so the double serves TLS with a throw-away ``trustme`` CA
(:mod:`receptionist.sim.tls`).

Client configuration (verified against google-genai 3.6.1, ``_api_client.py``
``_ensure_websocket_ssl_ctx``: ``HttpOptions.async_client_args["ssl"]`` is passed verbatim to
``websockets.asyncio.client.connect(ssl=...)``; other keys not accepted by ``connect`` are
dropped)::

    client = genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(
            base_url=fake.base_url,                         # "https://127.0.0.1:PORT"
            async_client_args={"ssl": fake.client_ssl_context},
        ),
    )

Alternative without passing a context: set ``SSL_CERT_FILE=fake.ca_file`` *before* the
``genai.Client`` is built (the SDK builds its websocket SSL context once, in the client
constructor, from ``SSL_CERT_FILE``/``SSL_CERT_DIR`` or certifi).

Protocol summary (see /work/shared/PROTOCOLS.md "Gemini Live API"):

* Path: anything ending in ``GenerativeService.BidiGenerateContent`` (any api_version; a
  ``//ws`` prefix is tolerated); other paths get HTTP 404 in the handshake.
* Auth: ``x-goog-api-key`` header or ``key`` query parameter. A wrong key is rejected like the
  real service: the WebSocket is accepted, the first (setup) frame is read, then the server
  closes with code **1007** and reason ``"API key not valid. Please pass a valid API key."``.
  The SDK surfaces that from ``live.connect()`` as ``google.genai.errors.APIError`` with
  ``code == 1007`` and the reason in its message. (An HTTP 401/403 in the handshake would
  instead surface as a bare ``websockets.exceptions.InvalidStatus``, which is less clear, and
  closing *before* the setup frame is read can make the SDK's ``ws.send(setup)`` raise a raw
  ``ConnectionClosed`` instead of ``APIError``.)
* First client frame must be ``{"setup": {...}}``; the reply is ``{"setupComplete": {}}``.
  Keys are accepted in snake_case and camelCase at every level. Frames may be text or binary.
* Caller turns: energy VAD over ``realtime_input.audio`` / ``media_chunks`` (10 ms windows of
  the continuous received stream, whatever the chunk sizes, so a bridge's chunking cannot move
  the decision; :data:`~receptionist.sim.speech.SPEECH_RMS_THRESHOLD`), the turn ends after
  ``end_of_turn_silence_ms`` of received unvoiced *audio* (not wall clock), on
  ``audioStreamEnd``, or on ``activityEnd`` (manual VAD; energy VAD is off when setup sets
  ``realtimeInputConfig.automaticActivityDetection.disabled``). ``realtime_input.text`` is a
  caller turn too (no input transcription is sent for it).
* Initial history (setup ``historyConfig.initialHistoryInClientContent``): ``client_content``
  up to the first ``turnComplete`` joins the context (``LiveSessionRecord.history``) and is
  never answered; a ``model`` turn in it counts as the greeting already said. (The double does
  not hold caller audio back meanwhile.)
* ``client_content`` with ``turnComplete``: the first one is the greeting: the agent says
  ``script.greeting`` if set, else the received text itself. Later ones with text are spoken
  back verbatim; without text they take the next scripted turn.
* Each caller turn takes the next :class:`ScriptedTurn` (then ``script.fallback_reply``) and
  sends ``inputTranscription`` (the scripted ``heard``, in one or two pieces; only if setup
  asked for ``inputAudioTranscription``), then the reply: 24 kHz PCM ``inlineData`` chunks of
  ``chunk_ms`` interleaved with word-by-word ``outputTranscription`` (only if asked for), then
  ``generationComplete``, then ``{"serverContent": {"turnComplete": true}, "usageMetadata":
  {...}}`` in ONE frame (the SDK's ``receive()`` stops iterating at ``turnComplete``, so usage
  sent in a later frame would only show up in the next ``receive()`` loop), then
  ``sessionResumptionUpdate`` if setup contained ``sessionResumption``.
* Usage is deterministic: 25 tokens per second of audio (caller audio, silence included, and
  agent audio), text tokens = ceil(chars / 4). ``promptTokenCount`` is the whole context so
  far (system instruction + client texts + all caller audio + all earlier agent output), so it
  grows every turn like a real model that re-bills the context.
* Barge-in: the agent is "speaking" while a reply is being generated (not yet complete) or
  until the time, on the double's ``clock``, at which the audio sent so far would have finished
  playing at the caller. Caller speech (a voiced window or ``activityStart``) during that time
  sends ``{"serverContent": {"interrupted": true}}`` at once, cancels the rest of the reply,
  and starts the next caller turn. No ``turnComplete`` is sent for an interrupted reply.
* Test control: ``clock`` (default ``time.monotonic``) is the double's notion of now for that
  playback window and for the records' timestamps, so a test can hold it still and advance it
  by the audio it has received instead of sleeping; a :class:`Hold` on a reply
  (``ScriptedTurn.hold``, ``CallScript.greeting_hold``) or on the handshake
  (``Failure.hold_handshake``) stops the double there until the test releases it.

* Faults and resumption (:class:`Failure`, or ``FakeGeminiLive.drop``/``go_away`` for a test to
  fire them itself): the connection is cut (TCP abort, no close frame, or a close with a chosen
  code) or ``goAway`` is sent, at a point in a reply or in the caller's speech; after ``goAway``
  the connection is closed (1011 "Deadline expired ...") when ``timeLeft`` is up. Each
  ``sessionResumptionUpdate`` handle (``resumable: true``, issued after an initial history and
  after every completed reply, never mid-reply, as the real service marks such points not
  resumable) restores the context as it was then: script position, greeting, history, usage
  counters. A setup carrying ``sessionResumption.handle`` resumes from it; an unknown, expired
  (``handle_ttl_s``, the documented 2 hours after the session closed) or refused handle gets
  close 1007. What a resumed session does not have: the reply in flight and any caller audio
  received after the handle (the client must send it again). With ``record_audio=True`` each
  session keeps the caller audio it received, and the audio offset of each handle, so a test can
  check what reached which session, in order.

* Tools: a :class:`ScriptedTurn` with ``tool_calls`` makes the model send, after that caller
  turn, ``{"toolCall": {"functionCalls": [{"id", "name", "args"}]}}`` (and
  ``{"toolCallCancellation": {"ids": [...]}}`` for those marked ``cancel``), then wait for the
  client's ``tool_response.functionResponses`` (``id``, ``name``, ``response``, optional
  ``scheduling``) before it replies. Each call and its answer are kept in
  ``LiveSessionRecord.tool_calls``; an answer to no open call in ``stray_tool_responses``.
  ``FakeGeminiLive.cancel_tool_calls`` lets a test withdraw a call itself, at the moment it
  chooses (e.g. once the tool is known to be running).

SDK behaviour worth knowing: ``session.receive()`` ends after every ``turnComplete``; any
server close (even 1000) while receiving raises ``errors.APIError`` with the close code
(1011 → ``APIError(code=1011)``; codes 4xx/5xx would map to ClientError/ServerError).
"""

from __future__ import annotations

from receptionist.sim.gemini_live.model import (
    AGENT_MIME,
    AGENT_SAMPLE_RATE,
    AUDIO_TOKENS_PER_S,
    INVALID_KEY_CLOSE_CODE,
    INVALID_KEY_REASON,
    PATH_SUFFIX,
    AgentReply,
    CallerTurn,
    CallScript,
    Failure,
    Hold,
    LiveSessionRecord,
    ScriptedToolCall,
    ScriptedTurn,
    ToolCallRecord,
)
from receptionist.sim.gemini_live.server import FakeGeminiLive, serve_forever

__all__ = [
    "AGENT_MIME",
    "AGENT_SAMPLE_RATE",
    "AUDIO_TOKENS_PER_S",
    "INVALID_KEY_CLOSE_CODE",
    "INVALID_KEY_REASON",
    "PATH_SUFFIX",
    "AgentReply",
    "CallScript",
    "CallerTurn",
    "Failure",
    "FakeGeminiLive",
    "Hold",
    "LiveSessionRecord",
    "ScriptedToolCall",
    "ScriptedTurn",
    "ToolCallRecord",
    "serve_forever",
]
