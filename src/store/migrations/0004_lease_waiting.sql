-- 4: what the driver waits for from other operators, on its lease row, so that `runbook ls` on any
-- host says it without asking every driver: the step waiting for approvals, as the driver's
-- control socket tells it (`{"step": "deploy/migrate", "title": …, "rollback": false,
-- "needed": 1, "given": [], "may_approve": null}`), set by the driver when the wait starts and at
-- each approval, NULL when nothing waits (and once the lease is released or taken anew). Only
-- meaningful while the lease holds.
ALTER TABLE leases ADD COLUMN waiting jsonb;
