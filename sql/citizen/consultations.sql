-- Who consulted my data: one row per message (ticket), with the institution that started it (its
-- earliest event), when, for which purpose, with which message type. Run within the citizen's scope
-- (their own number, the last months, institutions only: no agent ids), so no filter is written here.
SELECT
  min(ts) AS ts,
  first_value(actor_org ORDER BY ts) AS institution,
  first_value(message_type ORDER BY ts) AS message_type,
  first_value(operation ORDER BY ts) AS operation,
  first_value(purpose ORDER BY ts) AS purpose,
  ticket
FROM events
GROUP BY ticket
ORDER BY ts DESC
LIMIT 1000
