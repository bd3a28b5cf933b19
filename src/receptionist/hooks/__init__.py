"""Webhooks out: call events sent to the business's own URLs as signed JSON.

`events.py` makes the deliveries of an event (one per URL of the tenant that wants it), written
in the transaction that makes the event true; `signing.py` signs a body (and verifies one, for
receivers and tests); `deliverer.py` posts the due deliveries from the worker, retrying with
backoff, each attempt recorded (store/webhook_deliveries.py).
"""
