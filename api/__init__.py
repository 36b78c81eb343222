"""The HTTP API: one router per resource (:mod:`api.routes`), the dependencies they are given
(:mod:`api.deps`), the app that composes them (:mod:`api.app`) and the process that serves it
with the console (:mod:`api.server`). What the calls do (store events, route them, apply
provider facts) lives in :mod:`triggers`; this room only speaks HTTP."""
