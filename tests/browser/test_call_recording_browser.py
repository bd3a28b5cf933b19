"""The call page plays the call's recording in a real Chromium: a call placed through the real
bridge for a tenant that records, stored by the uploader the worker runs; the page's player
loads it through the signed-in route (byte ranges: it knows the duration and seeks), and tapping
a line of the conversation moves the audio to that line's time. A recording that failed says
so; another tenant's owner cannot fetch the audio."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from receptionist.sim.caller import CallerScript, CallOptions, place_call
from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.api_keys import create_key
from receptionist.store.db import Database
from receptionist.store.recordings import FAILED, NewRecording, add_recording, recording_for
from tests.browser.dashboard_site import GUARD_S, Site, sign_in
from tests.browser.harness import Screenshot
from tests.integration.bridge_harness import row_for, running_bridge
from tests.integration.test_api import seed_call
from tests.integration.test_recorded_calls import recording_settings, records, uploader

expect.set_options(timeout=GUARD_S * 1000)

TURNS = [
    ScriptedTurn(heard="Do you have eggless cakes?", reply="Yes, all our cakes are eggless."),
    ScriptedTurn(heard="One kilo truffle, please.", reply="Done, see you at five!"),
]


async def test_the_recording_plays_and_a_line_seeks_it(
    sqlite_db: Database, tmp_path: Path, desktop_page: Page, screenshot: Screenshot
) -> None:
    db = sqlite_db
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake, **recording_settings(tmp_path)) as bridge,
    ):
        records(bridge, "")
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=[t.heard for t in TURNS]),
        )
        assert result.ok, result.error
        call = await row_for(db, result.call_sid)
        await uploader(bridge).run_once()
        stored = await recording_for(db, result.call_sid)
        assert stored is not None and stored["status"] == "stored"
        await seed_call(db, "CAnorec", "bakery")  # another call: its recording failed
        await add_recording(
            db, NewRecording("CAnorec", "bakery", "n", None, 8000, FAILED, "s3 store: down")
        )
        keys = {
            "bakery": (await create_key(db, tenant="bakery"))[1],
            "saloon": (await create_key(db, tenant="saloon"))[1],
        }
        site = Site(f"http://127.0.0.1:{bridge.port}", db, bridge, keys)
        page = desktop_page
        await sign_in(page, site)
        await page.goto(site.app(f"/calls/{result.call_sid}"))
        panel = page.get_by_test_id("call-recording")
        await expect(panel).to_have_attribute("data-status", "stored")
        audio = page.get_by_test_id("recording-audio")
        await expect(audio).to_be_visible()
        # the browser read the file's head and end (byte ranges): it knows how long it is
        await page.wait_for_function(
            "a => a.readyState >= 1 && isFinite(a.duration) && a.duration > 1",
            arg=await audio.element_handle(),
            timeout=GUARD_S * 1000,
        )
        duration = await audio.evaluate("a => a.duration")
        assert abs(duration - stored["duration_ms"] / 1000) < 0.2, duration

        bubbles = page.get_by_test_id("call-transcript").get_by_test_id("bubble")
        transcript = call["transcript"]
        await expect(bubbles).to_have_count(len(transcript))
        for index in (len(transcript) - 1, 1):  # the last reply, then back to the first words
            start = transcript[index]["start_ms"] / 1000
            await bubbles.nth(index).click()
            await expect(bubbles.nth(index)).to_have_class("bubble " + (
                "agent" if transcript[index]["speaker"] == "agent" else "caller"
            ) + " current")  # fmt: skip
            await page.wait_for_function(
                "([a, t]) => Math.abs(a.currentTime - t) < 0.5",
                arg=[await audio.element_handle(), start],
                timeout=GUARD_S * 1000,
            )
        await screenshot(page, "desktop-call-recording")

        # a recording that failed: said on the page, with why; no player
        await page.goto(site.app("/calls/CAnorec"))
        await expect(page.get_by_test_id("call-recording")).to_have_attribute(
            "data-status", "failed"
        )
        await expect(page.get_by_test_id("recording-error")).to_contain_text("s3 store: down")
        await expect(page.get_by_test_id("recording-audio")).to_have_count(0)
        # the audio is not fetched without a session, nor by another tenant's owner
        async with httpx.AsyncClient(base_url=site.url) as c:
            anonymous = await c.get(f"/app/calls/{result.call_sid}/recording")
            assert anonymous.status_code == 401
        other = await page.context.browser.new_context() if page.context.browser else None
        assert other is not None
        try:
            theirs_page = await other.new_page()
            await sign_in(theirs_page, site, "saloon")
            got = await theirs_page.request.get(site.app(f"/calls/{result.call_sid}/recording"))
            assert got.status == 404
        finally:
            await other.close()
