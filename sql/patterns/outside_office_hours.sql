-- Consultations outside office hours (before 7:00, from 19:00, or at the weekend, UTC)
SELECT actor_id, COUNT(*) AS consultations
FROM events
WHERE actor_kind = 'person' AND operation = 'consult'
  AND (date_part('hour', ts) < 7 OR date_part('hour', ts) >= 19 OR date_part('dow', ts) IN (0, 6))
GROUP BY actor_id
ORDER BY consultations DESC, actor_id
LIMIT 20
