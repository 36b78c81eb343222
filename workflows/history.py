"""What recorded workflow histories depend on, in one place: the activities' timeouts and
retry policy, and the patch id of every behaviour change a running workflow would notice.

A patch id is a ``workflow.patched`` name: histories record it, so it is never renamed.
Once no run begun before a change can still be open, ``workflow.deprecate_patch(ID)``
replaces the check, and later the old path and the id go.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# -- timeouts and retries (journeys and broadcasts) ------------------------------------------

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A provider call: the provider's own timeout (10 s) plus a margin. Short, so an attempt lost
# with a killed worker is retried soon.
SEND_TIMEOUT = timedelta(seconds=20)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))

# -- patch ids: journeys ---------------------------------------------------------------------

# Runs started by this interpreter issue coupons and decide sends (the policy) as local
# activities: run by the worker inside the workflow task that asks for them, with no round
# trip through the server's queues. Both are idempotent (the coupon's issue key, the ledger
# row), so a local activity run again after a lost workflow task issues and decides nothing
# twice. Runs recorded before take the server's queues as they did (replay).
LOCAL_ACTIVITIES = "local-coupon-and-policy"
# A control run (the journey's holdout, the global control group) is given no coupon: one
# found in the app's wallet without any message would make the control convert more than it
# would have. A held-out run that issued its coupon before replays as recorded; a run
# already going that reaches a coupon step now withholds it.
WITHHOLD_CONTROL_COUPONS = "withhold-control-coupons"

# -- patch ids: broadcasts -------------------------------------------------------------------

# Broadcast runs begun before kept ``WINDOW`` sends in flight (instead of
# ``BATCHES_IN_FLIGHT`` batches), and do so after an upgrade; once none can be in flight,
# ``workflow.deprecate_patch(WIDER_WINDOW)`` replaces the check.
WIDER_WINDOW = "broadcast-batches-in-flight"
# Broadcasts started before batches sent one ``send_message`` per recipient; a page such a run
# had begun that way finishes that way after an upgrade (its next page uses batches).
BATCHES = "broadcast-send-batches"
