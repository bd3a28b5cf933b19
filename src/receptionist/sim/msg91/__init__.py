"""A protocol-faithful double of MSG91's WhatsApp bulk template endpoint, and its webhook.

Serves ``POST /api/v5/whatsapp/whatsapp-outbound-message/bulk/`` over real HTTP (uvicorn on
127.0.0.1, an ephemeral port) so :class:`receptionist.notify.msg91.Msg91Provider` is tested
through httpx exactly as in production::

    async with FakeMsg91(auth_key="test-authkey") as fake:
        fake.approve("order_confirmation", language="en", variables=4)
        provider = Msg91Provider(Msg91Config("test-authkey", "918000000000",
                                             base_url=fake.base_url))
        ...
        assert fake.accepted_for("919800000001", "order_confirmation") == 1

One double can serve many tests: :meth:`FakeMsg91.reset` forgets everything scripted and
recorded without restarting the server.

A test that needs a request to be in flight at a given moment (a worker killed mid-send, a
client's own timeout, a pool kept busy) holds it instead of hoping a delay is long enough::

    fake.hold(after=3, accept=True)  # the next 3 requests pass, every later one is held
    ...                              # start the client
    await fake.wait_held(1)          # returns once a request is held (no sleeping)
    ...                              # kill the client, or let its timeout fire
    fake.release()                   # held requests are answered; later ones pass

With ``accept=True`` a held request is handled as usual (a valid message is taken: recorded in
:attr:`messages`, its automatic reports scheduled) and only its answer waits: the client cannot
know the message went. With ``accept=False`` it is held before anything is taken and, once
released, answered 503: as if it never reached MSG91. :attr:`FakeMsg91.held` lists the
requests being held now; :attr:`RecordedRequest.held` stays True on those that were.
:meth:`~FakeMsg91.reset` and :meth:`~FakeMsg91.stop` release them and remove the gate.

Behaviour (wire facts and their sources are in :mod:`receptionist.notify.msg91`):

* Per request, in this order: record it (:attr:`requests`), wait ``delay_s``, pass the hold
  gate if one is set (``hold(accept=False)`` holds it here), take the next scripted fault if
  any; ``fail_next`` faults answer at once (before auth, like MSG91's edge),
  ``hang_next(accept=False)`` waits and then answers 503 without taking the message. Then the
  ``authkey`` header (401), the JSON body and its shape (400), the approved templates when any
  are registered (400). Then the message is accepted: one :class:`AcceptedMessage` per
  recipient in :attr:`messages`, all under one fresh request id. Only then do the post-accept
  faults act: ``garble_next`` (HTTP 200, unreadable body), ``hang_next`` (answer late),
  ``drop_next`` (connection closed, no answer); last, ``hold(accept=True)`` holds the answer
  whatever it is. A post-accept fault taken by a request that is refused before acceptance is
  spent without effect. Only requests to the bulk endpoint count for the gate and the faults.
* Bodies: success ``{"status": "success", "hasError": false, "data": "...", "errors": null,
  "request_id": "<32 hex>"}``; errors ``{"status": "fail", "hasError": true, "errors": "...",
  "code": "<http status>"}``. The shapes follow public integrations of MSG91; the error texts
  are ours (MSG91's exact wording is not documented where we could read it).
* Shape checks are stricter than MSG91 is known to be, on purpose: digits-only numbers with a
  valid country code (libphonenumber), ``body_1..body_n`` consecutive, each ``{"type":
  "text", "value": <non-empty string>}`` of at most 1024 characters, without new lines, tabs
  or more than four consecutive spaces (WhatsApp refuses those; the real service may accept
  the request and report the failure later instead).
* Delivery reports: :meth:`report` posts one JSON report per recipient to ``webhook_url``,
  shaped like MSG91's WhatsApp "Webhook (New)" outbound report
  (https://msg91.com/help/webhook-new/how-to-receive-whatsapp-delivery-reports-via-webhook-new:
  one payload per recipient number, JSON, fields such as ``requestId``, ``uuid``, ``status``,
  ``customerNumber``, ``integratedNumber``, ``templateName``, ``reason``, ``requestedAt``,
  ``direction``, ``messageType``, ``companyId``). Field *values* are assumed: lower-case
  statuses (``sent``/``delivered``/``read``/``failed``), ``requestedAt`` as
  ``YYYY-MM-DD HH:MM:SS`` India time, ``requestId`` equal to the send answer's ``request_id``.
  MSG91 signs nothing; the secret is ours, sent as ``X-Webhook-Secret`` or ``?secret=``.
"""

from __future__ import annotations

from receptionist.sim.msg91.model import (
    MAX_VARIABLE_CHARS,
    AcceptedMessage,
    RecordedRequest,
    SentReport,
    msg91_error_body,
)
from receptionist.sim.msg91.server import FakeMsg91

__all__ = [
    "MAX_VARIABLE_CHARS",
    "AcceptedMessage",
    "FakeMsg91",
    "RecordedRequest",
    "SentReport",
    "msg91_error_body",
]
