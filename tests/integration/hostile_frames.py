"""Hostile Exotel streams for the fuzz test: deterministic (one seed), labelled, and accounted.

A `Plan` is one hostile connection: the frames it sends in order and what the bridge must make of
them. Every frame carries a label:

* a bad-frame kind (`not_json`, `bad_base64`, ...): the bridge must count exactly this kind,
* `ANY_BAD`: the bridge must count it as some bad frame (wrong types whose kind is the parser's
  choice, e.g. `missing_field` or `bad_id`),
* `ACCEPTED`: a usable frame (media, mark or dtmf with odd but harmless values, a second `start`
  counted as `duplicate_start` is labelled with that kind),
* `EITHER`: a frame with a wrong-typed field the parser may accept (coerce) or refuse; it must be
  one or the other, never lost: accepted frames and bad frames together account for every frame,
* `SILENT`: `connected` (nothing to do), the `start` and the terminator (`stop`, or a frame that
  closes the connection: over the WebSocket cap, invalid UTF-8).

So for a call that got a row, frames_in + marks + dtmf + sum(bad_frames) equals the frames labelled
ACCEPTED / EITHER / a kind / ANY_BAD that the bridge read (those before the terminator).
"""

from __future__ import annotations

import binascii
import copy
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from receptionist.telephony import exotel

ACCEPTED = "accepted"
EITHER = "either"
ANY_BAD = "any_bad"
SILENT = "silent"

#: Values of the wrong type for any field (Exotel sends every value as a string).
WRONG_VALUES: list[Any] = [
    None,
    0,
    -1,
    2**63,
    1.5e300,
    True,
    [],
    [1, "2"],
    {},
    {"nested": {"deeper": [1]}},
    "",
    "x" * 5000,
    "\u202e\u0000\x1b[2J",
]


@dataclass
class Frame:
    data: str | bytes
    label: str


@dataclass
class Plan:
    """One hostile connection."""

    name: str
    tenant: str = "saloon"
    call_sid: str | None = None  # the sid of its valid `start`, if it sends one (a row expected)
    frames: list[Frame] = field(default_factory=list)
    #: how the call must end on its row ("stop:fuzz", "frame_too_large", ...; one ending in
    #: ":" is a prefix: "stop:" and the stop's own reason, whatever it was); None: no row
    end_reason: str | None = None
    #: the close code the client must see, when it matters (1008: refused)
    close_code: int | None = None
    #: frames after the terminator (stop then media): sent, never read
    trailing: list[Frame] = field(default_factory=list)
    #: a forged start naming another live call's sid: refused, that call's row untouched
    forges: str | None = None

    def expected_kinds(self) -> Counter[str]:
        """Bad-frame kinds this plan names exactly (labels that are kinds)."""
        special = {ACCEPTED, EITHER, ANY_BAD, SILENT}
        return Counter(f.label for f in self.frames if f.label not in special)

    def counted(self) -> int:
        """Frames the bridge reads and must account for (not `connected`, start, terminator)."""
        return sum(1 for f in self.frames if f.label != SILENT)

    def at_least_bad(self) -> int:
        return sum(1 for f in self.frames if f.label not in {ACCEPTED, EITHER, SILENT})

    def at_most_bad(self) -> int:
        return sum(1 for f in self.frames if f.label not in {ACCEPTED, SILENT})

    def __len__(self) -> int:
        return len(self.frames) + len(self.trailing)


# --- the events Exotel sends, as templates ------------------------------------------------------


def _pcm(rng: random.Random, n_bytes: int) -> bytes:
    return rng.randbytes(n_bytes)


def _b64(pcm: bytes) -> str:
    return binascii.b2a_base64(pcm, newline=False).decode()


def templates(stream_sid: str, call_sid: str, rng: random.Random) -> dict[str, dict[str, Any]]:
    """One well-formed frame of each event, as dicts (the field paths the fuzzer breaks)."""
    return {
        "connected": {"event": "connected"},
        "start": orjson.loads(
            exotel.start_frame(
                stream_sid=stream_sid,
                call_sid=call_sid,
                from_number="+919800000077",
                to_number="+918000000002",
                custom_parameters={"k": "v"},
            )
        ),
        "media": {
            "event": "media",
            "sequence_number": "3",
            "stream_sid": stream_sid,
            "media": {"chunk": "2", "timestamp": "200", "payload": _b64(_pcm(rng, 320))},
        },
        "dtmf": {
            "event": "dtmf",
            "sequence_number": "4",
            "stream_sid": stream_sid,
            "dtmf": {"digit": "5", "duration": "100"},
        },
        "mark": {
            "event": "mark",
            "sequence_number": "5",
            "stream_sid": stream_sid,
            "mark": {"name": "agent-turn-1"},
        },
        "clear": {"event": "clear", "stream_sid": stream_sid},  # ours to send, not Exotel's
        "stop": {
            "event": "stop",
            "sequence_number": "6",
            "stream_sid": stream_sid,
            "stop": {"call_sid": call_sid, "account_sid": "AC", "reason": "fuzz"},
        },
    }


def _paths(obj: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any, *, delete: bool) -> None:
    for key in path[:-1]:
        obj = obj[key]
    if delete:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _label(event: str, path: tuple[str, ...], value: Any, delete: bool) -> str:
    """What a wrong-typed or missing field must do, where the protocol leaves no choice;
    EITHER where coercing a harmless value is as right as refusing it."""
    if path == ("event",) or event == "clear":
        # no event, one that is not a known string, or ours (`clear`): refused, never guessed
        return "unknown_event"
    if event == "start":
        return ANY_BAD  # after the call's start: refused, or counted as duplicate_start
    if event == "media":
        if path == ("media",) or (path == ("media", "payload") and not isinstance(value, str)):
            return "missing_field"
        return EITHER  # payload strings: valid, bad base64 or odd; metadata the bridge ignores
    if event == "dtmf":
        if path == ("dtmf",) or (path == ("dtmf", "digit") and (delete or value in (None, ""))):
            return ANY_BAD  # no digit
        return EITHER
    return EITHER


def wrong_type_frames(
    stream_sid: str, call_sid: str, rng: random.Random
) -> tuple[list[Frame], list[Frame]]:
    """Every field of every event: each wrong value, and missing. Returns the frames, and apart
    the `stop` frames that still parse (they end a call: each can only be a call's last frame),
    ordered so that any first few of them break every field of `stop` between them."""
    out: list[Frame] = []
    stops: dict[tuple[str, ...], list[Frame]] = {}
    base = templates(stream_sid, call_sid, rng)
    for event, template in base.items():
        for path in list(_paths(template)):
            for value in [*WRONG_VALUES, "<missing>"]:
                delete = value == "<missing>"
                msg = copy.deepcopy(template)
                _set(msg, path, value, delete=delete)
                label = _label(event, path, value, delete)
                if event == "stop" and path != ("event",):
                    if path == ("stop",) and not (
                        delete or value is None or isinstance(value, dict)
                    ):
                        label = "missing_field"  # a body that is not an object: refused
                    else:
                        stops.setdefault(path, []).append(Frame(_dumps(msg), SILENT))
                        continue
                out.append(Frame(_dumps(msg), label))
    by_path = list(stops.values())
    terminators = [
        group[i] for i in range(max(map(len, by_path))) for group in by_path if i < len(group)
    ]
    return out, terminators


# --- garbage of every other shape -----------------------------------------------------------------


def garbage_frames(
    stream_sid: str, rng: random.Random, *, max_frame_bytes: int, forged_sid: str
) -> list[Frame]:
    media = templates(stream_sid, "CAx", rng)["media"]

    def media_with(payload: str, **extra: Any) -> str:
        msg = copy.deepcopy(media)
        msg["media"]["payload"] = payload
        msg.update(extra)
        return _dumps(msg)

    out = [
        Frame("this is not json", "not_json"),
        Frame("", "not_json"),
        Frame("{", "not_json"),
        Frame('{"event": "media", "media": {"payload": "AAAA"}', "not_json"),
        Frame("NaN", "not_json"),
        Frame("1e400", "not_json"),
        Frame('"\\ud800"', "not_json"),  # a lone surrogate: no UTF-8 for it
        Frame("[" * 5000 + "]" * 5000, "not_json"),  # deeper than the parser's limit
        Frame('{"a":' * 3000 + "1" + "}" * 3000, "not_json"),
        Frame("[1, 2, 3]", "not_object"),
        Frame("null", "not_object"),
        Frame('"media"', "not_object"),
        Frame("42", "not_object"),
        Frame(b"\x00\x01binary", "binary_frame"),
        Frame(bytes(rng.randbytes(3000)), "binary_frame"),
        Frame(b"", "binary_frame"),
        Frame('{"event":"transfer","stream_sid":"x"}', "unknown_event"),
        Frame('{"event":"MEDIA"}', "unknown_event"),
        Frame('{"Event":"media"}', "unknown_event"),
        Frame(_dumps({"event": "x" * 100_000}), "unknown_event"),
        Frame(media_with("@@not-base64@@"), "bad_base64"),
        Frame(media_with("AAA"), "bad_base64"),
        Frame(media_with("AA AA"), "bad_base64"),
        Frame(media_with("AAAA\n"), "bad_base64"),
        Frame(media_with("\u00e9\u00e9\u00e9\u00e9"), "bad_base64"),  # not ASCII
        Frame(media_with(_b64(b"abc")), "odd_length_pcm"),
        Frame(media_with(_b64(b"a")), "odd_length_pcm"),
        Frame(media_with(""), ACCEPTED),  # no audio in it: harmless
        # huge: under the frame limit (audio accepted), over it (dropped), strings in fields
        Frame(media_with(_b64(_pcm(rng, (max_frame_bytes - 200) * 3 // 4 // 2 * 2))), ACCEPTED),
        Frame(
            media_with(_b64(_pcm(rng, (max_frame_bytes + 100) * 3 // 4 // 2 * 2))),
            "oversized_frame",
        ),
        Frame("x" * (max_frame_bytes + 1), "oversized_frame"),
        Frame(_dumps({"event": "mark", "mark": {"name": "n" * (max_frame_bytes - 100)}}), ACCEPTED),
        Frame(_dumps({"event": "dtmf", "dtmf": {"digit": "9" * 100_000}}), ACCEPTED),
        # order: sequence numbers backwards, absurd timestamps and chunks
        *[
            Frame(media_with(_b64(_pcm(rng, 320)), sequence_number=str(s)), ACCEPTED)
            for s in (1_000_000, 5, 4, 3, -7, "-99999999999999999999")
        ],
        *[
            Frame(
                _dumps({**media, "media": {**media["media"], "timestamp": ts, "chunk": ts}}),
                ACCEPTED,
            )
            for ts in ("-1", "99999999999999999999999", "1e308", "abc", -(2**63))
        ],
        # a live clean call's stream sid on this connection: it must stay this connection's
        Frame(media_with(_b64(_pcm(rng, 320)), stream_sid=forged_sid), ACCEPTED),
        Frame(_dumps({"event": "mark", "stream_sid": forged_sid, "mark": {"name": "x"}}), ACCEPTED),
        Frame(
            _dumps({"event": "dtmf", "stream_sid": forged_sid, "dtmf": {"digit": "#"}}),
            ACCEPTED,
        ),
    ]
    return out


def flood_frames(rng: random.Random, n: int) -> list[Frame]:
    """Tiny frames, fast: most bad, some harmless."""
    pool = [
        ("{}", "unknown_event"),
        ("1", "not_object"),
        ("x", "not_json"),
        ('{"event":"mark"}', ACCEPTED),
        ('{"event":"dtmf","dtmf":{"digit":"1"}}', ACCEPTED),
        ('{"event":"connected"}', SILENT),
        ('{"event":"media","media":{"payload":""}}', ACCEPTED),
        ('{"event":"media"}', "missing_field"),
    ]
    return [Frame(*rng.choice(pool)) for _ in range(n)]


def prelude_frames(rng: random.Random, stream_sid: str) -> list[Frame]:
    """Before `start`: every frame but `connected` is a bad one (nothing is a call yet)."""
    base = templates(stream_sid, "CAprelude", rng)
    return [
        Frame(_dumps(base["connected"]), SILENT),
        Frame(_dumps(base["media"]), "media_before_start"),
        Frame(_dumps(base["media"]), "media_before_start"),
        Frame(_dumps(base["dtmf"]), "event_before_start"),
        Frame(_dumps(base["mark"]), "event_before_start"),
        Frame(_dumps(base["stop"]), "event_before_start"),
        Frame(_dumps({"event": "start", "start": {"call_sid": ""}}), "missing_field"),
        Frame(_dumps({"event": "start", "start": {"call_sid": "a b"}}), "bad_id"),
        Frame(
            _dumps(
                {
                    "event": "start",
                    "start": {"call_sid": "CAok", "media_format": {"sample_rate": "44100"}},
                }
            ),
            "bad_sample_rate",
        ),
        Frame("garbage", "not_json"),
        Frame(b"\xff", "binary_frame"),
    ]


# --- connections ---------------------------------------------------------------------------


def _start(stream_sid: str, call_sid: str, tenant_param: str | None = None) -> Frame:
    params = {"tenant": tenant_param} if tenant_param else {}
    return Frame(
        exotel.start_frame(
            stream_sid=stream_sid,
            call_sid=call_sid,
            from_number="+919800000077",
            to_number="+918000000002",
            custom_parameters=params,
        ),
        SILENT,
    )


def _stop(stream_sid: str, call_sid: str, reason: str = "fuzz") -> Frame:
    return Frame(exotel.stop_frame(stream_sid, call_sid, sequence=9999, reason=reason), SILENT)


def plans(
    seed: int, *, clean_sids: list[tuple[str, str]], max_frame_bytes: int, ws_cap: int
) -> list[Plan]:
    """All the hostile connections of one run, deterministic for `seed`. `clean_sids`:
    (call_sid, stream_sid) of clean calls that are live while these run (forgery targets)."""
    rng = random.Random(seed)
    out: list[Plan] = []
    n = 0

    def sids(kind: str) -> tuple[str, str]:
        nonlocal n
        n += 1
        return f"CAfuzz{kind}{seed}x{n}", f"MZfuzz{kind}{seed}x{n}"

    def forged() -> tuple[str, str]:
        return rng.choice(clean_sids)

    # wrong types and missing fields of every event, split over a few calls
    typed_call_sid, typed_stream_sid = sids("typedsrc")
    typed, odd_stops = wrong_type_frames(typed_stream_sid, typed_call_sid, rng)

    def call(name: str, body: list[Frame], *, prelude: bool = False) -> Plan:
        call_sid, stream_sid = sids(name)
        frames = [Frame(exotel.connected_frame(), SILENT)]
        if prelude:
            frames += prelude_frames(rng, stream_sid)
        frames += [_start(stream_sid, call_sid), *body]
        if odd_stops and rng.random() < 0.5:  # a stop with a wrong-typed or missing field
            frames.append(odd_stops.pop(0))
            return Plan(name, call_sid=call_sid, frames=frames, end_reason="stop:")
        # the stop may name another call: it ends this connection's call, nothing else
        stop_sid = forged() if rng.random() < 0.5 else (call_sid, stream_sid)
        frames.append(_stop(stop_sid[1], stop_sid[0]))
        return Plan(name, call_sid=call_sid, frames=frames, end_reason="stop:fuzz")

    rng.shuffle(typed)
    for i in range(0, len(typed), 150):
        out.append(call("typed", typed[i : i + 150], prelude=i == 0))
    # every shape of garbage, on calls with and without a prelude before start
    for i in range(6):
        g = garbage_frames(f"MZg{i}", rng, max_frame_bytes=max_frame_bytes, forged_sid=forged()[1])
        rng.shuffle(g)
        out.append(call("garbage", g, prelude=i % 2 == 0))
    # floods of tiny frames
    for _ in range(10):
        out.append(call("flood", flood_frames(rng, 1000)))
    # start twice (the second with a live clean call's sid), then valid media
    for _ in range(3):
        c_sid, s_sid = forged()
        body = [
            Frame(_start(s_sid, c_sid).data, "duplicate_start"),
            Frame(_start("MZagain", "CAagain").data, "duplicate_start"),
            *[Frame(_dumps(templates("MZ", "CA", rng)["media"]), ACCEPTED) for _ in range(20)],
        ]
        out.append(call("start_twice", body))
    # stop, then more media: sent, never read
    for _ in range(3):
        p = call("stop_then_media", [Frame(_dumps(templates("MZ", "CA", rng)["media"]), ACCEPTED)])
        p.trailing = [
            Frame(_dumps(templates("MZ", "CA", rng)["media"]), ACCEPTED) for _ in range(50)
        ]
        out.append(p)
    # connections that end abruptly: a frame over the WebSocket cap, a text frame not UTF-8
    for name, terminator, reason in (
        ("over_cap", Frame("y" * (ws_cap + 1), SILENT), "frame_too_large"),
        ("bad_utf8", Frame(b'{"event":"media","x":"\xff\xfe"}', SILENT), "invalid_frame_data"),
    ):
        for _ in range(2):
            call_sid, stream_sid = sids(name)
            frames = [
                _start(stream_sid, call_sid),
                *flood_frames(rng, 50),
                terminator,
            ]
            out.append(Plan(name, call_sid=call_sid, frames=frames, end_reason=reason))
    # a first `start` naming a live clean call: refused, and that call goes on untouched
    for _ in range(4):
        c_sid, s_sid = forged()
        out.append(
            Plan(
                "forged_start",
                frames=[*prelude_frames(rng, s_sid), _start(s_sid, c_sid)],
                close_code=1008,
                forges=c_sid,
            )
        )
    # never a start: garbage only, then the client hangs up (no row, only counters)
    for _ in range(4):
        _, stream_sid = sids("nostart")
        # (no accepted frame: before start a usable mark is an event_before_start)
        frames = prelude_frames(rng, stream_sid) + [
            f for f in flood_frames(rng, 200) if f.label != ACCEPTED
        ]
        out.append(Plan("no_start", frames=frames))
    return out


def total_frames(all_plans: list[Plan]) -> int:
    return sum(len(p) for p in all_plans)
