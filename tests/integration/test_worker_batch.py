"""A worker carries the calls it claimed side by side: one slow analysis holds up only its own
call, never the others leased to the same worker (which no idle worker may take meanwhile)."""

from __future__ import annotations

import asyncio
import json

from receptionist.gemini_rest import make_client
from receptionist.postcall.analyzers.gemini import GeminiAnalyzer
from receptionist.postcall.worker import Worker
from receptionist.sim.gemini_rest import FakeGeminiRest, Fault
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.schema import Stage
from tests.integration.test_pipeline import ORDER, deps, saved_call

ANSWER = {
    "call_type": "order",
    "summary": "Anita orders six brownies for tomorrow 5 pm.",
    "details": {"name": "Anita", "phone": "+919812345678", "date": "2026-11-26"},
}


async def test_a_slow_analysis_does_not_hold_up_the_rest_of_the_batch(db: Database) -> None:
    sids = ["CAbatch1", "CAbatch2", "CAbatch3"]
    for sid in sids:
        await saved_call(db, sid, ORDER)
    async with FakeGeminiRest() as fake:
        # the first analysis request is answered only after an hour: the model hangs on it
        fake.script(Fault(status=None, delay_s=3600), *[json.dumps(ANSWER)] * (len(sids) - 1))
        client = make_client("test-key", base_url=fake.base_url)
        worker = Worker(deps(db, GeminiAnalyzer(client, timeout_s=None).analyze), batch=len(sids))
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        try:
            async with asyncio.timeout(60):  # a bound for a broken build, not a speed claim
                while True:
                    stages = [(await get_call(db, sid) or {}).get("stage") for sid in sids]
                    if stages.count(Stage.DONE) == len(sids) - 1:
                        break
                    assert not running.done(), running
                    await asyncio.sleep(0.02)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    # the hung one is still leased to this worker at its first step; the others went through
    assert stages.count(Stage.TRANSCRIPT_SAVED) == 1, stages
    assert len(fake.requests) == len(sids)
