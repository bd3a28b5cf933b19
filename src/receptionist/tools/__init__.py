"""Tools the agent uses while the caller is on the line, one implementation for every engine.

`spec` declares them (names, argument schemas), `slots` is the pure arithmetic of opening hours
and slot grids, `functions` implements each tool over the store and the tenant's files, and
`runner.ToolBox` is what a call holds: it validates, refuses tools the tenant has not enabled,
bounds the time, answers politely whatever happens and records every outcome on the call.
Gemini Live calls it from `toolCall` messages; the local engine's grounded brain calls it
directly. Sits above store, tenants and the engines' pure parts; below the bridge.
"""
